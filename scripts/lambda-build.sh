#!/usr/bin/env bash
# Builds examples/lambda-jobs for AWS Lambda as `make deploy-check` ships it:
# `cargo lambda build --release`, linked by zig (PyPI's `ziglang`, in .venv),
# then checks the artifact is what the `provided.al2023` runtime runs.
#
# Its own target dir: the e2e tests' `cargo lambda watch` builds the same
# crate in target/, and must never wait on this build's lock.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export PATH="$root/.venv/bin:$PATH"
export CARGO_TARGET_DIR="$root/target/lambda-build"
cargo lambda build --release --quiet -p lambda-jobs
.venv/bin/python scripts/check_lambda_artifact.py "$CARGO_TARGET_DIR/lambda/lambda-jobs/bootstrap"
