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
from transforms.base import DEADLETTER, PAIRS, REJECTED, REPORT, RunContext
from transforms.rise import stage as stage_mod
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import verify_rule_pair
from transforms.rise.stage import RiseStage, prepare_batch, rule_edit_batch

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
    real = stage_mod.rule_edit

    def boom(solution, question, *a, **k):  # fault injection: one row raises
        if question.startswith("Boom"):
            raise RuntimeError("injected fault")
        return real(solution, question, *a, **k)

    monkeypatch.setattr(stage_mod, "rule_edit", boom)
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
        assert rep["stage"] == "rise" and rep["examples_in"] == len(rows)
        assert rep["pairs"] == len(good_ids) == sum(rep["error_types"].values())
        assert abs(sum(rep["error_type_share"].values()) - 1) < 1e-9
        assert rep["mean_edit_distance"] >= 1
        assert rep["deadletter"] == 1
        assert sum(rep["rejected"].values()) == len(BROKEN)
        # conservation: every input is a pair's parent, rejected, or dead-lettered
        assert len(all_ids) == len(rows)
        assert rep["pairs"] + sum(rep["rejected"].values()) + rep["deadletter"] == len(all_ids)

    with TestPipeline() as p:
        out = p | beam.Create(_batches(rows)) | RiseStage(cfg, RunContext(seed=7))
        assert_that(out[PAIRS], check_pairs, label="pairs")
        assert_that(out[REJECTED], check_rejected, label="rejected")
        assert_that(out[DEADLETTER], check_dead, label="dead")
        assert_that(out[REPORT], check_report, label="report")


def test_pure_batch_functions_are_deterministic_and_scoped() -> None:
    batch = examples_to_batch(all_rows())
    cfg = RiseConfig(enabled=True)
    kept = prepare_batch(batch, cfg).kept
    a = rule_edit_batch(kept, cfg, seed=3).kept
    b = rule_edit_batch(kept, cfg, seed=3).kept
    assert a.equals(b)
    c = rule_edit_batch(kept, cfg, seed=4).kept
    assert not a.equals(c)
    step_cfg = RiseConfig(enabled=True, scope="through_step")
    s = rule_edit_batch(kept, step_cfg, seed=3).kept.to_pylist()
    for r in s:  # both texts end after the edited step, and share the steps before it
        chosen, rejected = r["chosen"][0]["content"], r["rejected"][0]["content"]
        assert "####" not in chosen and "####" not in rejected
        assert verify_rule_pair(chosen, rejected, tuple(r["meta"]["edit_span"])) is None


def test_pairs_load_as_a_dpo_dataset() -> None:
    import datasets

    batch = rule_edit_batch(examples_to_batch(all_rows()), RiseConfig(enabled=True), 0).kept
    ds = datasets.Dataset(pa.Table.from_batches([batch]))
    row = ds[0]
    assert set(row) >= {"prompt", "chosen", "rejected"}
    assert row["chosen"][0]["role"] == "assistant" and row["prompt"][0]["role"] == "user"
    assert row["chosen"][0]["content"] != row["rejected"][0]["content"]


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
    wordy = gsm8k_row("How many legs has a cat?", "A cat has four legs.\n#### 4")
    rows.append(wordy)
    cfg = RiseConfig(enabled=True, methods=["self_edit"], error_types=["swap_terms"])
    ctx = RunContext(seed=0, work_dir=str(tmp_path), llm=LLMConfig(cache=False, progress=False),
                     backend_factory=_FailingBackend)

    def check_dead(entries: list) -> None:
        assert all("injected backend failure" in e["error"] for e in entries)
        dead_ids = sorted(e["record_id"] for e in entries)
        # every problem with a step that admits swap_terms went to the model and failed there
        assert len(dead_ids) == len(set(dead_ids)) and wordy["id"] not in dead_ids
        assert len(dead_ids) + 1 + _n_without_swap() == len(rows)

    def check_rejected(batches: list) -> None:
        got = {i: r for b in batches for i, r in zip(b.column("id").to_pylist(),
                                                     b.column("reject_reason").to_pylist(),
                                                     strict=True)}
        assert got[wordy["id"]] == "no_applicable_step"
        assert set(got.values()) == {"no_applicable_step"}

    def check_report(reports: list) -> None:
        (rep,) = reports
        assert rep["pairs"] == 0 and rep["examples_in"] == len(rows)
        assert rep["deadletter"] + sum(rep["rejected"].values()) == len(rows)

    with TestPipeline() as p:
        out = p | beam.Create(_batches(rows)) | RiseStage(cfg, ctx)
        assert_that(out[DEADLETTER], check_dead, label="dead")
        assert_that(out[REJECTED], check_rejected, label="rejected")
        assert_that(out[REPORT], check_report, label="report")


def _n_without_swap() -> int:
    """Fixture problems whose steps admit no swap_terms edit (computed, not hard-coded)."""
    from transforms.rise.pairs import read_problem
    from transforms.rise.self_edit import plan_self_edit

    cfg = RiseConfig(enabled=True, methods=["self_edit"], error_types=["swap_terms"])
    return sum(isinstance(plan_self_edit(read_problem(r), cfg, 0), str) for r in all_rows())
