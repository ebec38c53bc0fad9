"""RiseStage on the real Beam DirectRunner: pairs, rejected with reasons, dead letter, report,
the conservation law, and the pair format DPO trainers read."""

from __future__ import annotations

import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that
from rise_fixtures import GSM8K, all_rows, gsm8k_row

from schemas.records import PAIR_SCHEMA, examples_to_batch
from tests.rise.dpo_format import assert_dpo_row
from transforms.base import DEADLETTER, PAIRS, REJECTED, REPORT, RunContext
from transforms.rise import stage as stage_mod
from transforms.rise.answers import answers_equal, stated_answer
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import verify_rule_pair
from transforms.rise.stage import STEP_PAIRS, RiseStage, prepare_batch, rule_edit_batch

BROKEN = {
    "no_solution": gsm8k_row("Only a question?", "x"),
    "no_gold_answer": gsm8k_row("How many?", "He had some apples and then more apples."),
    "solution_disagrees_with_gold": gsm8k_row(GSM8K[0][0], GSM8K[0][1], answer="18"),
    "no_applicable_step": gsm8k_row("How many legs has a cat?", "A cat has four legs.\n#### 4"),
}
BROKEN["no_solution"]["messages"] = BROKEN["no_solution"]["messages"][:1]
BROKEN["solution_disagrees_with_gold"]["id"] = "same-messages-other-gold"
BOOM = gsm8k_row("Boom question with 2 and 3?", "So 2 + 3 = <<2+3=5>>5.\n#### 5")


def _rows() -> list[dict]:
    return all_rows() + list(BROKEN.values()) + [BOOM]


def _batches(rows: list[dict], size: int = 3) -> list[pa.RecordBatch]:
    return [examples_to_batch(rows[i:i + size]) for i in range(0, len(rows), size)]


def test_stage_pairs_rejected_deadletter_report(monkeypatch) -> None:
    real = stage_mod.rule_edit_pairs

    def boom(problem, *a, **k):  # fault injection: one row raises
        if problem.question.startswith("Boom"):
            raise RuntimeError("injected fault")
        return real(problem, *a, **k)

    monkeypatch.setattr(stage_mod, "rule_edit_pairs", boom)
    rows = _rows()
    good_ids = {r["id"] for r in all_rows()}
    all_ids = {r["id"] for r in rows}
    broken_ids = {reason: r["id"] for reason, r in BROKEN.items()}
    cfg = RiseConfig(enabled=True)

    def check_pairs(batches: list) -> None:
        table = pa.Table.from_batches(batches).to_pylist()
        assert {r["meta"]["parent_id"] for r in table} == good_ids
        for r in table:
            assert set(PAIR_SCHEMA.names) <= set(batches[0].schema.names)
            assert [m["role"] for m in r["prompt"]] == ["user"]
            assert [m["role"] for m in r["chosen"]] == ["assistant"]
            assert [m["role"] for m in r["rejected"]] == ["assistant"]
            meta = r["meta"]
            assert meta["method"] == "rule_edit" and meta["error_type"]
            assert meta["pair_kind"] == "step"  # rule edits default to step pairs
            assert json.loads(meta["extra"])["edited_solution"] == "gold"
            assert meta["lineage"]["parent_ids"] == [meta["parent_id"]]
            chosen, rejected = r["chosen"][0]["content"], r["rejected"][0]["content"]
            assert "\\boxed" not in rejected
            assert verify_rule_pair(chosen, rejected, tuple(meta["edit_span"])) is None
            assert meta["edit_distance"] >= 1

    def check_rejected(batches: list) -> None:
        got = {}
        for b in batches:
            for i, reason, d in zip(b.column("id").to_pylist(), b.column("reject_reason")
                                    .to_pylist(), b.column("reject_detail").to_pylist(),
                                    strict=True):
                got[i] = (reason, json.loads(d)["method"])
        assert {v: k for k, v in broken_ids.items()} == {i: r for i, (r, _) in got.items()}

    def check_dead(entries: list) -> None:
        assert [e["record_id"] for e in entries] == [BOOM["id"]]
        assert "injected fault" in entries[0]["error"] and "Boom" in entries[0]["raw"]

    def check_report(reports: list) -> None:
        (rep,) = reports
        assert rep["stage"] == "rise" and rep["problems_in"] == len(rows)
        assert rep["pairs"] == len(good_ids) == sum(rep["error_types"].values())
        assert rep["pairs_by_kind"] == {"step": len(good_ids)}
        assert rep["problems_paired"] == len(good_ids) and rep["conservation_holds"]
        assert abs(sum(rep["error_type_share"].values()) - 1) < 1e-9
        assert rep["mean_edit_distance"] >= 1
        assert rep["problems_deadletter"] == 1
        assert rep["rejected"] == {reason: 1 for reason in BROKEN}
        # conservation: every input is a pair's parent, rejected, or dead-lettered
        assert len(all_ids) == len(rows)
        assert rep["problems_paired"] + rep["problems_rejected"] + 1 == len(all_ids)

    def check_steps(batches: list) -> None:
        rows_ = pa.Table.from_batches(batches).to_pylist()
        assert len(rows_) == len(good_ids)
        for r in rows_:
            assert r["chosen"] != r["rejected"] and r["answer"]
            a, b = r["edit_char_span"]
            assert r["rejected"][a:b] and r["edit_span"][1] > r["edit_span"][0]

    with TestPipeline() as p:
        out = p | beam.Create(_batches(rows)) | RiseStage(cfg, RunContext(seed=7))
        assert_that(out[PAIRS], check_pairs, label="pairs")
        assert_that(out[REJECTED], check_rejected, label="rejected")
        assert_that(out[DEADLETTER], check_dead, label="dead")
        assert_that(out[REPORT], check_report, label="report")
        assert_that(out[STEP_PAIRS], check_steps, label="steps")


