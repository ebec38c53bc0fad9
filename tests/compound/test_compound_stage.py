"""CompoundStage on the DirectRunner: faults injected through the serving layer's
backend_factory (backend errors, an unreadable verdict), partners with real embeddings, the real
local model, and an OpenAI endpoint serving the local model."""

from __future__ import annotations

import json
from dataclasses import replace

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas.records import example_row, examples_to_batch
from tests.compound._outputs import by_kind, tagged
from tests.compound._role_server import CONTEXT, QUESTION_OK, answer_for, question
from transforms.base import RunContext
from transforms.compound.config import CompoundConfig
from transforms.compound.core import parse_key
from transforms.llm.backend_base import Generation
from transforms.llm.config import LLMConfig

# seed id → what the injected backend does (fault injection only; model behaviour is scripted
# behind a real HTTP server in test_compound_e2e.py)
FAULTS = {"ok": None, "down": "ERROR", "odd": "ODD"}


class FaultyBackend:
    """Well-formed answers, except: 'ERROR' a backend failure at the writer (seed 'odd' is
    well served; the test makes the stage unable to read its verdict)."""

    model_id = "faulty"

    def __init__(self, config: LLMConfig):
        self.config = config

    def close(self) -> None:
        pass

    def generate(self, requests):
        out = []
        for r in requests:
            step, slug, seed_id = parse_key(r.key)
            fault = FAULTS.get(seed_id) if step == "question" else None
            if fault == "ERROR":
                out.append(Generation(error="injected: connection reset", raw=""))
                continue
            if step == "question":
                reply = question("Factual-Statement")
            elif step == "answer":
                reply = answer_for(question("Factual-Statement")["sub_questions"])
            else:
                reply = QUESTION_OK
            out.append(Generation(texts=[json.dumps(reply)], completion_tokens=10))
        return out


def _seeds() -> list[dict]:
    return [example_row(sid, [{"role": "user", "content": f"When did the bridge open? ({sid})"},
                              {"role": "assistant", "content": "In 1883."}],
                        {"dataset": "t", "file": "t.jsonl", "row": i}, context=CONTEXT)
            for i, sid in enumerate(FAULTS)]


def _check_faults(items) -> None:
    got = by_kind(items)
    assert [r["meta"]["seed_id"] for r in got["examples"]] == ["ok"]
    dead = {parse_key(d["record_id"])[2]: d for d in got["deadletter"]}
    assert set(dead) == {"down"}
    assert dead["down"]["stage"] == "compound" and dead["down"]["step"] == "question"
    (odd,) = got["rejected"]
    assert odd["meta"]["seed_id"] == "odd"
    assert odd["reject_reason"] == "question_check_unparseable"
    detail = json.loads(odd["reject_detail"])
    assert detail["step"] == "question_check" and "did not parse" in detail["error"]
    assert detail["check"] == "parse"
    assert json.loads(detail["raw"]) == QUESTION_OK
    (rep,) = got["report"]
    assert (rep["seeds"], rep["accepted"], rep["rejected"], rep["deadletter"]) == (3, 1, 1, 1)
    assert rep["reasons"] == {"deadletter_question": 1, "question_check_unparseable": 1}


def test_failed_calls_are_dead_lettered_and_unreadable_verdicts_rejected(tmp_path,
                                                                         monkeypatch) -> None:
    """The kit's one failure policy: a failed call → dead letter (stage, step); a verdict the
    step cannot read → rejected as question_check_unparseable with the raw answer."""
    from transforms.compound import steps
    from transforms.compound.stage import CompoundStage

    real = steps.READ["question_check"]

    def odd(result, cfg):  # seed "odd": a verdict that lost its booleans
        if result.key.endswith(":odd"):
            return real(replace(result, parsed=({"reasoning": "x"},)), cfg)
        return real(result, cfg)

    monkeypatch.setitem(steps.READ, "question_check", odd)
    config = CompoundConfig(enabled=True, category_weights={"Factual-Statement": 1.0})
    ctx = RunContext(seed=3, work_dir=str(tmp_path),
                     llm=LLMConfig(cache=False, progress=False, retries=0, batch_size=4),
                     backend_factory=FaultyBackend)
    with TestPipeline() as p:
        out = (p | beam.Create([examples_to_batch(_seeds())]) | CompoundStage(config, ctx))
        assert_that(tagged(out), _check_faults)


