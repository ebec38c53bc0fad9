"""Benchmark: vectorized decontamination against a brute-force Python set-intersection check.

Index: >= 20k benchmark items built from ../shared/evaldata texts (GSM8K train+test questions and
answers, MATH-500 problems and solutions, HumanEval prompts, sentences of half of the Alpaca
subset and of the Alpaca seed tasks). Training rows (default 60k): 2-5 sentences from the other,
unindexed half of the Alpaca subset (real text sharing common phrases with the index), plus a few
percent planted contamination (items verbatim, with light edits, with changed numbers).

In the same process and on the same rows, with the default rules (Tulu 3 8-gram coverage, GPT-3
13-gram) and numbers masked:
  ours        `detect_batch` (the stage's pure core) on Arrow batches of 2000 rows;
  bruteforce  `BruteForce.check`: Python tokenization, n-gram tuples, set intersection with a
              dict of benchmark n-grams, coverage from sets of positions; on the first
              --bf-rows rows (a rate; both flag the same rows there, which is checked).
Prints a table and ends with one JSON line: ours_rows_per_s, bruteforce_rows_per_s, ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from schemas.records import example_row, examples_to_batch  # noqa: E402
from transforms.decontam.benchmarks import BenchmarkItems  # noqa: E402
from transforms.decontam.config import DecontamConfig  # noqa: E402
from transforms.decontam.detect import Detector, detect_batch  # noqa: E402
from transforms.decontam.reference import BruteForce  # noqa: E402

EVALDATA = ROOT.parent / "shared" / "evaldata"
_SENT = re.compile(r"(?<=[.!?])\s+")


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVALDATA / name).open(encoding="utf-8")]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text or "") if len(s.split()) >= 4]


def build_items() -> tuple[BenchmarkItems, list[str]]:
    """Benchmark items from evaldata, and the unindexed sentences used for clean rows."""
    items = BenchmarkItems()
    sources: list[tuple[str, list[str]]] = []
    gsm = _jsonl("gsm8k_train.jsonl") + _jsonl("gsm8k_test.jsonl")
    sources.append(("gsm8k", [r["question"] for r in gsm]))
    sources.append(("gsm8k_answers", [re.sub(r"<<[^>]*>>", "", r["answer"]) for r in gsm]))
    math = _jsonl("math500_test.jsonl")
    sources.append(("math500", [r["problem"] for r in math] + [r["solution"] for r in math]))
    sources.append(("humaneval", [r["prompt"] for r in _jsonl("humaneval.jsonl")]))
    alpaca = json.loads((EVALDATA / "alpaca_subset_1k.json").read_text(encoding="utf-8"))
    indexed, clean = alpaca[: len(alpaca) // 2], alpaca[len(alpaca) // 2:]
    seeds = _jsonl("alpaca_seed_tasks.jsonl")
    alpaca_sents = [s for r in indexed for f in ("instruction", "input", "output")
                    for s in _sentences(r[f])]
    alpaca_sents += [s for r in seeds for s in _sentences(r["instruction"])]
    alpaca_sents += [s for r in seeds for inst in r["instances"] for s in
                     _sentences(inst["output"])]
    sources.append(("alpaca", alpaca_sents))
    for b, (name, texts) in enumerate(sources):
        items.benchmarks.append(name)
        items.skipped[name] = 0
        for i, text in enumerate(texts):
            items.bench.append(b)
            items.ids.append(str(i))
            items.texts.append(text)
    clean_sents = [s for r in clean for f in ("instruction", "input", "output")
                   for s in _sentences(r[f])]
    return items, clean_sents


def _edit(rng: random.Random, text: str, kind: str) -> str:
    words = text.split()
    if kind == "edit":
        for _ in range(max(1, len(words) // 12)):
            words[rng.randrange(len(words))] = rng.choice(["this", "that", "some", "a"])
    elif kind == "numbers":
        words = [str(rng.randint(2, 99)) if w.isdigit() else w for w in words]
    return " ".join(words)


def build_rows(items: BenchmarkItems, clean: list[str], n: int, seed: int,
               planted: float) -> list[str]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if rng.random() < planted:
            item = items.texts[rng.randrange(len(items))]
            text = _edit(rng, item, rng.choice(["verbatim", "edit", "numbers"]))
            rows.append(rng.choice(clean) + " " + text)
        else:
            rows.append(" ".join(rng.choice(clean) for _ in range(rng.randint(2, 5))))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--bf-rows", type=int, default=5_000)
    ap.add_argument("--batch-rows", type=int, default=2000)
    ap.add_argument("--planted", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not EVALDATA.exists():
        sys.exit(f"bench/decontam.py needs {EVALDATA}")

    items, clean = build_items()
    rows = build_rows(items, clean, args.rows, args.seed, args.planted)
    cfg = DecontamConfig(enabled=True, benchmarks=[{"name": "evaldata", "path": "-"}])
    batches = [examples_to_batch([
        example_row(f"r{i:07d}", [{"role": "user", "content": t},
                                  {"role": "assistant", "content": "ok"}])
        for i, t in enumerate(rows[s:s + args.batch_rows], start=s)])
        for s in range(0, len(rows), args.batch_rows)]

    t0 = time.perf_counter()
    det = Detector(cfg, items)
    ours_build = time.perf_counter() - t0
    detect_batch(batches[0].slice(0, 10), det)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    results = [detect_batch(b, det) for b in batches]
    ours_s, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    flagged = {}
    for res in results:
        if res.rejected is not None:
            flagged.update(zip(res.rejected.column("id").to_pylist(),
                               res.rejected.column("reject_reason").to_pylist(), strict=True))

    t0 = time.perf_counter()
    brute = BruteForce(items.texts, cfg.rules, cfg.mask_numbers, cfg.max_item_share)
    bf_build = time.perf_counter() - t0
    m = min(args.bf_rows, len(rows))
    t0, c0 = time.perf_counter(), time.process_time()
    bf_flagged = {}
    for i in range(m):
        reason, _ = brute.check([rows[i]])
        if reason is not None:
            bf_flagged[f"r{i:07d}"] = reason
    bf_s, bf_cpu = time.perf_counter() - t0, time.process_time() - c0
    ours_subset = {k: v for k, v in flagged.items() if int(k[1:]) < m}
    agree = ours_subset == bf_flagged

    ours_rps, bf_rps = len(rows) / ours_s, m / bf_s
    stats = det.index.stats()
    print(f"index: {stats['items']} benchmark items, vocab {stats['vocab']}, "
          f"n-grams {stats['ngrams']}, dropped as boilerplate {stats['ngrams_dropped_common']}")
    print(f"rules: {[(r.name, r.n, r.min_coverage) for r in cfg.rules]}, numbers masked")
    print(f"{'':12s} {'rows':>8s} {'build s':>8s} {'check s':>8s} {'rows/s':>10s} {'flagged':>8s}")
    print(f"{'ours':12s} {len(rows):8d} {ours_build:8.2f} {ours_s:8.2f} {ours_rps:10.0f} "
          f"{len(flagged):8d}")
    print(f"{'bruteforce':12s} {m:8d} {bf_build:8.2f} {bf_s:8.2f} {bf_rps:10.0f} "
          f"{len(bf_flagged):8d}")
    print(f"CPU time (the machine is shared): ours {len(rows) / ours_cpu:.0f} rows per CPU "
          f"second, bruteforce {m / bf_cpu:.0f}")
    print(f"same flagged rows and reasons on the first {m} rows: {agree}")
    print(json.dumps({"bench": "decontam", "benchmark_items": len(items), "rows": len(rows),
                      "ours_rows_per_s": round(ours_rps), "bruteforce_rows_per_s": round(bf_rps),
                      "ratio": round(ours_rps / bf_rps, 1), "flagged": len(flagged),
                      "agree_with_bruteforce": agree,
                      "ours_rows_per_cpu_s": round(len(rows) / ours_cpu),
                      "bruteforce_rows_per_cpu_s": round(m / bf_cpu), "ours_index_build_s": round(ours_build, 2),
                      "bruteforce_index_build_s": round(bf_build, 2)}))


if __name__ == "__main__":
    main()