def test_pure_batch_functions_are_deterministic_and_scoped() -> None:
    batch = examples_to_batch(all_rows())
    cfg = RiseConfig(enabled=True)
    kept = prepare_batch(batch, cfg).kept
    a = rule_edit_batch(kept, cfg, seed=3).kept
    b = rule_edit_batch(kept, cfg, seed=3).kept
    assert a.equals(b)
    c = rule_edit_batch(kept, cfg, seed=4).kept
    assert not a.equals(c)
    for r in a.to_pylist():  # both texts end after the edited step, sharing the steps before
        chosen, rejected = r["chosen"][0]["content"], r["rejected"][0]["content"]
        assert "####" not in chosen and "####" not in rejected
        assert verify_rule_pair(chosen, rejected, tuple(r["meta"]["edit_span"])) is None
    full = rule_edit_batch(kept, RiseConfig(enabled=True, scope="full"), seed=3)
    assert full.kept is not None
    for r in full.kept.to_pylist():  # whole solutions: the error reaches the final answer
        extra = json.loads(r["meta"]["extra"])
        assert r["meta"]["pair_kind"] == "full"
        assert not answers_equal(stated_answer(r["rejected"][0]["content"]), extra["gold"])
    reasons = set(full.rejected.column("reject_reason").to_pylist()) if full.rejected else set()
    assert reasons <= {"error_not_carried_through", "no_applicable_step"}


def test_pairs_load_as_a_dpo_dataset() -> None:
    import datasets

    batch = rule_edit_batch(examples_to_batch(all_rows()), RiseConfig(enabled=True), 0).kept
    ds = datasets.Dataset(pa.Table.from_batches([batch]))
    assert set(ds.column_names) >= {"prompt", "chosen", "rejected"}
    for row in ds:
        assert_dpo_row(row)


class _FailingBackend:
    """Fault injection: a backend whose every request fails (as after exhausted retries)."""

    model_id = "failing"

    def __init__(self, config) -> None:
        pass

    def generate(self, requests):
        from transforms.llm.backend_base import Generation

        return [Generation(error="injected backend failure", raw="") for _ in requests]

    def close(self) -> None:
        pass


def test_llm_paths_route_backend_failures_to_the_dead_letter(tmp_path) -> None:
    from transforms.llm.config import LLMConfig

    rows = all_rows()
    cfg = RiseConfig(enabled=True, methods=["self_edit"])
    ctx = RunContext(seed=0, work_dir=str(tmp_path), llm=LLMConfig(cache=False, progress=False),
                     backend_factory=_FailingBackend)

    def check_dead(entries: list) -> None:
        # the policy never answers: every problem ends in the dead letter, once, as itself
        assert sorted(e["record_id"] for e in entries) == sorted(r["id"] for r in rows)
        assert all("injected backend failure" in e["error"] and e["stage"] == "rise"
                   for e in entries)

    def check_report(reports: list) -> None:
        (rep,) = reports
        assert rep["pairs"] == 0 and rep["problems_in"] == len(rows)
        assert rep["problems_deadletter"] == len(rows) and rep["conservation_holds"]

    with TestPipeline() as p:
        out = p | beam.Create(_batches(rows)) | RiseStage(cfg, ctx)
        assert_that(out[DEADLETTER], check_dead, label="dead")
        assert_that(out[REPORT], check_report, label="report")