def _check_partners(items) -> None:
    got = by_kind(items)
    by_seed = {r["meta"]["seed_id"]: r for r in got["examples"] + got["rejected"]}
    assert set(by_seed) == {"list", "tuple", "bridge"} and not got["deadletter"]
    assert by_seed["list"]["meta"]["partner_id"] == "tuple"
    assert by_seed["tuple"]["meta"]["partner_id"] == "list"
    assert by_seed["list"]["meta"]["lineage"]["parent_ids"] == ["list", "tuple"]
    # the partner's context follows the seed's in the user turn, then the question
    user = by_seed["list"]["messages"][0]["content"]
    assert user == f"{PY_CONTEXT['list']}\n\n{PY_CONTEXT['tuple']}\n\n{PY_Q['compound_question']}"
    assert by_seed["list"]["meta"]["partner_context"] == PY_CONTEXT["tuple"]
    assert by_seed["bridge"]["reject_reason"] == "no_partner"
    assert json.loads(by_seed["bridge"]["reject_detail"])["error"] == "none_in_window"
    (rep,) = got["report"]
    assert rep["partners"] == {"found": 2, "none": 1}


PY_CONTEXT = {"list": "A Python list is a mutable sequence of items.",
              "tuple": "A Python tuple is an immutable sequence of items."}
PY_Q = {"sub_questions": ["How does a Python list differ from a Python tuple?",
                          "Which of a list or a tuple should a programmer choose for a key?"],
        "compound_question": "How does a Python list differ from a tuple, and which should a "
                             "programmer choose for a dictionary key?"}


@pytest.mark.model
def test_partners_in_the_stage_and_no_partner_rejection(tmp_path) -> None:
    """Real embeddings, the bucketed search, and the roles behind the loopback server."""
    from tests.compound._role_server import RoleServer
    from transforms.compound.stage import CompoundStage
    from transforms.embed.config import EmbeddingConfig

    cs = "Comparison-and-Selection"
    rows = [example_row(i, [{"role": "user", "content": f"{q} case-{i}"},
                            {"role": "assistant", "content": a}], context=PY_CONTEXT.get(i))
            for i, q, a in (("list", "What is a list in Python?", "A mutable sequence."),
                            ("tuple", "What is a tuple in Python?", "An immutable sequence."),
                            ("bridge", "When did the Brooklyn Bridge open?", "In 1883."))]
    with RoleServer({("list", cs, "question"): PY_Q, ("tuple", cs, "question"): PY_Q}) as srv:
        llm = LLMConfig(backend="openai", model="writer-model", base_url=srv.base_url,
                        cache=False, retries=0, max_retries=0)
        config = CompoundConfig(
            enabled=True, category_weights={cs: 1.0}, partner_categories=[cs],
            partner_fallback=False,
            roles={"answer": llm.model_copy(update={"model": "answer-model"}),
                   "judge": llm.model_copy(update={"model": "judge-model"})})
        ctx = RunContext(seed=0, work_dir=str(tmp_path), llm=llm,
                         embeddings=EmbeddingConfig(device="cpu"),
                         roles={"compound": config.roles})
        with TestPipeline() as p:
            out = p | beam.Create([examples_to_batch(rows)]) | CompoundStage(config, ctx)
            assert_that(tagged(out), _check_partners)


def _check_conservation(items, seed_ids: set[str], model_prefix: str = "local:") -> None:
    got = by_kind(items)
    ends = [r["meta"]["seed_id"] for r in got["examples"] + got["rejected"]]
    ends += [parse_key(d["record_id"])[2] for d in got["deadletter"]]
    assert sorted(ends) == sorted(seed_ids)
    for r in got["rejected"]:
        assert r["reject_reason"] and json.loads(r["reject_detail"])["check"]
    for r in got["examples"]:
        assert len(r["meta"]["sub_questions"]) >= 2
        assert len(r["meta"]["sub_answers"]) == len(r["meta"]["sub_questions"])
        assert r["meta"]["lineage"]["model"].startswith(model_prefix)
    for r in got["examples"] + got["rejected"]:
        if r["meta"]["com_question"] and r["meta"]["context"]:
            assert r["messages"][0]["content"].startswith(r["meta"]["context"])
    (rep,) = got["report"]
    assert rep["seeds"] == len(seed_ids)
    assert rep["accepted"] + rep["rejected"] + rep["deadletter"] == len(seed_ids)


