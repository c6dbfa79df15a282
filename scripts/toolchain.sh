#!/usr/bin/env bash
# Installs everything edgeway's builds and tests need, and nothing else.
#
# Idempotent: each step checks first and is a fast no-op when its tool is already
# present at the right version. Versions come from the committed lock files
# (Cargo.lock, package-lock.json, requirements-test.txt), so the CLI tools can
# never drift from the crates they serve.
#
# Workers are built by `edgeway build` (cli/), which links wasm-bindgen's generator
# at the pinned version and finds wasm-opt in node_modules; it never downloads a
# tool. wasm-bindgen-cli is installed only for its wasm32 test runner.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

total=6
step=0
say() { step=$((step + 1)); printf '==> [%d/%d] %s\n' "$step" "$total" "$*"; }
note() { printf '    %s\n' "$*"; }
t0=$SECONDS

locked_version() { # the version Cargo.lock resolved for crate $1
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"

say "Rust targets: wasm32-unknown-unknown (stable), nightly + rust-src (panic=unwind builds)"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  note "installing wasm32-unknown-unknown for the default toolchain"
  rustup target add wasm32-unknown-unknown
fi
if ! rustup toolchain list | grep -q '^nightly'; then
  note "installing the nightly toolchain (minimal profile)"
  rustup toolchain install nightly --profile minimal
fi
if ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
  note "adding rust-src to nightly"
  rustup component add rust-src --toolchain nightly
fi
if ! rustup target list --toolchain nightly --installed | grep -qx wasm32-unknown-unknown; then
  note "adding wasm32-unknown-unknown to nightly"
  rustup target add wasm32-unknown-unknown --toolchain nightly
fi

install_crate() { # $1 crate, $2 binary, $3 version
  local have
  have="$("$cargo_bin/$2" --version 2>/dev/null | awk '{print $NF}')" || true
  if [ "$have" = "$3" ]; then
    note "$1 $3 present"
  else
    note "installing $1 $3 (was: ${have:-absent}); this compiles from crates.io and takes a few minutes"
    # --locked first. wasm-bindgen-cli 0.2.130's lock names webpki-roots 1.0.11, which
    # crates.io no longer serves; then resolve afresh, still at exactly version $3.
    if ! cargo install "$1" --version "=$3" --locked --quiet; then
      note "$1 $3: its Cargo.lock does not resolve here; installing with a fresh resolution"
      cargo install "$1" --version "=$3" --quiet
    fi
  fi
}

say "wasm-bindgen-cli (its wasm32 test runner) at the version in Cargo.lock"
install_crate wasm-bindgen-cli wasm-bindgen "$(locked_version wasm-bindgen)"

say "Node 22, wrangler, binaryen (wasm-opt), esbuild, test tools (npm ci)"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules/.package-lock.json
else
  note "node_modules up to date"
fi

say "Python test venv (.venv)"
if [ ! -x .venv/bin/python ] || [ requirements-test.txt -nt .venv/.installed ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
  touch .venv/.installed
else
  note ".venv up to date"
fi

say "Chromium for the console's browser test (Debian package; no tool downloads its own)"
if command -v chromium >/dev/null; then
  note "$(chromium --version 2>/dev/null | head -n1)"
elif command -v apt-get >/dev/null; then
  note "installing Debian chromium"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  note "no chromium and no apt-get: install Chromium and put it on PATH as 'chromium'"
  exit 1
fi

say "Checking the tools answer"
PATH="$root/node_modules/.bin:$PATH"
note "$(node --version | sed 's/^/node /'), wrangler $(wrangler --version 2>/dev/null | tail -n1)"
note "$("$cargo_bin/wasm-bindgen" --version), $(wasm-opt --version)"
note "toolchain ready in $((SECONDS - t0)) s"
