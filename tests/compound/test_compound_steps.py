"""The pure CQ-Syn steps driven by hand-written ChatResults (what each role would return):
the record shape, the order of the checks, and the judge's verdicts."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from schemas.records import example_row
from transforms.compound import core, steps
from transforms.compound.config import CompoundConfig
from transforms.kit import Rejection
from transforms.llm.api import ChatResult

CFG = CompoundConfig(enabled=True, answer_check=True)
CONTEXT = "The Brooklyn Bridge opened in 1883 and spans the East River."
ROW = example_row("seed1", [{"role": "user", "content": "When did the Brooklyn Bridge open?"},
                            {"role": "assistant", "content": "It opened on 24 May 1883."}],
                  {"dataset": "demo", "file": "x.jsonl", "row": 3}, context=CONTEXT)
Q = {"sub_questions": ["When did the Brooklyn Bridge open?", "Which river does it cross?"],
     "compound_question": "When did the Brooklyn Bridge open, and which river does it cross?"}
A = {"sub_answers": ["The Brooklyn Bridge opened on 24 May 1883.",
                     "The Brooklyn Bridge crosses the East River."],
     "answer": "The Brooklyn Bridge opened on 24 May 1883, and it crosses the East River."}
QOK = {"reasoning": "fine", "single_compound_question": True, "answerable_from_context": True,
       "matches_type": True}
AOK = {"reasoning": "all covered", "covers_all_sub_questions": True,
       "consistent_with_context": True}


def _item(category: str = "Factual-Statement", partner: dict | None = None) -> dict:
    seed, reason = core.seed_from_row(ROW)
    assert reason is None
    return {"seed": seed, "partner": partner, "partner_similarity": None, "category": category}


def _reply(req, obj, model: str = "m1") -> ChatResult:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return ChatResult(key=req.key, texts=(text,), parsed=None if isinstance(obj, str) else (obj,),
                      model=model, payload=req.payload)


def _spec(step: str, cfg: CompoundConfig = CFG):
    return next(s for s in steps.step_specs(cfg, 0) if s.name == step)


def _run(step: str, item: dict, obj, model: str = "m1", cfg: CompoundConfig = CFG):
    """One kit step by hand: build the request, answer it with `obj`, parse the answer."""
    spec = _spec(step, cfg)
    return spec.parse(_reply(spec.build(item), obj, model))


def _to(step: str, cfg: CompoundConfig = CFG, item: dict | None = None) -> dict:
    """The item that reaches `step` (every earlier step answered well)."""
    item = item or _item()
    for name, reply, model in (("question", Q, "writer"), ("question_check", QOK, "judge"),
                               ("answer", A, "answerer")):
        if name == step:
            return item
        item = _run(name, item, reply, model, cfg)
    return item


def test_full_path_accepts_and_builds_the_paper_record() -> None:
    req = core.question_request(_item(), CFG, 0)
    assert req.key == "compound:question:factual_statement:seed1"
    assert req.sampling.max_tokens == CFG.sampling.question_max_tokens
    assert f"Context:\n{CONTEXT}" in req.messages[0][1]
    assert [s.name for s in steps.step_specs(CFG, 0)] == list(core.STEPS)
    item = _run("question", _item(), Q, "writer")
    req = _spec("question_check").build(item)
    assert "reviewer of compound questions" in req.messages[0][1]
    item = _run("question_check", item, QOK, "judge")
    assert _spec("answer").build(item).sampling.max_tokens == \
        CFG.sampling.answer_max_tokens >= 1024
    item = _run("answer", item, A, "answerer")
    assert "Reference answer: The Brooklyn Bridge opened" in \
        _spec("answer_check").build(item).messages[0][1]
    step = steps.finish_outcome(_run("answer_check", item, AOK, "judge"), CFG)
    assert step.accepted and step.reason is None and step.n_sub_questions == 2
    row = step.row
    assert row["messages"] == [
        {"role": "user", "content": f"{CONTEXT}\n\n{Q['compound_question']}"},
        {"role": "assistant", "content": A["answer"]}]
    meta = row["meta"]
    assert (meta["context"], meta["com_question"], meta["com_reference"]) == \
        (CONTEXT, Q["compound_question"], A["answer"])
    assert meta["sub_questions"] == Q["sub_questions"] and meta["sub_answers"] == A["sub_answers"]
    checks = json.loads(meta["checks"])
    assert checks["question_check"]["reasoning"] == "fine"
    assert checks["models"] == {"question": "writer", "question_check": "judge",
                                "answer": "answerer", "answer_check": "judge"}
    lin = meta["lineage"]
    assert lin["parent_ids"] == ["seed1"] and lin["model"] == "writer"
    assert lin["template_version"].split(",")[0].startswith("compound.factual_statement@")
    assert lin["template_version"].count("@") == 4
    assert core.rows_to_batch([row]).schema.equals(core.OUTPUT_SCHEMA)


def test_without_answer_check_the_answer_step_is_the_last() -> None:
    cfg = CompoundConfig(enabled=True)
    assert [s.name for s in steps.step_specs(cfg, 0)] == list(core.STEPS[:-1])
    step = steps.finish_outcome(_run("answer", _to("answer", cfg), A, cfg=cfg), cfg)
    assert step.accepted and step.reason is None


def test_blank_question_rejects_with_raw_output() -> None:
    out = _run("question", _item(), {**Q, "compound_question": "  "})
    assert isinstance(out, Rejection)
    step = steps.finish_outcome(out, CFG)
    assert not step.accepted and step.reason == "question_empty_compound_question"
    assert step.detail["check"] == "parse" and step.detail["raw"].startswith("{")
    # no compound question yet: the row keeps the seed's turns for review
    assert step.row["messages"][0]["content"] == "When did the Brooklyn Bridge open?"


def test_type_rules_run_before_the_judge() -> None:
    out = _run("question", _item("Cause-and-Effect"), Q)
    assert isinstance(out, Rejection) and out.reason == "rule_cause_effect_no_cause"
    assert [f["rule"] for f in out.detail["failures"]] == \
        ["cause_effect_no_cause", "cause_effect_no_effect"]


@pytest.mark.parametrize(("field", "reason"), [
    ("single_compound_question", "llm_question_not_compound"),
    ("answerable_from_context", "llm_question_not_answerable"),
    ("matches_type", "llm_question_wrong_type")])
def test_question_verdicts_reject(field: str, reason: str) -> None:
    out = _run("question_check", _to("question_check"), {**QOK, field: False})
    assert isinstance(out, Rejection)
    assert out.reason == reason and out.detail["check"] == "llm"
    assert out.detail["reasoning"] == "fine"


@pytest.mark.parametrize(("field", "reason"), [
    ("covers_all_sub_questions", "llm_answer_not_covering"),
    ("consistent_with_context", "llm_answer_inconsistent")])
def test_answer_verdicts_reject(field: str, reason: str) -> None:
    step = steps.finish_outcome(_run("answer_check", _to("answer_check"),
                                     {**AOK, field: False}), CFG)
    assert step.reason == reason and step.row["messages"][1]["content"] == A["answer"]


def test_a_verdict_that_does_not_parse_raises_for_the_kit() -> None:
    """The kit turns a raising parse into `question_check_unparseable` (test_compound_stage)."""
    with pytest.raises(ValueError, match="did not parse"):
        _run("question_check", _to("question_check"), {"reasoning": "x"})


def test_empty_sub_answer_keeps_its_position() -> None:
    bad = {"sub_answers": [A["sub_answers"][0], ""], "answer": A["answer"]}
    out = _run("answer", _to("answer"), bad)
    assert out.reason == "rule_empty_sub_answer"
    assert {"rule": "empty_sub_answer", "index": 1} in out.detail["failures"]


def test_seed_rows_without_turns_are_not_seeds() -> None:
    no_q = example_row("x", [{"role": "assistant", "content": "a"}])
    no_a = example_row("y", [{"role": "user", "content": "q"}])
    assert core.seed_from_row(no_q) == (None, "seed_without_question")
    assert core.seed_from_row(no_a) == (None, "seed_without_answer")


def test_keys_round_trip_and_sampling_seeds_differ_per_step_and_category() -> None:
    item = _item()
    req = core.question_request(item, CFG, 5)
    assert core.parse_key(req.key) == ("question", "factual_statement", "seed1")
    assert core.parse_key("other:thing") is None
    assert core.question_request(item, CFG, 5).sampling.seed == req.sampling.seed
    assert core.question_request(item, CFG, 6).sampling.seed != req.sampling.seed
    other = core.question_request(_item("Cause-and-Effect"), CFG, 5)
    assert other.sampling.seed != req.sampling.seed


def test_partner_context_goes_into_prompt_user_turn_and_meta() -> None:
    partner = {"id": "p9", "question": "When did the Golden Gate Bridge open?",
               "answer": "In 1937.", "context": "The Golden Gate Bridge opened in 1937."}
    item = {**_item("Comparison-and-Selection", partner), "partner_similarity": 0.71}
    req = core.question_request(item, CFG, 0)
    assert "Second seed question: When did the Golden Gate Bridge open?" in req.messages[0][1]
    cq = {"sub_questions": ["How does the Brooklyn Bridge differ from the Golden Gate Bridge?",
                            "Which bridge should a tourist visit first?"],
          "compound_question": "How does the Brooklyn Bridge differ from the Golden Gate Bridge, "
                               "and which should a tourist visit first?"}
    item = _run("question", item, cq)
    assert not isinstance(item, Rejection), item.detail
    step = steps.finish_outcome(_run("question_check", item, {**QOK, "matches_type": False}),
                                CFG)
    meta, user = step.row["meta"], step.row["messages"][0]["content"]
    assert user == f"{CONTEXT}\n\n{partner['context']}\n\n{cq['compound_question']}"
    assert meta["partner_id"] == "p9" and meta["partner_similarity"] == 0.71
    assert meta["partner_context"] == partner["context"]
    assert meta["lineage"]["parent_ids"] == ["seed1", "p9"]
    assert isinstance(core.rows_to_batch([step.row]), pa.RecordBatch)


def test_context_appended_to_the_turn_is_not_repeated() -> None:
    ctx = "The Eiffel Tower was completed in March 1889."
    row = example_row("d1", [{"role": "user", "content": f"When was it completed?\n\n{ctx}"},
                             {"role": "assistant", "content": "March 1889."}], context=ctx)
    seed, _ = core.seed_from_row(row)
    assert seed["question"] == "When was it completed?" and seed["context"] == ctx
