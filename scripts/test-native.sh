#!/usr/bin/env bash
# `make test-native`: native unit tests, doctests and the e2e tests in workerd.
#
# The e2e tests spend most of their time waiting on workerd, queues and
# sidecars, not computing, so they run in two lanes at once: lane A holds the
# ones that compute (a new crate's build, Chromium, the soak, 100 concurrent
# orders) or take longest, lane B every
# other integration test of the workspace (listed by `cargo metadata`, so a
# new one cannot be left out), the unit tests and the doctests. Each lane's
# output goes to a log that is printed when both are done.
#
# Meanwhile the workers the tests and the bench smoke use are built in the
# background, one at a time: `edgeway build` locks its output, so a test that
# needs a worker first waits for that build rather than repeating it.
#
# Usage: scripts/test-native.sh FEATURES WORKER_DIR...
set -euo pipefail

features=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
logs=target/test-lanes
mkdir -p "$logs"

cargo build --quiet -p edgeway-cli
# The binary itself, not `cargo run`, which would wait for the test compile's
# lock; in a session of its own, so an interrupt or a failed test stops it too.
edgeway="$root/target/debug/edgeway"
# Then the Lambda build `make deploy-check` checks (its own target dir, so no
# lock is shared with the tests' `cargo lambda watch`).
setsid bash -c 'edgeway=$1; shift; for w in "$@"; do (cd "$w" && timeout 900 "$edgeway" build) || true; done
    timeout 900 scripts/lambda-build.sh || true' \
    prebuild "$edgeway" "$@" >target/prebuild.log 2>&1 &
prebuild=$!
lanes=()
stop() {
    kill -- -"$prebuild" 2>/dev/null || true
    for lane in ${lanes[@]+"${lanes[@]}"}; do kill -- -"$lane" 2>/dev/null || true; done
}
trap 'stop; exit 130' INT TERM

if ! cargo test --workspace --features "$features" --no-run; then
    stop
    exit 1
fi

# Every package is built with the workspace's features unified, as the
# compile above did: `-p` or `--exclude` would build edgeway again with fewer.
lane_a=(new_project console soak orders gateway strangler conformance layering)
lane_b=()
all_tests=$(cargo metadata --no-deps --format-version 1 | node -e '
  let json = "";
  process.stdin.on("data", (d) => (json += d)).on("end", () => {
    for (const pkg of JSON.parse(json).packages)
      for (const t of pkg.targets) if (t.kind.includes("test")) console.log(t.name);
  });')
for name in $all_tests; do
    [[ " ${lane_a[*]} " == *" $name "* ]] || lane_b+=("$name")
done
for name in "${lane_a[@]}"; do
    [[ " $all_tests " == *[[:space:]]"$name"[[:space:]]* ]] || {
        echo "test-native: lane A names $name, which is no test target" >&2
        stop
        exit 1
    }
done
as_flags() { for name in "$@"; do printf -- '--test %s ' "$name"; done; }
cargo_test="cargo test --workspace --features $features"

setsid bash -c "$cargo_test --bins $(as_flags "${lane_a[@]}")" >"$logs/a.log" 2>&1 &
lanes+=($!)
setsid bash -c "$cargo_test --lib $(as_flags "${lane_b[@]}") && $cargo_test --doc" \
    >"$logs/b.log" 2>&1 &
lanes+=($!)

status=0
for lane in "${lanes[@]}"; do wait "$lane" || status=1; done
for log in "$logs/a.log" "$logs/b.log"; do
    echo "==== $log"
    cat "$log"
done
if [[ $status -ne 0 ]]; then
    kill -- -"$prebuild" 2>/dev/null || true
    grep -h -E '^test .* FAILED$|^failures:$|panicked at' "$logs"/*.log || true
    echo "test-native: a lane failed (its log is above)" >&2
    exit 1
fi
wait "$prebuild" || true
