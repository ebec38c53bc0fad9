"""GSM8K train against GSM8K test (../shared/evaldata): the stage's report matches a
brute-force set-intersection check, and finds the template-sharing train questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from schemas.records import example_row, examples_to_batch
from transforms.base import REJECTED, REPORT, RunContext
from transforms.decontam.benchmarks import load_benchmarks
from transforms.decontam.config import DecontamConfig
from transforms.decontam.reference import BruteForce
from transforms.decontam.stage import DecontamStage


def _train_rows(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).open()]


def _train_batches(path: str) -> list[pa.RecordBatch]:
    """The train file as Example batches of 2,000 rows. Read inside the pipeline: a 5 MB
    `beam.Create` would be pickled (and bz2-compressed) several times over by Beam."""
    examples = [example_row(f"train-{i:05d}", [{"role": "user", "content": r["question"]},
                                               {"role": "assistant", "content": r["answer"]}])
                for i, r in enumerate(_train_rows(path))]
    return [examples_to_batch(examples[i:i + 2000]) for i in range(0, len(examples), 2000)]


def _brute_force(cfg: DecontamConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    items = load_benchmarks(cfg.benchmarks)
    brute = BruteForce(items.texts, cfg.rules, cfg.mask_numbers, cfg.max_item_share)
    flagged, hit, reasons = {}, set(), {}
    for i, r in enumerate(rows):
        reason, by_rule = brute.check([r["question"]])
        if reason is None:
            continue
        flagged[f"train-{i:05d}"] = reason
        reasons[reason] = reasons.get(reason, 0) + 1
        hit |= {items.ids[j] for hits in by_rule.values() for j in hits}
    return {"flagged": flagged, "items_hit": sorted(hit), "reasons": reasons,
            "items": len(items)}


@pytest.mark.slow
@pytest.mark.parametrize(("rules", "mask", "at_least"), [
    (["gpt3"], False, 4),             # the README's 4 template-sharing questions (13 words)
    (["tulu3", "gpt3"], True, 4),     # the default: numbers masked finds more of each template
])
def test_gsm8k_train_vs_test_matches_brute_force(evaldata_dir: Path, rules: list[str],
                                                 mask: bool, at_least: int) -> None:
    cfg = DecontamConfig(enabled=True, rules=rules, mask_numbers=mask, sample_pairs=3,
                         benchmarks=[{"name": "gsm8k",
                                      "path": str(evaldata_dir / "gsm8k_test.jsonl")}])
    train = str(evaldata_dir / "gsm8k_train.jsonl")
    rows = _train_rows(train)
    want = _brute_force(cfg, rows)
    assert len(want["flagged"]) >= at_least
    if not mask:
        assert len(want["flagged"]) == 4  # stated in ../shared/evaldata/README.md

    def check_report(reports: list) -> None:
        rep = reports[0]
        gsm = rep["benchmarks"]["gsm8k"]
        assert rep["rows_checked"] == len(rows)
        assert rep["rows_flagged"] == gsm["rows_flagged"] == len(want["flagged"])
        assert rep["reasons"] == dict(sorted(want["reasons"].items()))
        assert gsm["item_ids_hit"] == want["items_hit"]
        assert gsm["items"] == want["items"] == 1319
        assert gsm["share_overlapped"] == round(len(want["items_hit"]) / 1319, 6)
        for s in gsm["samples"]:
            assert len(s["span"].split()) >= (13 if s["rule"] == "gpt3" else 8)

    def check_rejected(batches: list) -> None:
        got = {r["id"]: r["reject_reason"] for b in batches for r in
               b.select(["id", "reject_reason"]).to_pylist()}
        assert got == want["flagged"]

    with BeamTestPipeline() as p:
        out = (p | beam.Create([train]) | beam.FlatMap(_train_batches)
               | DecontamStage(cfg, RunContext()))
        assert_that(out[REPORT], check_report, label="report")
        assert_that(out[REJECTED], check_rejected, label="rejected")
