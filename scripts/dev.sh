#!/usr/bin/env bash
# `make dev`: the gateway and www/ on http://127.0.0.1:8787, with its jobs running on
# one machine and no AWS account:
#   wrangler dev (workerd, local KV and Queues)
#     -> the Invoke API front on :9000 (answers Event invocations 202, as AWS does)
#       -> cargo lambda watch on :9001, running examples/lambda-jobs
#         -> the signed callback back to the gateway.
#   and a stand-in payment service on :9002 for the order workflow
#   (tests/support/payments.py: a customer named "declined…" is declined).
# Ctrl-C stops them all. Every credential here is a local placeholder.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'trap - EXIT; kill 0' EXIT INT TERM

# The management API and the console need an API key. Locally the root key is
# made once and kept in .wrangler/ (ignored by git); deployed, it is the secret
# EDGEWAY_ROOT_KEY (README, "Deploy").
mkdir -p .wrangler
[ -s .wrangler/dev-root-key ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .wrangler/dev-root-key
root_key=$(cat .wrangler/dev-root-key)
echo "edgeway: sign in to the console at http://127.0.0.1:8787 with the local root key $root_key"

.venv/bin/cargo-lambda lambda watch -A 127.0.0.1 -P 9001 -p lambda-jobs &
sleep infinity | .venv/bin/python tests/support/lambda_front.py \
  --backend http://127.0.0.1:9001 --port 9000 &
sleep infinity | .venv/bin/python tests/support/payments.py --port 9002 &

wrangler dev --ip 127.0.0.1 --port 8787 --persist-to .wrangler/state \
  --var WEBHOOK_ALLOW_HOSTS:127.0.0.1 \
  --var JOBS_SIGNING_KEY:local-dev-jobs-key-not-a-secret-0123456789 \
  --var AWS_ACCESS_KEY_ID:AKIDLOCAL --var AWS_SECRET_ACCESS_KEY:local-only \
  --var AWS_REGION:us-east-1 --var LAMBDA_ENDPOINT:http://127.0.0.1:9000 \
  --var JOBS_FUNCTION:lambda-jobs --var PAYMENT_URL:http://127.0.0.1:9002 \
  --var "EDGEWAY_ROOT_KEY:$root_key"
