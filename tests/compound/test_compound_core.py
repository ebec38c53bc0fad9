"""The pure CQ-Syn steps driven by hand-written ChatResults (what a backend would return)."""

from __future__ import annotations

import json

import pyarrow as pa

from schemas.records import example_row
from transforms.compound import core
from transforms.compound.config import CompoundConfig
from transforms.llm.api import ChatResult

CFG = CompoundConfig(enabled=True)
ROW = example_row("seed1", [{"role": "user", "content": "When did the Brooklyn Bridge open?"},
                            {"role": "assistant", "content": "It opened on 24 May 1883."}],
                  {"dataset": "demo", "file": "x.jsonl", "row": 3},
                  context="The Brooklyn Bridge spans the East River.")
Q = {"sub_questions": ["When did the Brooklyn Bridge open?",
                       "Which river does the Brooklyn Bridge cross?"],
     "compound_question": "When did the Brooklyn Bridge open, and which river does the Brooklyn "
                          "Bridge cross?"}
A = {"sub_answers": ["The Brooklyn Bridge opened on 24 May 1883.",
                     "The Brooklyn Bridge crosses the East River."],
     "answer": "The Brooklyn Bridge opened on 24 May 1883. The Brooklyn Bridge crosses the "
               "East River."}
OK = {"covers_all_sub_questions": True, "consistent_with_context": True, "reason": "fine"}


def _item() -> dict:
    seed, reason = core.seed_from_row(ROW)
    assert reason is None
    return {"seed": seed, "partner": None, "partner_similarity": None,
            "category": "Factual-Statement"}


def _reply(req, obj, model="m1", as_text=True) -> ChatResult:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return ChatResult(key=req.key, texts=(text,), parsed=None if as_text else (obj,),
                      model=model, payload=req.payload)


def test_full_path_accepts_and_builds_the_row() -> None:
    req = core.question_request(_item(), CFG, run_seed=0)
    assert req.key == "compound:question:factual_statement:seed1"
    assert req.json_schema["properties"]["sub_questions"]["maxItems"] == CFG.max_sub_questions
    assert req.sampling.max_tokens == CFG.sampling.question_max_tokens
    assert "Context: The Brooklyn Bridge spans the East River." in req.messages[0][1]
    step = core.on_question(_reply(req, Q), CFG, 0)
    assert step.request is not None and step.row is None
    step = core.on_answer(_reply(step.request, A, as_text=False), CFG, 0)
    assert step.request is not None
    assert "Reference answer: The Brooklyn Bridge opened" in step.request.messages[0][1]
    step = core.on_check(_reply(step.request, OK))
    assert step.accepted and step.reason is None
    row = step.row
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][0]["content"] == Q["compound_question"]
    assert row["meta"]["sub_questions"] == Q["sub_questions"]
    assert row["meta"]["sub_answers"] == A["sub_answers"]
    assert row["meta"]["seed_id"] == "seed1" and row["meta"]["partner_id"] is None
    lin = row["meta"]["lineage"]
    assert lin["parent_ids"] == ["seed1"] and lin["model"] == "m1"
    assert lin["template_version"].count("@") == 3
    batch = core.rows_to_batch([row])
    assert batch.schema.equals(core.OUTPUT_SCHEMA)


def test_question_parse_failure_rejects_with_raw_output() -> None:
    req = core.question_request(_item(), CFG, 0)
    step = core.on_question(_reply(req, '{"sub_questions": ["When did'), CFG, 0)
    assert step.request is None and not step.accepted
    assert step.reason == "question_truncated_json"
    assert step.detail["check"] == "parse" and step.detail["raw"].startswith("{")
    # no compound question yet: the row keeps the seed's turns for review
    assert step.row["messages"][0]["content"] == "When did the Brooklyn Bridge open?"


def test_question_rules_run_before_the_answer_call() -> None:
    req = core.question_request(_item(), CFG, 0)
    bad = {**Q, "compound_question": "When did the Brooklyn Bridge open?"}
    step = core.on_question(_reply(req, bad), CFG, 0)
    assert step.reason == "rule_sub_question_not_in_question"
    assert step.detail["check"] == "rule" and step.detail["step"] == "question"


def test_answer_rules_reject_off_topic_sub_answers() -> None:
    req = core.question_request(_item(), CFG, 0)
    step = core.on_question(_reply(req, Q), CFG, 0)
    bad = {"sub_answers": ["The Brooklyn Bridge opened on 24 May 1883.", "Yes."],
           "answer": "The Brooklyn Bridge opened on 24 May 1883. Yes."}
    step = core.on_answer(_reply(step.request, bad), CFG, 0)
    assert step.reason == "rule_sub_answer_off_topic"
    assert step.row["messages"][1]["content"] == bad["answer"]


def test_llm_check_verdicts_reject() -> None:
    req = core.question_request(_item(), CFG, 0)
    req = core.on_question(_reply(req, Q), CFG, 0).request
    req = core.on_answer(_reply(req, A), CFG, 0).request
    s1 = core.on_check(_reply(req, {**OK, "covers_all_sub_questions": False}))
    s2 = core.on_check(_reply(req, {**OK, "consistent_with_context": False}))
    s3 = core.on_check(_reply(req, "I think it is fine."))
    assert (s1.reason, s2.reason, s3.reason) == \
        ("llm_check_not_covering", "llm_check_inconsistent", "check_no_json")
    assert s1.detail["check"] == "llm" and s1.row["meta"]["llm_check_reason"] == "fine"


def test_seed_rows_without_turns_are_not_seeds() -> None:
    no_q = example_row("x", [{"role": "assistant", "content": "a"}])
    no_a = example_row("y", [{"role": "user", "content": "q"}])
    assert core.seed_from_row(no_q) == (None, "seed_without_question")
    assert core.seed_from_row(no_a) == (None, "seed_without_answer")


def test_keys_round_trip_and_sampling_seeds_differ_per_step() -> None:
    item = _item()
    req = core.question_request(item, CFG, 5)
    assert core.parse_key(req.key) == ("question", "factual_statement", "seed1")
    assert core.parse_key("other:thing") is None
    assert core.question_request(item, CFG, 5).sampling.seed == req.sampling.seed
    assert core.question_request(item, CFG, 6).sampling.seed != req.sampling.seed


def test_partner_goes_into_prompt_and_lineage() -> None:
    partner = {"id": "p9", "question": "When did the Golden Gate Bridge open?",
               "answer": "In 1937.", "context": ""}
    item = {**_item(), "category": "Comparison-and-Selection", "partner": partner,
            "partner_similarity": 0.71}
    req = core.question_request(item, CFG, 0)
    assert "Second seed question: When did the Golden Gate Bridge open?" in req.messages[0][1]
    step = core.on_question(_reply(req, "nonsense"), CFG, 0)
    meta = step.row["meta"]
    assert meta["partner_id"] == "p9" and meta["partner_similarity"] == 0.71
    assert meta["lineage"]["parent_ids"] == ["seed1", "p9"]
    assert isinstance(core.rows_to_batch([step.row]), pa.RecordBatch)


def test_context_appended_to_the_turn_is_not_repeated() -> None:
    ctx = "The Eiffel Tower was completed in March 1889."
    row = example_row("d1", [{"role": "user", "content": f"When was it completed?\n\n{ctx}"},
                             {"role": "assistant", "content": "March 1889."}], context=ctx)
    seed, _ = core.seed_from_row(row)
    assert seed["question"] == "When was it completed?" and seed["context"] == ctx
