#!/usr/bin/env bash
# Every test: formatting and lints, the native suite (kernels, models against transformers,
# generation, CLI) on whatever GPU wgpu finds (lavapipe in CI), then the wasm package and
# the browser tests in headless Chromium on WebGPU.
set -euo pipefail
cd "$(dirname "$0")/.."

# Mesa's device-select layer cannot reach a display on a headless machine and says so for
# every device a test opens; the CLI switches it off itself (tests/cli.rs checks that).
[ -d "${XDG_RUNTIME_DIR:-/nonexistent}" ] || export NODEVICE_SELECT=1

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown -- -D warnings
cargo test --all-targets
npm --prefix web run build
npm --prefix web test
