#!/usr/bin/env bash
# Every test: formatting and lints, the native suite (kernels, models against transformers,
# generation, CLI) on whatever GPU wgpu finds (lavapipe in CI), and the wasm32 build.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown -- -D warnings
cargo test --all-targets
