"""CompoundStage on the DirectRunner: routing, conservation, report; faults injected through
the serving layer's backend_factory (errors, unparseable and off-spec answers)."""

from __future__ import annotations

import json
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas.records import example_row, examples_to_batch
from transforms.base import DEADLETTER, EXAMPLES, REJECTED, REPORT, RunContext
from transforms.compound.config import CompoundConfig
from transforms.compound.core import parse_key
from transforms.llm.backend_base import Generation, backend_model_id
from transforms.llm.config import LLMConfig

CQ = {"sub_questions": ["When did the Brooklyn Bridge open?",
                        "Which river does the Brooklyn Bridge cross?"],
      "compound_question": "When did the Brooklyn Bridge open, and which river does the "
                           "Brooklyn Bridge cross?"}
ANS = {"sub_answers": ["The Brooklyn Bridge opened on 24 May 1883.",
                       "The Brooklyn Bridge crosses the East River."],
       "answer": "The Brooklyn Bridge opened on 24 May 1883. The Brooklyn Bridge crosses the "
                 "East River."}
YES = {"covers_all_sub_questions": True, "consistent_with_context": True, "reason": "ok"}

# seed id → what the injected backend does at each step (missing step: the well-formed answer)
SCRIPT = {
    "ok": {},
    "dup": {"question": {**CQ, "sub_questions": [CQ["sub_questions"][0]] * 2}},
    "down": {"question": "ERROR"},
    "garbage": {"question": "I cannot answer in JSON, sorry."},
    "offtopic": {"answer": {"sub_answers": [ANS["sub_answers"][0], "Yes."],
                            "answer": ANS["sub_answers"][0] + " Yes."}},
    "notcover": {"check": {**YES, "covers_all_sub_questions": False, "reason": "skips one"}},
    "inconsistent": {"check": {**YES, "consistent_with_context": False}},
}
EXPECTED = {"ok": ("examples", None), "dup": ("rejected", "rule_duplicate_sub_questions"),
            "down": ("deadletter", None), "garbage": ("deadletter", None),
            "offtopic": ("rejected", "rule_sub_answer_off_topic"),
            "notcover": ("rejected", "llm_check_not_covering"),
            "inconsistent": ("rejected", "llm_check_inconsistent"),
            "noanswer": ("rejected", "seed_without_answer")}


