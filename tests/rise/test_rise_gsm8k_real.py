"""The rule editor on the first 1,000 real GSM8K train problems: through the pure core and
through the CLI with configs/rise_gsm8k.yaml. Every pair's edited equation is false and the rest
of the rejected text equals the chosen one; at least 95% of problems yield a pair; the pairs
load with `datasets` in the conversational form trl.DPOTrainer reads, and the step pairs in
RISE's layout. (bench/rise_rule_edit.py prints the same figures, and scope full's.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.rise_rule_edit import load_rows
from schemas.records import examples_to_batch
from tests.rise.dpo_format import assert_dpo_row
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import verify_rule_pair
from transforms.rise.stage import prepare_batch, rule_edit_batch

ROOT = Path(__file__).resolve().parents[2]


def _problems(evaldata: Path, n: int = 1000) -> list[dict]:
    return load_rows(evaldata / "gsm8k_train.jsonl", n)


def _check_pairs(pairs: list[dict]) -> None:
    for r in pairs:
        assert_dpo_row(r)
        assert r["meta"]["pair_kind"] == "step"
        chosen, rejected = r["chosen"][0]["content"], r["rejected"][0]["content"]
        span = tuple(r["meta"]["edit_span"])
        assert verify_rule_pair(chosen, rejected, span) is None, (chosen, rejected, span)
        # the edit stays inside the chosen step's line of a GSM8K solution
        assert "\n" not in rejected[span[0]:span[1]]


@pytest.mark.slow
def test_rule_edit_core_on_real_gsm8k(evaldata_dir: Path) -> None:
    rows = _problems(evaldata_dir)
    cfg = RiseConfig(enabled=True)
    pairs, rejected = [], 0
    for start in range(0, len(rows), 250):
        batch = examples_to_batch(rows[start:start + 250])
        prep = prepare_batch(batch, cfg)
        assert prep.rejected is None and not prep.deadletter
        res = rule_edit_batch(prep.kept, cfg, seed=0)
        assert not res.deadletter
        pairs += res.kept.to_pylist()
        rejected += 0 if res.rejected is None else res.rejected.num_rows
    assert len(pairs) + rejected == len(rows)
    assert len(pairs) >= 0.95 * len(rows)
    assert len({p["meta"]["error_type"] for p in pairs}) == 7
    _check_pairs(pairs)


@pytest.mark.slow
def test_rise_gsm8k_config_through_the_cli(evaldata_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    source = f"[{{path: {evaldata_dir / 'gsm8k_train.jsonl'}, name: gsm8k_train, limit: 1000}}]"
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", "configs/rise_gsm8k.yaml",
                           "--out", str(out), "--set", f"sources={source}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from schemas.step_pairs import conversational

    files = sorted((out / "preference").glob("*.parquet"))
    full = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
    assert all(p["meta"]["pair_kind"] == "full" for p in full)  # step pairs: preference_steps/
    step_files = sorted((out / "preference_steps").glob("*.parquet"))
    pairs = full + [conversational(r) for f in step_files for r in pq.read_table(f).to_pylist()]
    assert len(pairs) >= 950
    _check_pairs(pairs)
    import datasets

    steps = datasets.load_dataset("parquet", data_dir=str(out / "preference_steps"),
                                  split="train")
    assert steps.num_rows == len(pairs) - len(full) and {"prompt", "initial_reason_steps", "chosen",
                                             "rejected", "answer", "edit_span"} <= set(
        steps.column_names)
    by_id = {p["id"]: p for p in pairs}
    for r in steps.select(range(50)):
        p = by_id[r["id"]]
        assert p["rejected"][0]["content"] == r["initial_reason_steps"] + r["rejected"]
    manifest = json.loads((out / "manifest.json").read_text())
    rep = manifest["reports"]["rise"]
    assert rep["problems_in"] == 1000 and rep["pairs"] == len(pairs)
    assert rep["conservation_holds"]
    assert sum(rep["error_types"].values()) == len(pairs)
    assert rep["mean_edit_distance"] > 0
    assert manifest["conservation"]["holds"]
