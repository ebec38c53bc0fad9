"""DecontamStage on the real DirectRunner: outputs, rejected reasons, report, dead letter."""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from decontam_helpers import fixture_specs, gsm_questions, make_batch

from transforms.base import DEADLETTER, MAIN, REJECTED, REPORT, RunContext
from transforms.decontam.config import DecontamConfig
from transforms.decontam.detect import Detector
from transforms.decontam.stage import DecontamStage

Q = gsm_questions()
CONTAMINATED = {"c1": "Solve: " + Q[0], "c2": Q[3].replace("150", "200"),
                "c3": "Tobias is saving for a telescope that costs $360. He already has $85 and "
                      "earns"}
CLEAN = {"k1": "Write a haiku about autumn leaves.",
         "k2": "How many dollars does she earn each morning selling bread for $4?",
         "k3": "Explain recursion to a child."}


def _rows(rows: list[Any]) -> list[dict[str, Any]]:
    return [r for b in rows for r in b.to_pylist()]


def _run(stage: DecontamStage, batches: list, checks: Any) -> None:
    """Apply `stage` to `batches` on the DirectRunner; `checks(outputs)` adds assert_thats."""
    with BeamTestPipeline() as p:
        checks(p | beam.Create(batches) | stage)


def test_stage_routes_rows_and_reports() -> None:
    batches = [make_batch(list(CONTAMINATED.items())[:2] + [("k1", CLEAN["k1"])]),
               make_batch([("c3", CONTAMINATED["c3"]), ("k2", CLEAN["k2"]),
                           ("k3", CLEAN["k3"])])]
    cfg = DecontamConfig(enabled=True, benchmarks=fixture_specs(), sample_pairs=2)

    def check_rejected(batches: list) -> None:
        rows = _rows(batches)
        assert sorted(r["id"] for r in rows) == ["c1", "c2", "c3"]
        by_id = {r["id"]: r for r in rows}
        assert by_id["c1"]["reject_reason"] == "contaminated_tulu3"
        assert by_id["c3"]["reject_reason"] == "contaminated_gpt3"  # 13+ words, < 50% of item
        for r in rows:
            detail = json.loads(r["reject_detail"])
            assert r["reject_stage"] == "decontam"
            assert detail["benchmark"] == "gsm8k" and detail["span"]
        assert json.loads(by_id["c2"]["reject_detail"])["item_id"] == "3"

    def check_report(reports: list) -> None:
        assert len(reports) == 1
        rep = reports[0]
        assert rep["stage"] == "decontam"
        assert (rep["rows_checked"], rep["rows_flagged"], rep["rows_deadlettered"]) == (6, 3, 0)
        assert rep["reasons"] == {"contaminated_gpt3": 1, "contaminated_tulu3": 2}
        gsm = rep["benchmarks"]["gsm8k"]
        assert (gsm["items"], gsm["rows_flagged"], gsm["items_hit"]) == (10, 3, 3)
        assert gsm["item_ids_hit"] == ["0", "2", "3"]
        assert gsm["share_overlapped"] == 0.3
        assert [s["row_id"] for s in gsm["samples"]] == ["c1", "c2"]
        assert gsm["samples"][0]["span"].startswith("marisol picks 0 apples")
        assert rep["benchmarks"]["humaneval"]["rows_flagged"] == 0

    def checks(out: dict) -> None:
        assert_that(out[MAIN] | beam.FlatMap(lambda b: b.column("id").to_pylist()),
                    equal_to(["k1", "k2", "k3"]), label="main")
        assert_that(out[REJECTED], check_rejected, label="rejected")
        assert_that(out[DEADLETTER], equal_to([]), label="dead")
        assert_that(out[REPORT], check_report, label="report")

    _run(DecontamStage(cfg, RunContext()), batches, checks)


def test_failing_row_goes_to_the_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the check raises on one row; the rest of its batch still flows."""
    real_find = Detector.find

    def faulty(self: Detector, batch: Any) -> Any:
        if "boom" in batch.column("id").to_pylist():
            raise RuntimeError("injected fault")
        return real_find(self, batch)

    monkeypatch.setattr(Detector, "find", faulty)
    batch = make_batch([("c1", CONTAMINATED["c1"]), ("boom", "anything"),
                        ("k1", CLEAN["k1"])])
    cfg = DecontamConfig(enabled=True, benchmarks=fixture_specs())

    def check_dead(entries: list) -> None:
        assert len(entries) == 1
        e = entries[0]
        assert (e["stage"], e["record_id"]) == ("decontam", "boom")
        assert "injected fault" in e["error"] and json.loads(e["raw"])["id"] == "boom"

    def check_report(reports: list) -> None:
        rep = reports[0]
        assert (rep["rows_checked"], rep["rows_flagged"], rep["rows_deadlettered"]) == (2, 1, 1)

    def checks(out: dict) -> None:
        ids = beam.FlatMap(lambda b: b.column("id").to_pylist())
        assert_that(out[MAIN] | "MainIds" >> ids, equal_to(["k1"]), label="main")
        assert_that(out[REJECTED] | "RejIds" >> beam.FlatMap(
            lambda b: b.column("id").to_pylist()), equal_to(["c1"]), label="rejected")
        assert_that(out[DEADLETTER], check_dead, label="dead")
        assert_that(out[REPORT], check_report, label="report")

    _run(DecontamStage(cfg, RunContext()), [batch], checks)


def test_every_row_ends_somewhere() -> None:
    """Conservation: rows in = kept + rejected + dead letter."""
    rows = [(f"r{i:03d}", (Q[i % 10] if i % 3 == 0 else f"Tell me fact number {i} about owls."))
            for i in range(60)]
    batches = [make_batch(rows[i:i + 25]) for i in range(0, 60, 25)]
    cfg = DecontamConfig(enabled=True, benchmarks=fixture_specs())

    def checks(out: dict) -> None:
        tagged = [
            out[MAIN] | "K" >> beam.FlatMap(lambda b: [("kept", i) for i in
                                                       b.column("id").to_pylist()]),
            out[REJECTED] | "R" >> beam.FlatMap(lambda b: [("rej", i) for i in
                                                           b.column("id").to_pylist()]),
            out[DEADLETTER] | "D" >> beam.Map(lambda e: ("dead", e["record_id"])),
        ] | beam.Flatten()
        expected = [("rej" if i % 3 == 0 else "kept", f"r{i:03d}") for i in range(60)]
        assert_that(tagged, equal_to(expected), label="conservation")

    _run(DecontamStage(cfg, RunContext()), batches, checks)


def test_report_does_not_depend_on_batch_order() -> None:
    rows = [(f"r{i:03d}", Q[i % 10] if i % 4 == 0 else f"Owl fact {i}.") for i in range(40)]
    batches = [make_batch(rows[i:i + 10]) for i in range(0, 40, 10)]
    cfg = DecontamConfig(enabled=True, benchmarks=fixture_specs(), sample_pairs=3)

    def same(reports: list) -> None:
        assert len(reports) == 2 and reports[0] == reports[1]
        assert reports[0]["rows_flagged"] == 10
        assert [s["row_id"] for s in reports[0]["benchmarks"]["gsm8k"]["samples"]] == \
            ["r000", "r004", "r008"]

    with BeamTestPipeline() as p:
        forward = p | "Fwd" >> beam.Create(batches) | "S1" >> DecontamStage(cfg, RunContext())
        backward = p | "Bwd" >> beam.Create(batches[::-1]) | "S2" >> DecontamStage(cfg, RunContext())
        assert_that((forward[REPORT], backward[REPORT]) | beam.Flatten(), same)
