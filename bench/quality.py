"""Benchmark: the quality stage's vectorized heuristics against the same signals computed per
record in plain Python, in the same run on the same data.

Data: ../shared/evaldata gsm8k_train.jsonl + alpaca_subset_1k.json as user/assistant Examples,
repeated to --rows (default 200,000), cut into Arrow batches of --batch-rows.

  ours      transforms.quality.core.heuristic_batch per batch: every q_* signal, the composite
            quality_score and the default filters (split into kept / rejected batches);
  baseline  transforms.quality.reference.record_signals per record: the same signals by the same
            definitions, straightforward Python (re, Counter, unicodedata), no filtering.

The two are interleaved batch by batch (the baseline on the first --baseline-rows/#batches rows
of each batch) so both see the same machine load. One-time set-up (regex compilation, the
code-point table) is timed separately in a warm-up. The baseline rows are also compared value
by value with ours. `--beam` also runs QualityStage on the DirectRunner over all rows.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from schemas.records import example_row, examples_to_batch  # noqa: E402
from transforms.quality.config import QualityConfig  # noqa: E402
from transforms.quality.core import heuristic_batch  # noqa: E402
from transforms.quality.reference import record_signals  # noqa: E402
from transforms.quality.signals import compute_signals  # noqa: E402

EVALDATA = ROOT.parent / "shared" / "evaldata"


def load_rows(evaldata: Path) -> list[dict]:
    rows = []
    with open(evaldata / "gsm8k_train.jsonl", encoding="utf-8") as f:
        for i, line in enumerate(f):
            rec = json.loads(line)
            rows.append((f"gsm8k-{i}", rec["question"], rec["answer"]))
    alpaca = json.loads((evaldata / "alpaca_subset_1k.json").read_text(encoding="utf-8"))
    for i, rec in enumerate(alpaca):
        prompt = rec["instruction"] + (f"\n\n{rec['input']}" if rec.get("input") else "")
        rows.append((f"alpaca-{i}", prompt, rec["output"]))
    return [example_row(rid, [{"role": "user", "content": p}, {"role": "assistant", "content": r}])
            for rid, p, r in rows]


def same(a: object, b: object) -> bool:
    if isinstance(b, float):
        return isinstance(a, float) and math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows for our path")
    ap.add_argument("--baseline-rows", type=int, default=10_000,
                    help="rows for the per-record baseline (its rate is rows/s)")
    ap.add_argument("--batch-rows", type=int, default=2000)
    ap.add_argument("--evaldata", type=Path, default=EVALDATA)
    ap.add_argument("--beam", action="store_true", help="also run QualityStage on DirectRunner")
    args = ap.parse_args()

    base = load_rows(args.evaldata)
    rows = [dict(base[i % len(base)], id=f"{base[i % len(base)]['id']}#{i // len(base)}")
            for i in range(args.rows)]
    batches = [examples_to_batch(rows[i:i + args.batch_rows])
               for i in range(0, len(rows), args.batch_rows)]
    per_batch_baseline = max(1, min(args.batch_rows, args.baseline_rows // len(batches)))
    config = QualityConfig(enabled=True)

    t0 = time.perf_counter()
    heuristic_batch(batches[0].slice(0, 50), config)
    record_signals(rows[0]["messages"])
    setup_s = time.perf_counter() - t0

    ours_s = base_s = 0.0
    base_n = kept = mismatched = checked = 0
    for b_idx, batch in enumerate(batches):
        t = time.perf_counter()
        result = heuristic_batch(batch, config)
        ours_s += time.perf_counter() - t
        kept += result.kept.num_rows if result.kept is not None else 0
        sample = rows[b_idx * args.batch_rows: b_idx * args.batch_rows + per_batch_baseline]
        t = time.perf_counter()
        ref = [record_signals(r["messages"]) for r in sample]
        base_s += time.perf_counter() - t
        base_n += len(sample)
        ours_sig = compute_signals(batch.slice(0, len(sample)))
        for name, arr in ours_sig.items():
            values = arr.to_pylist()
            for j, r in enumerate(ref):
                checked += 1
                mismatched += not same(values[j], r[name])

    ours_rps = len(rows) / ours_s
    base_rps = base_n / base_s
    figures = {
        "bench": "quality", "rows": len(rows), "batch_rows": args.batch_rows,
        "ours_rows_per_s": round(ours_rps, 1), "baseline_rows_per_s": round(base_rps, 1),
        "ratio": round(ours_rps / base_rps, 2), "baseline_rows": base_n,
        "values_checked": checked, "values_mismatched": mismatched,
        "kept_frac": round(kept / len(rows), 4), "setup_s": round(setup_s, 2),
        "cpus": os.cpu_count(),
    }
    if args.beam:
        import apache_beam as beam

        from transforms.base import RunContext
        from transforms.quality.stage import QualityStage

        t = time.perf_counter()
        with beam.Pipeline("DirectRunner") as p:
            _ = p | beam.Create(batches, reshuffle=False) | QualityStage(config, RunContext())
        figures["beam_rows_per_s"] = round(len(rows) / (time.perf_counter() - t), 1)

    print(f"{'path':<34}{'rows':>10}{'seconds':>10}{'rows/s':>12}")
    print(f"{'ours (vectorized heuristic stage)':<34}{len(rows):>10}{ours_s:>10.2f}{ours_rps:>12.0f}")
    print(f"{'baseline (per-record Python)':<34}{base_n:>10}{base_s:>10.2f}{base_rps:>12.0f}")
    if "beam_rows_per_s" in figures:
        print(f"{'ours through Beam DirectRunner':<34}{len(rows):>10}{'':>10}"
              f"{figures['beam_rows_per_s']:>12.0f}")
    print(f"ratio {figures['ratio']}x; {mismatched} of {checked} signal values differ "
          f"from the baseline; kept {figures['kept_frac']:.1%} of rows")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
