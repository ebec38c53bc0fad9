"""Benchmark: our rule editor (configs/rise_gsm8k.yaml: a model-free variant of RISE, not the
paper's method) on the first 1,000 GSM8K train problems (no model).

In one process, on the same problems:
  step   `rule_edit_batch` with scope step (the default: prefix + edited step vs prefix +
         correct step); coverage = problems with a pair; every pair is checked independently
         (`verify_rule_pair`: outside the edit the texts are equal, an equation in the edit is
         false);
  full   the same with scope full: the edited result is carried through the later steps, and
         every rejected solution's stated final answer must differ from the gold one;
  parse  the peer: only splitting each solution into steps and finding its equations (what any
         editor must do), for the ratio of our cost to that floor.
Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from schemas.ids import example_id  # noqa: E402
from schemas.records import example_row, examples_to_batch  # noqa: E402
from transforms.rise.answers import answers_equal, stated_answer  # noqa: E402
from transforms.rise.config import RiseConfig  # noqa: E402
from transforms.rise.equations import find_equations  # noqa: E402
from transforms.rise.pairs import verify_rule_pair  # noqa: E402
from transforms.rise.stage import prepare_batch, rule_edit_batch  # noqa: E402
from transforms.rise.steps import split_steps  # noqa: E402

EVALDATA = ROOT.parent / "shared" / "evaldata"


def load_rows(path: Path, n: int) -> list[dict]:
    rows = []
    with path.open() as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            d = json.loads(line)
            msgs = [{"role": "user", "content": d["question"]},
                    {"role": "assistant", "content": d["answer"]}]
            rows.append(example_row(example_id(msgs), msgs,
                                    {"dataset": "gsm8k_train", "file": path.name, "row": i}))
    return rows


def run_scope(rows: list[dict], scope: str) -> tuple[list[dict], Counter, float]:
    cfg = RiseConfig(enabled=True, scope=scope)
    pairs, reasons = [], Counter()
    t0 = time.perf_counter()
    for start in range(0, len(rows), 250):
        prep = prepare_batch(examples_to_batch(rows[start:start + 250]), cfg)
        edited = rule_edit_batch(prep.kept, cfg, seed=0)
        for res in (prep, edited):
            if res.rejected is not None:
                reasons.update(res.rejected.column("reject_reason").to_pylist())
            assert not res.deadletter, res.deadletter[:1]
        pairs += [] if edited.kept is None else edited.kept.to_pylist()
    return pairs, reasons, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--evaldata", type=Path, default=EVALDATA)
    ap.add_argument("--problems", type=int, default=1000)
    args = ap.parse_args()
    rows = load_rows(args.evaldata / "gsm8k_train.jsonl", args.problems)
    n = len(rows)

    step, step_reasons, ours_s = run_scope(rows, "step")
    bad = [p["id"] for p in step if verify_rule_pair(
        p["chosen"][0]["content"], p["rejected"][0]["content"],
        tuple(p["meta"]["edit_span"])) is not None]
    full, full_reasons, _ = run_scope(rows, "full")
    still_right = [p["id"] for p in full if answers_equal(
        stated_answer(p["rejected"][0]["content"]), json.loads(p["meta"]["extra"])["gold"])]

    t0 = time.perf_counter()
    for r in rows:
        for s in split_steps(r["messages"][1]["content"]):
            find_equations(s.text)
    parse_s = time.perf_counter() - t0

    types = Counter(p["meta"]["error_type"] for p in step)
    dist = [p["meta"]["edit_distance"] for p in step]
    print(f"{'scope':<8}{'pairs':>7}{'coverage':>10}  rejected by reason")
    print(f"{'step':<8}{len(step):>7}{len(step) / n:>10.1%}  {dict(step_reasons)}")
    print(f"{'full':<8}{len(full):>7}{len(full) / n:>10.1%}  {dict(full_reasons)}")
    print(f"step pairs whose edited equation is not false (or text outside the edit changed): "
          f"{len(bad)}; full pairs whose rejected answer is still right: {len(still_right)}")
    print(f"error types: {dict(sorted(types.items()))}; mean edit distance "
          f"{sum(dist) / len(dist):.2f}")
    print(f"{'timing':<8}{'problems/s':>12}\n{'ours':<8}{n / ours_s:>12.0f}\n"
          f"{'parse':<8}{n / parse_s:>12.0f}")
    print(json.dumps({
        "bench": "rise_rule_edit", "problems": n, "pairs_step": len(step),
        "coverage_step": round(len(step) / n, 4), "equations_not_false": len(bad),
        "pairs_full": len(full), "coverage_full": round(len(full) / n, 4),
        "full_still_correct": len(still_right), "error_types": len(types),
        "mean_edit_distance": round(sum(dist) / len(dist), 3),
        "ours_problems_per_s": round(n / ours_s), "parse_only_problems_per_s": round(n / parse_s),
        "ratio_vs_parse_only": round(parse_s / ours_s, 3)}))


if __name__ == "__main__":
    main()
