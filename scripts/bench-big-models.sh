#!/usr/bin/env bash
# Streamed loading of real-shape models (issue 14): writes an nllb-200-distilled-600M-shaped
# model (f16 file) and an mt5-small-shaped one (f32 file) with deterministic random weights
# under target/bench-models, loads each natively (a process per load, so each peak RSS is its
# own) without a limit and with a 16 MiB binding limit, then in headless Chromium. Prints one
# JSON line per load. Not a test: it takes minutes and gigabytes.
#   scripts/bench-big-models.sh            (needs the web build: npm --prefix web run build)
set -euo pipefail
cd "$(dirname "$0")/.."
export NODEVICE_SELECT=1
cargo build --release --quiet --bin bench
bench=target/release/bench
out=target/bench-models
[ -f "$out/nllb-600m/model.safetensors" ] || "$bench" --write-model nllb-600m "$out/nllb-600m" --dtype f16
[ -f "$out/mt5-small/model.safetensors" ] || "$bench" --write-model mt5-small "$out/mt5-small" --dtype f32
for model in nllb-600m mt5-small; do
    for limit in "" "--max-buffer-bytes 16777216"; do
        # shellcheck disable=SC2086
        "$bench" --load-model "$out/$model" --weights f16 $limit
    done
done
node web/bench/big-models.mjs --weights f16
