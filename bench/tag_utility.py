"""Benchmark: the TAG-INSTRUCT tag-utility combine, today's (O(tags) in-place per row) against
the one it replaced (a polars frame per row, then the whole accumulator copied by
merge_partials), in the same run on the same rows.

Data: --rows (default 50,000) synthetic tagged rows: 1-8 tags per row drawn Zipf-like from a
vocabulary of --vocab (default 3,000) tags, response tokens 5-800; seeded.

  ours      transforms.tag_instruct.stage.utility_combine() (create / add_input per row / merge
            / extract, as Beam's combiner calls it), over --shards accumulators then merged;
  baseline  the CombineFn as it was before (kept verbatim below: `BaselineUtilityFn`).

Both tables are compared tag by tag (same counts, utilities within 1e-9). Wall and process CPU
seconds are both reported (the CPU figure is steadier on a shared machine). Prints a table; the
last line is one JSON object with ours_s, baseline_s and ratio (baseline_s / ours_s: how many
times faster ours is), and the same on CPU time.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from transforms.tag_instruct.stage import utility_combine  # noqa: E402
from transforms.tag_instruct.utility import UtilityTable  # noqa: E402

Partial = dict[str, list[float]]


# ---- baseline: the combine as it was before this change (verbatim logic) ----
def _old_utility_partial(rows: Iterable[tuple[Sequence[str], int]]) -> Partial:
    tags_col: list[list[str]] = []
    tokens_col: list[int] = []
    for tags, tokens in rows:
        uniq = list(dict.fromkeys(t for t in tags if t))
        if uniq:
            tags_col.append(uniq)
            tokens_col.append(int(tokens))
    if not tags_col:
        return {}
    frame = (
        pl.DataFrame({"tags": tags_col, "tokens": tokens_col},
                     schema={"tags": pl.List(pl.String), "tokens": pl.Int64})
        .with_columns(share=pl.col("tokens") / pl.col("tags").list.len())
        .explode("tags")
        .group_by("tags")
        .agg(pl.col("share").sum().alias("sum"), pl.len().alias("count"))
    )
    return {t: [float(s), float(c)] for t, s, c in frame.iter_rows()}


def _old_merge_partials(partials: Iterable[Partial]) -> Partial:
    out: Partial = {}
    for part in partials:
        for tag, (s, c) in part.items():
            acc = out.setdefault(tag, [0.0, 0.0])
            acc[0] += s
            acc[1] += c
    return out


class BaselineUtilityFn:
    """The old `_UtilityFn` (a beam.CombineFn): rows → merged per-tag partial sums."""

    def create_accumulator(self) -> Partial:
        return {}

    def add_input(self, acc: Partial, row: tuple[list[str], int]) -> Partial:
        return _old_merge_partials([acc, _old_utility_partial([row])])

    def merge_accumulators(self, accs: Iterable[Partial]) -> Partial:
        return _old_merge_partials(accs)

    def extract_output(self, acc: Partial) -> Partial:
        return acc


def synthetic_rows(n: int, vocab: int, seed: int) -> list[tuple[list[str], int]]:
    rng = random.Random(seed)
    names = [f"tag {i}" for i in range(vocab)]
    weights = [1.0 / (i + 1) ** 0.8 for i in range(vocab)]
    return [(rng.choices(names, weights, k=rng.randint(1, 8)), rng.randint(5, 800))
            for _ in range(n)]


def run_combine(fn, rows: list[tuple[list[str], int]], shards: int
                ) -> tuple[Partial, float, float]:
    """Like Beam: one accumulator per shard (bundle), add_input per row, then merge.
    Returns (partial, wall seconds, process CPU seconds)."""
    t, c = time.perf_counter(), time.process_time()
    accs = []
    size = math.ceil(len(rows) / shards)
    for start in range(0, len(rows), size):
        acc = fn.create_accumulator()
        for row in rows[start:start + size]:
            acc = fn.add_input(acc, row)
        accs.append(acc)
    out = fn.extract_output(fn.merge_accumulators(accs))
    return out, time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--vocab", type=int, default=3_000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = synthetic_rows(args.rows, args.vocab, args.seed)
    run_combine(utility_combine(), rows[:2000], 1)  # warm-up (imports, polars start)
    run_combine(BaselineUtilityFn(), rows[:200], 1)
    ours, ours_s, ours_cpu = run_combine(utility_combine(), rows, args.shards)
    base, base_s, base_cpu = run_combine(BaselineUtilityFn(), rows, args.shards)
    t_ours, t_base = UtilityTable.from_partial(ours), UtilityTable.from_partial(base)
    same = t_ours.count == t_base.count and all(
        math.isclose(t_ours.utility[t], t_base.utility[t], rel_tol=1e-9) for t in t_base.utility)
    print(f"{'combine':<44}{'rows':>8}{'wall s':>10}{'cpu s':>10}{'rows/s':>12}")
    print(f"{'ours (in-place, O(tags) per row)':<44}{len(rows):>8}{ours_s:>10.3f}"
          f"{ours_cpu:>10.3f}{len(rows) / ours_s:>12.0f}")
    print(f"{'baseline (polars frame + full merge per row)':<44}{len(rows):>8}{base_s:>10.3f}"
          f"{base_cpu:>10.3f}{len(rows) / base_s:>12.0f}")
    print(f"tags {len(t_ours.utility)}; tables identical: {same}; ratio (baseline/ours) "
          f"{base_s / ours_s:.1f}x wall, {base_cpu / ours_cpu:.1f}x cpu")
    print(json.dumps({"bench": "tag_utility", "rows": len(rows), "tags": len(t_ours.utility),
                      "ours_s": round(ours_s, 4), "baseline_s": round(base_s, 4),
                      "ratio": round(base_s / ours_s, 1), "ours_cpu_s": round(ours_cpu, 4),
                      "baseline_cpu_s": round(base_cpu, 4),
                      "cpu_ratio": round(base_cpu / ours_cpu, 1), "same_table": same}))
    if not same:
        raise SystemExit("tables differ")


if __name__ == "__main__":
    main()
