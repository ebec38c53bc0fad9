"""Self-edit and sampled pairs: prompts against golden files, requests, and the parsers and
filters fed clean, noisy, truncated, empty and malformed model output (hand-written
ChatResults, as a backend would return them); one slow end-to-end run with the local model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rise_fixtures import GSM8K, STEPS, gsm8k_row

from transforms.llm.api import ChatResult
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import Problem, read_problem
from transforms.rise.self_edit import (
    SELF_EDIT_VERSION,
    parse_edited_step,
    plan_sampled,
    plan_self_edit,
    render_self_edit,
    render_solve,
    sampled_outcome,
    self_edit_outcome,
    self_edit_schema,
)
from transforms.rise.steps import split_steps

GOLDEN = Path(__file__).with_name("golden")
CFG = RiseConfig(enabled=True, methods=["self_edit", "sampled"])


def _problem(i: int = 2) -> Problem:
    p = read_problem(gsm8k_row(*GSM8K[i]))
    assert isinstance(p, Problem)
    return p


def test_prompts_match_golden_files() -> None:
    q, s = GSM8K[2]
    st = split_steps(s)
    got = render_self_edit(q, s[:st[1].start].strip(), st[1].text, "change_operator", 2)
    assert got + "\n" == (GOLDEN / "self_edit_gsm8k.txt").read_text()
    assert render_solve(q) + "\n" == (GOLDEN / "solve_gsm8k.txt").read_text()


def test_self_edit_request_is_seeded_and_carries_the_plan() -> None:
    p = _problem()
    a, b = plan_self_edit(p, CFG, 0), plan_self_edit(p, CFG, 0)
    assert a == b and a.json_schema == self_edit_schema()
    assert a.template_version == SELF_EDIT_VERSION
    assert a.payload["error_type"] in CFG.error_types
    step = split_steps(p.solution)[a.payload["step_index"]]
    assert step.text in a.messages[0][1]
    plans = {(plan_self_edit(p, CFG, k).payload["step_index"],
              plan_self_edit(p, CFG, k).payload["error_type"]) for k in range(20)}
    assert len(plans) > 3
    only_misread = RiseConfig(enabled=True, error_types=["misread_question"])
    wordy = read_problem(gsm8k_row("How many legs has a cat?", "A cat has four legs.\n#### 4"))
    assert plan_self_edit(wordy, only_misread, 0).payload["error_type"] == "misread_question"
    assert plan_self_edit(wordy, RiseConfig(error_types=["swap_terms"]), 0) == "no_applicable_step"


def _result(req, text: str, parsed=None, model: str = "m") -> ChatResult:
    return ChatResult(key=req.key, texts=(text,), parsed=parsed, model=model, payload=req.payload)


def _edited(req, new_step: str):
    return _result(req, json.dumps({"edited_step": new_step}),
                   parsed=({"edited_step": new_step},))


@pytest.mark.parametrize(("text", "expected"), [
    ('{"edited_step": "He pays 3 + 84 = 87."}', "He pays 3 + 84 = 87."),
    ('Sure! Here it is:\n{"edited_step": "  He pays 3 + 84 = 87. "}\nHope it helps.',
     "He pays 3 + 84 = 87."),
    ('{"edited_step": "He pays 3 + 8', None),  # truncated
    ("", None),
    ("I cannot do that.", None),
    ('{"edited": "x"}', None),
    ('{"edited_step": ""}', None),
    ("[1, 2]", None),
])
def test_parse_edited_step(text: str, expected: str | None) -> None:
    req = plan_self_edit(_problem(), CFG, 0)
    assert parse_edited_step(_result(req, text)) == expected


def _req_for_step(step_index: int, error_type: str):
    p = _problem()
    for k in range(200):
        req = plan_self_edit(p, CFG, k)
        if req.payload["step_index"] == step_index and req.payload["error_type"] == error_type:
            return req
    raise AssertionError("no seed gives that plan")


def test_self_edit_outcome_pair_and_filters() -> None:
    req = _req_for_step(1, "change_operator")
    good = "The caps cost 2 + 16 = $<<2+16=32>>32."
    row, reason, detail = self_edit_outcome(_edited(req, good), CFG)
    assert reason is None and row["meta"]["method"] == "self_edit"
    assert row["meta"]["error_type"] == "change_operator" and row["meta"]["step_index"] == 1
    rejected = row["rejected"][0]["content"]
    s, e = row["meta"]["edit_span"]
    assert rejected[s:e] == "+ 16 = $<<2+" and row["chosen"][0]["content"].replace("2 x 16", "2 + 16") \
        .replace("2*16", "2+16") == rejected
    assert row["meta"]["lineage"]["model"] == "m"
    cases = {
        "The caps cost 2 x 16 = $<<2*16=32>>32.": "noop_edit",
        "The caps cost 2 + 16 = $<<2+16=32>>32, which is a mistake.": "admits_error",
        "The caps cost 2 x 8 = $<<2*8=16>>16.": "equation_still_true",
        "The caps cost 2 + 16 = $<<2+16=32>>32 and they are blue, red, green, yellow, pink, "
        "white, black, grey, brown, orange, purple, gold and silver, all sold in one shop in "
        "town near the jacket store.": "edit_too_large",
        "Caps cost less than jackets.": "equation_removed",
    }
    for text, want in cases.items():
        assert self_edit_outcome(_edited(req, text), CFG)[1] == want, text
    assert self_edit_outcome(_result(req, "garbage"), CFG)[1] == "unparseable_edit"


def test_sampled_pairs_grade_against_gold() -> None:
    q, s, gold = STEPS[0]
    p = read_problem(gsm8k_row(q, s, gold))
    req = plan_sampled(p, CFG, 0)
    assert req.sampling.n == CFG.sampled.samples and req.sampling.temperature > 0
    right = "Step 1: 15 * 6 = 90.\nStep 2: 90 + 20 = 110.\nThe answer is \\boxed{110}."
    wrong = "Step 1: 15 * 6 = 90.\nStep 2: 90 + 2 = 92.\nThe answer is \\boxed{92}."
    res = ChatResult(key=req.key, texts=(right, wrong, "Step 1: I am not sure", right),
                     model="m", payload=req.payload)
    rows, reason, detail = sampled_outcome(res, CFG, 0)
    assert reason is None and len(rows) == 1
    r = rows[0]
    assert r["chosen"][0]["content"] == right
    assert r["rejected"][0]["content"] == wrong.replace("\\boxed{92}", "92")
    assert r["meta"]["method"] == "sampled" and r["meta"]["step_index"] == 1
    assert detail == {"samples": 4, "correct": 1, "incorrect": 1}
    only_wrong = ChatResult(key=req.key, texts=(wrong,), payload=req.payload)
    assert sampled_outcome(only_wrong, CFG, 0)[1] == "no_correct_sample"
    only_right = ChatResult(key=req.key, texts=(right, right), payload=req.payload)
    assert sampled_outcome(only_right, CFG, 0)[1] == "no_incorrect_sample"


@pytest.mark.slow
@pytest.mark.model
def test_self_edit_end_to_end_with_the_local_model(tmp_path: Path) -> None:
    import apache_beam as beam
    import pyarrow as pa
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that
    from rise_fixtures import all_rows

    from schemas.records import examples_to_batch
    from transforms.base import DEADLETTER, PAIRS, REJECTED, REPORT, RunContext
    from transforms.llm.config import LLMConfig
    from transforms.rise.stage import RiseStage

    rows = all_rows()[:4]
    cfg = RiseConfig(enabled=True, methods=["self_edit"])
    cfg.self_edit.max_tokens = 96
    ctx = RunContext(seed=0, work_dir=str(tmp_path), llm=LLMConfig(progress=False, batch_size=4))

    def check_report(reports: list) -> None:
        (rep,) = reports
        print("self-edit report:", json.dumps(rep["self_edit_filter"]), rep["rejected"])
        f = rep["self_edit_filter"]
        assert f["checked"] + rep.get("deadletter", 0) + sum(
            v for k, v in rep["rejected"].items() if k == "self_edit:no_applicable_step") == 4
        assert f["passed"] == rep["pairs_by_method"].get("self_edit", 0)

    def check_conservation(ids: list) -> None:
        assert sorted(ids) == sorted(r["id"] for r in rows)

    with TestPipeline() as p:
        out = p | beam.Create([examples_to_batch(rows)]) | RiseStage(cfg, ctx)
        parents = out[PAIRS] | "P" >> beam.FlatMap(
            lambda b: pa.Table.from_batches([b]).column("meta").combine_chunks()
            .field("parent_id").to_pylist())
        rej = out[REJECTED] | "R" >> beam.FlatMap(lambda b: b.column("id").to_pylist())
        dead = out[DEADLETTER] | "D" >> beam.Map(lambda d: d["record_id"])
        everything = (parents, rej, dead) | beam.Flatten()
        assert_that(everything, check_conservation, label="conservation")
        assert_that(out[REPORT], check_report, label="report")
