# edgeway — the two commands a newcomer needs are `make dev` and `make test`.
# Every target provisions what it needs through scripts/toolchain.sh (a fast no-op
# once everything is installed).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath .)
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin

# The project's Node 22, wrangler and wasm-opt first; `edgeway build` (cli/) finds
# wasm-opt there too, and never downloads a tool.
export PATH := $(ROOT)/node_modules/.bin:$(CARGO_BIN):$(PATH)
export WRANGLER_SEND_METRICS := false
# There is no network to fetch Miniflare's `request.cf` sample from.
export CLOUDFLARE_CF_FETCH_ENABLED := false
# wasm32 unit tests run under wasm-bindgen's runner on the project's Node 22.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER := wasm-bindgen-test-runner

WASM := --target wasm32-unknown-unknown
TEST_FEATURES := edgeway/testing,edgeway/auth,edgeway/jwt,edgeway/cache,edgeway/fanout,edgeway/jobs,edgeway/ops
WORKERS := -p edgeway -p hello -p gateway -p conformance -p queues-worker

.PHONY: help toolchain build dev test cost soak fuzz publish-check deploy-check bench-smoke lint fmt-check clippy doc test-wasm test-native bench bench-build bench-tools

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

toolchain: ## Install the pinned toolchain (idempotent)
	@scripts/toolchain.sh

EDGEWAY := cargo run --quiet -p edgeway-cli --

build: toolchain ## Build the gateway worker (release, panic=unwind) with `edgeway build`
	cd examples/gateway && $(EDGEWAY) build

dev: toolchain ## Serve the gateway and www/ on http://127.0.0.1:8787, with lambda-jobs under cargo lambda watch
	scripts/dev.sh

test: toolchain lint test-wasm test-native publish-check deploy-check bench-smoke ## Every test: lints, wasm32 unit tests, native unit + e2e tests, publish and deploy dry runs, benchmark smoke run

lint: fmt-check clippy doc ## rustfmt, clippy (native and wasm32, -D warnings), rustdoc without warnings

fmt-check:
	cargo fmt --all --check

clippy:
	cargo clippy --workspace --all-targets --features $(TEST_FEATURES) -- -D warnings
	cargo clippy $(WASM) $(WORKERS) --features edgeway/fanout,edgeway/jobs -- -D warnings
	cargo clippy $(WASM) -p hello -- -D warnings
	# A feature on its own, not only in the gateway's company.
	cargo clippy $(WASM) -p edgeway --no-default-features --features workflows -- -D warnings
	cargo clippy -p edgeway --all-targets -- -D warnings

doc:
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p edgeway --features testing,auth,jwt,cache,fanout,jobs,ops,workflows,objects,validate
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps $(WASM) -p edgeway --features auth,jwt,cache,fanout,jobs,ops,workflows,objects,validate

test-wasm: ## The pure-core unit tests on wasm32, under Node
	cargo test $(WASM) -p edgeway --lib --features auth,jwt,cache,fanout,jobs,ops,workflows,objects,validate

# The e2e workers' builds are mostly single-threaded (LTO, then wasm-opt under
# Node), so they run beside the test compile. `edgeway build` locks and stamps its
# output: the harness waits for a build under way and never repeats one. A failed
# pre-build is left for the harness to repeat and report (log: target/prebuild.log).
E2E_WORKERS := examples/gateway examples/hello tests/workers/conformance tests/workers/queues
# bench-smoke's workers too: they build while the e2e tests wait on workerd.
BENCH_WORKERS := bench/baselines/workers-rs bench/baselines/workers-rs-router bench/apps/edgeway bench/apps/bindings

test-native: ## Native unit tests, doctests and e2e tests in workerd (two lanes at once: scripts/test-native.sh)
	scripts/test-native.sh $(TEST_FEATURES) $(E2E_WORKERS) $(BENCH_WORKERS)

soak: toolchain ## The full fault-injected soak (5,000 events, 3 subscribers, 200 jobs); figures in target/soak/report.json
	SOAK_EVENTS=5000 SOAK_JOBS=200 SOAK_OUTAGE_SECONDS=30 cargo test --features $(TEST_FEATURES) --test soak -- --nocapture

FUZZ_SECONDS ?= 60
fuzz: toolchain ## Every cargo-fuzz target for FUZZ_SECONDS (60) each; executions and corpus sizes in target/fuzz-report.md
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	scripts/fuzz.sh $(FUZZ_SECONDS)

publish-check: toolchain ## `cargo publish --dry-run` of edgeway-protocol, edgeway and edgeway-cli: each packages and builds on its own
	# --allow-dirty: locally the tree may hold uncommitted edits; CI's clone is clean.
	cargo publish --dry-run --allow-dirty -p edgeway-protocol -p edgeway -p edgeway-cli

deploy-check: toolchain ## `wrangler deploy --dry-run` of hello and the gateway (fails past a size budget in bench/targets.json), and `cargo lambda build --release` of examples/lambda-jobs, checked
	@mkdir -p bench/results
	node bench/size.mjs --json bench/results/size.json
	scripts/lambda-build.sh

PROFILE ?= bench/data/traffic/spiky.json
cost: ## What a traffic profile (PROFILE, default bench/data/traffic/spiky.json) costs a month on Workers, Lambda and containers, and the break-even
	cargo run --quiet -p edgeway-cli -- cost $(PROFILE)

bench: toolchain bench-tools bench-build ## Every benchmark; figures as ratios to anchors from the same run (see BENCHMARKS.md)
	@mkdir -p bench/results
	node bench/hotpath.mjs --rounds 6 --json bench/results/hotpath.json
	node bench/coldstart.mjs --json bench/results/coldstart.json
	node bench/firstrequest.mjs --json bench/results/firstrequest.json
	node bench/size.mjs --json bench/results/size.json
	cargo bench -p edgeway-router-bench --bench router
	cargo run --release -p edgeway-fanout-bench > bench/results/fanout.md
	cargo run --release -p edgeway-workflow-bench > bench/results/workflows.md
	node bench/report.mjs

bench-smoke: toolchain bench-tools bench-build ## Every benchmark for a moment, so none rots; asserts no timings
	@mkdir -p bench/results
	node bench/hotpath.mjs --duration 1 --rounds 1 --json bench/results/hotpath-smoke.json
	node bench/coldstart.mjs --checks 1 --fresh 1 --json bench/results/coldstart-smoke.json
	node bench/firstrequest.mjs --rounds 1 --json bench/results/firstrequest-smoke.json
	# The debug build: the smoke only checks that it runs (make bench uses --release).
	cargo run -p edgeway-fanout-bench -- --rounds 1
	cargo run -p edgeway-workflow-bench -- --rounds 1 --burst 8
	cargo test -p edgeway-router-bench --benches

bench-tools:
	@command -v wrk >/dev/null || { echo "installing wrk (Debian)"; apt-get update -qq && apt-get install -y -qq wrk; }

bench-build: ## Build every worker the benchmarks run
	cd examples/hello && $(EDGEWAY) build
	cd bench/baselines/workers-rs && $(EDGEWAY) build
	cd bench/baselines/workers-rs-router && $(EDGEWAY) build
	cd bench/apps/edgeway && $(EDGEWAY) build
	cd bench/apps/bindings && $(EDGEWAY) build
	cargo build --release $(WASM) -p bench-bare
	wasm-bindgen --target bundler --out-dir bench/baselines/bare/pkg target/wasm32-unknown-unknown/release/bench_bare.wasm