class ScriptedBackend:
    """Answers by (seed id, step) from SCRIPT; 'ERROR' is a backend failure."""

    model_id = "scripted"

    def __init__(self, config: LLMConfig):
        self.config = config

    def close(self) -> None:
        pass

    def generate(self, requests):
        out = []
        for r in requests:
            step, _, seed_id = parse_key(r.key)
            default = {"question": CQ, "answer": ANS, "check": YES}[step]
            reply = SCRIPT.get(seed_id, {}).get(step, default)
            if reply == "ERROR":
                out.append(Generation(error="injected: connection reset", raw=""))
            else:
                text = reply if isinstance(reply, str) else json.dumps(reply)
                out.append(Generation(texts=[text], completion_tokens=len(text) // 4))
        return out


def _seeds() -> list[dict]:
    rows = [example_row(sid, [{"role": "user", "content": f"When did the bridge open? ({sid})"},
                              {"role": "assistant", "content": "In 1883."}],
                        {"dataset": "t", "file": "t.jsonl", "row": i},
                        context="The Brooklyn Bridge spans the East River.")
            for i, sid in enumerate(SCRIPT)]
    rows.append(example_row("noanswer", [{"role": "user", "content": "Why?"}]))
    return rows


def _stage(tmp_path, **cfg):
    from transforms.compound.stage import CompoundStage

    config = CompoundConfig(enabled=True, **cfg)
    ctx = RunContext(seed=3, work_dir=str(tmp_path),
                     llm=LLMConfig(cache=False, progress=False, retries=1, batch_size=4),
                     backend_factory=ScriptedBackend)
    return CompoundStage(config, ctx)


def _tagged(out) -> beam.PCollection:
    """All outputs of the stage as (output name, item) pairs in one PCollection: rows for the
    batch outputs, dicts for the dead letter and the report."""
    rows = lambda b: b.to_pylist()  # noqa: E731
    return (
        (out[EXAMPLES] | "ex" >> beam.FlatMap(rows) | "tex" >> beam.Map(lambda r: ("examples", r)),
         out[REJECTED] | "rej" >> beam.FlatMap(rows) | "trej" >> beam.Map(lambda r: ("rejected", r)),
         out[DEADLETTER] | "tdl" >> beam.Map(lambda d: ("deadletter", d)),
         out[REPORT] | "trep" >> beam.Map(lambda d: ("report", d)))
        | "all" >> beam.Flatten())


def _by_kind(items) -> dict[str, list]:
    got: dict[str, list] = {"examples": [], "rejected": [], "deadletter": [], "report": []}
    for kind, item in items:
        got[kind].append(item)
    return got


def _check_routing(items) -> None:
    got = _by_kind(items)
    ends: dict[str, list] = {}
    for r in got["examples"]:
        ends.setdefault(r["meta"]["seed_id"], []).append(("examples", None))
    for r in got["rejected"]:
        detail = json.loads(r["reject_detail"])
        assert detail["check"] in {"seed", "parse", "rule", "llm", "partner"}
        assert r["reject_stage"] == "compound"
        ends.setdefault(r["meta"]["seed_id"], []).append(("rejected", r["reject_reason"]))
    for d in got["deadletter"]:
        assert d["stage"] == "compound" and d["step"] == "question" and d["raw"]
        ends.setdefault(parse_key(d["record_id"])[2], []).append(("deadletter", None))
    assert ends == {k: [v] for k, v in EXPECTED.items()}

    (accepted,) = got["examples"]
    assert accepted["messages"] == [{"role": "user", "content": CQ["compound_question"]},
                                    {"role": "assistant", "content": ANS["answer"]}]
    meta = accepted["meta"]
    assert meta["category"] == "Factual-Statement" and meta["sub_answers"] == ANS["sub_answers"]
    # the model id the serving layer reports for the configured backend
    assert meta["lineage"]["model"] == backend_model_id(LLMConfig()) and meta["lineage"]["parent_ids"] == ["ok"]
    assert meta["lineage"]["template_version"].startswith("factual_statement@")

    (rep,) = got["report"]
    fs = rep["per_category"]["Factual-Statement"]
    assert (rep["seeds"], rep["accepted"], rep["rejected"], rep["deadletter"]) == (8, 1, 5, 2)
    assert fs["seeds"] == 8 and abs(fs["acceptance"] - 1 / 8) < 1e-4
    assert Counter(fs["reasons"]) == Counter(
        {r: 1 for _, r in EXPECTED.values() if r} | {"deadletter_question": 2})


def test_every_seed_ends_in_one_output_with_its_reason(tmp_path) -> None:
    rows = _seeds()
    with TestPipeline() as p:
        out = (p | beam.Create([examples_to_batch(rows[:4]), examples_to_batch(rows[4:])])
               | _stage(tmp_path, category_weights={"Factual-Statement": 1.0}))
        assert_that(_tagged(out), _check_routing)


def _check_partners(items) -> None:
    got = _by_kind(items)
    by_seed = {r["meta"]["seed_id"]: r for r in got["examples"] + got["rejected"]}
    assert set(by_seed) == {"list", "tuple", "bridge"} and not got["deadletter"]
    assert by_seed["list"]["meta"]["partner_id"] == "tuple"
    assert by_seed["tuple"]["meta"]["partner_id"] == "list"
    assert by_seed["list"]["meta"]["lineage"]["parent_ids"] == ["list", "tuple"]
    assert by_seed["bridge"]["reject_reason"] == "no_partner"
    assert json.loads(by_seed["bridge"]["reject_detail"])["error"] == "none_in_window"
    (rep,) = got["report"]
    assert rep["partners"] == {"found": 2, "none": 1}


@pytest.mark.model
def test_partners_in_the_stage_and_no_partner_rejection(tmp_path) -> None:
    rows = [example_row(i, [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
            for i, q, a in (("list", "What is a list in Python?", "A mutable sequence."),
                            ("tuple", "What is a tuple in Python?", "An immutable sequence."),
                            ("bridge", "When did the Brooklyn Bridge open?", "In 1883."))]
    with TestPipeline() as p:
        out = (p | beam.Create([examples_to_batch(rows)])
               | _stage(tmp_path, category_weights={"Comparison-and-Selection": 1.0},
                        partner_fallback=False))
        assert_that(_tagged(out), _check_partners)


def _check_conservation(items, seed_ids: set[str], model_prefix: str = "local:") -> None:
    got = _by_kind(items)
    ends = [r["meta"]["seed_id"] for r in got["examples"] + got["rejected"]]
    ends += [parse_key(d["record_id"])[2] for d in got["deadletter"]]
    assert sorted(ends) == sorted(seed_ids)
    for r in got["rejected"]:
        assert r["reject_reason"] and json.loads(r["reject_detail"])["check"]
    for r in got["examples"]:
        assert len(r["meta"]["sub_questions"]) >= 2
        assert len(r["meta"]["sub_answers"]) == len(r["meta"]["sub_questions"])
        assert r["meta"]["lineage"]["model"].startswith(model_prefix)
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
                         sampling={"question_max_tokens": 96, "answer_max_tokens": 128,
                                   "check_max_tokens": 48})
    ctx = RunContext(seed=0, work_dir=str(tmp_path),
                     llm=LLMConfig(progress=False, retries=0, batch_size=2))
    with TestPipeline() as p:
        out = p | beam.Create([examples_to_batch(rows)]) | CompoundStage(cfg, ctx)
        assert_that(_tagged(out), lambda items: _check_conservation(items, {"eiffel", "ice"}))


@pytest.mark.slow
@pytest.mark.model
def test_openai_backend_by_changing_only_the_llm_block(tmp_path, monkeypatch) -> None:
    """The demo config with `llm.backend: openai` pointed at an OpenAI-compatible server (here
    one serving the local model): same stage, same outputs, the endpoint's model in lineage."""
    from pipeline.config import load_config
    from tests.compound._local_openai_server import LocalModelServer
    from transforms.compound.stage import CompoundStage

    monkeypatch.setenv("OPENAI_API_KEY", "not-needed-locally")
    rows = [example_row("eiffel", [{"role": "user", "content": "When was the Eiffel Tower "
                                    "completed?"},
                                   {"role": "assistant", "content": "In March 1889."}],
                        context="The Eiffel Tower in Paris was completed in March 1889.")]
    with LocalModelServer() as server:
        cfg = load_config("configs/compound_demo.yaml", overrides=[
            f"llm={{backend: openai, model: smollm2-served, base_url: '{server.base_url}', "
            "cache: false}"])
        ctx = RunContext(seed=0, work_dir=str(tmp_path), llm=cfg.llm,
                         embeddings=cfg.embeddings)
        stage_cfg = cfg.stages.compound.model_copy(
            update={"category_weights": {"Factual-Statement": 1.0}})
        with TestPipeline() as p:
            out = p | beam.Create([examples_to_batch(rows)]) | CompoundStage(stage_cfg, ctx)
            assert_that(_tagged(out), lambda items: _check_openai(items))
        assert server.calls >= 1


def _check_openai(items) -> None:
    _check_conservation(items, {"eiffel"}, model_prefix="openai:smollm2-served")