@pytest.mark.slow
@pytest.mark.model
def test_real_local_model_every_seed_accounted_for(tmp_path) -> None:
    """Two seeds through the real 135M model with small budgets: whatever it writes, each seed
    ends in exactly one output, with a reason when it is not accepted."""
    from transforms.compound.stage import CompoundStage

    rows = [example_row("eiffel", [{"role": "user", "content": "When was the Eiffel Tower "
                                    "completed?"},
                                   {"role": "assistant", "content": "In March 1889."}],
                        context="The Eiffel Tower in Paris was completed in March 1889."),
            example_row("ice", [{"role": "user", "content": "Why does ice float on water?"},
                                {"role": "assistant", "content": "Ice is less dense than water."}])]
    cfg = CompoundConfig(enabled=True, max_sub_questions=2,
                         category_weights={"Factual-Statement": 1.0, "Cause-and-Effect": 1.0},
                         sampling={"question_max_tokens": 48, "answer_max_tokens": 128,
                                   "question_check_max_tokens": 64})
    ctx = RunContext(seed=0, work_dir=str(tmp_path),
                     llm=LLMConfig(progress=False, retries=0, batch_size=2))
    with TestPipeline() as p:
        out = p | beam.Create([examples_to_batch(rows)]) | CompoundStage(cfg, ctx)
        assert_that(tagged(out), lambda items: _check_conservation(items, {"eiffel", "ice"}))


@pytest.mark.slow
@pytest.mark.model
def test_openai_backend_by_changing_only_the_llm_block(tmp_path, monkeypatch) -> None:
    """The demo config with `llm.backend: openai` pointed at an OpenAI-compatible server (here
    the scripted roles under the one model name of the `llm` block, each request's step read
    from the JSON Schema it sends, as `vllm serve` honours it): same stage, the demo's budgets
    on the wire, the endpoint's model in lineage."""
    from pipeline.config import load_config
    from tests.compound._role_server import RoleServer
    from transforms.compound.stage import CompoundStage

    monkeypatch.setenv("OPENAI_API_KEY", "not-needed-locally")
    rows = [example_row("bridge", [{"role": "user", "content": "When did the Brooklyn Bridge "
                                    "open? case-bridge"},
                                   {"role": "assistant", "content": "In 1883."}],
                        context=CONTEXT)]
    with RoleServer({}, one_model="smollm2-served") as server:
        cfg = load_config("configs/compound_demo.yaml", overrides=[
            f"llm={{backend: openai, model: smollm2-served, base_url: '{server.base_url}', "
            "cache: false}"])
        ctx = RunContext(seed=0, work_dir=str(tmp_path), llm=cfg.llm,
                         embeddings=cfg.embeddings)
        stage_cfg = cfg.stages.compound.model_copy(
            update={"category_weights": {"Factual-Statement": 1.0}})
        with TestPipeline() as p:
            out = p | beam.Create([examples_to_batch(rows)]) | CompoundStage(stage_cfg, ctx)
            assert_that(tagged(out), lambda items: _check_openai(items))
    budgets = stage_cfg.sampling
    assert [(r["step"], r["case"], r["sampling"]["max_tokens"]) for r in server.requests] == [
        ("question", "bridge", budgets.question_max_tokens),
        ("question_check", "bridge", budgets.question_check_max_tokens),
        ("answer", "bridge", budgets.answer_max_tokens)]  # the demo's answer_check is off
    assert {r["model"] for r in server.requests} == {"smollm2-served"}


def _check_openai(items) -> None:
    _check_conservation(items, {"bridge"}, model_prefix="openai:smollm2-served")
    (accepted,) = by_kind(items)["examples"]  # the scripted roles pass every check
    assert accepted["meta"]["sub_questions"] == question("Factual-Statement")["sub_questions"]
