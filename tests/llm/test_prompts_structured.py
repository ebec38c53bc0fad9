"""Pure parts of the LLM layer: templates, answer parsing/validation, cache keys, retries."""

from __future__ import annotations

import pickle

import jinja2
import pytest

from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.backend_base import Generation
from transforms.llm.cache import cache_key, list_cache_files, read_entries, write_entries
from transforms.llm.prompts import PromptTemplate, template_version
from transforms.llm.structured import (
    generate_validated,
    json_span_end,
    parse_json_answer,
    validate_texts,
)

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": False}


def test_template_render_version_and_strictness(tmp_path):
    path = tmp_path / "ask.jinja"
    path.write_text("Question: {{ q }}\n{% for t in tags %}- {{ t }}\n{% endfor %}")
    tpl = PromptTemplate.from_file(path)
    assert tpl.name == "ask"
    assert tpl.render(q="why?", tags=["x", "y"]) == "Question: why?\n- x\n- y"
    assert tpl.version == template_version(path.read_text()) and len(tpl.version) == 12
    assert PromptTemplate.from_string(path.read_text() + " ").version != tpl.version
    with pytest.raises(jinja2.UndefinedError):
        tpl.render(q="missing tags")
    clone = pickle.loads(pickle.dumps(tpl))
    assert clone.render(q="a", tags=[]) == "Question: a" and clone.version == tpl.version


@pytest.mark.parametrize("text,expected", [
    ('{"a": 1}', {"a": 1}),
    ('  [1, 2] ', [1, 2]),
    ('Sure! ```json\n{"a": 2}\n``` done', {"a": 2}),
    ('"plain"', "plain"),
])
def test_parse_json_answer(text, expected):
    assert parse_json_answer(text) == expected


@pytest.mark.parametrize("text", ["", "not json", '{"a": 1', "{'a': 1}"])
def test_parse_json_answer_rejects(text):
    with pytest.raises(ValueError):
        parse_json_answer(text)


def test_validate_texts_reasons():
    assert validate_texts(['{"a": 3}'], SCHEMA) == ([{"a": 3}], "")
    parsed, reason = validate_texts(['{"a": "x"}'], SCHEMA)
    assert parsed is None and reason.startswith("schema_violation") and "a" in reason
    parsed, reason = validate_texts(['{"a": 1}', "{"], SCHEMA)
    assert parsed is None and reason.startswith("invalid_json (answer 1)")


def test_cache_key_covers_every_input():
    base = ChatRequest(key="k", messages=(("user", "hi"),), json_schema=SCHEMA,
                       template_version="v1")
    k = cache_key(base, "m")
    assert k == cache_key(ChatRequest(key="other", messages=(("user", "hi"),),
                                      json_schema=SCHEMA, template_version="v1", payload=3), "m")
    variants = [
        cache_key(base, "m2"),
        cache_key(ChatRequest(key="k", messages=(("user", "hi!"),), json_schema=SCHEMA,
                              template_version="v1"), "m"),
        cache_key(ChatRequest(key="k", messages=(("user", "hi"),), json_schema=SCHEMA,
                              template_version="v2"), "m"),
        cache_key(ChatRequest(key="k", messages=(("user", "hi"),), json_schema=None,
                              template_version="v1"), "m"),
        cache_key(ChatRequest(key="k", messages=(("user", "hi"),), json_schema=SCHEMA,
                              template_version="v1", sampling=SamplingParams(seed=1)), "m"),
        cache_key(ChatRequest(key="k", messages=(("user", "hi"),), json_schema=SCHEMA,
                              template_version="v1", sampling=SamplingParams(max_tokens=9)), "m"),
    ]
    assert len({k, *variants}) == len(variants) + 1


def test_cache_files_round_trip_and_skip_torn_lines(tmp_path):
    d = str(tmp_path / "cache")
    assert list_cache_files(d) == []
    entries = [{"key": f"k{i}", "texts": [str(i)], "parsed": None} for i in range(3)]
    path = write_entries(d, entries)
    assert write_entries(d, []) is None
    with open(path, "a") as f:
        f.write('{"key": "torn", "te')
    assert list_cache_files(d) == [path]
    assert [k for k, _ in read_entries(path)] == ["k0", "k1", "k2"]
    # same keys → same file name: a retried bundle overwrites instead of duplicating
    assert write_entries(d, list(reversed(entries))) == path


class _Scripted:
    """A backend that answers from a script: fault injection for the retry loop."""

    model_id = "scripted"

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls: list[list[ChatRequest]] = []

    def generate(self, requests):
        self.calls.append(list(requests))
        return [self.answers.pop(0) for _ in requests]

    def close(self):
        pass


def test_generate_validated_retries_then_deadletters():
    reqs = [ChatRequest(key=str(i), messages=(("user", str(i)),), json_schema=SCHEMA)
            for i in range(3)]
    backend = _Scripted([
        Generation(texts=['{"a": 1}'], completion_tokens=3),       # 0 ok first time
        Generation(texts=["nope"], completion_tokens=2),            # 1 bad, then good
        Generation(texts=['{"a": "x"}'], completion_tokens=2),      # 2 bad every time
        Generation(texts=['{"a": 2}'], completion_tokens=3),
        Generation(texts=['{"b": 1}'], completion_tokens=2),
        Generation(texts=['{"a": 1.5}'], completion_tokens=2),
    ])
    out = generate_validated(backend, reqs, retries=2, retry_temperature=0.5)
    assert out[0].result.parsed == ({"a": 1},) and out[0].attempts == 1
    assert out[1].result.parsed == ({"a": 2},) and out[1].retries == 1
    assert out[2].result is None and out[2].attempts == 3 and out[2].raw == '{"a": 1.5}'
    assert out[2].error.startswith("schema_violation")
    # retries change the seed and sample instead of repeating a greedy answer
    retried = backend.calls[1][0].sampling
    assert retried.temperature == 0.5 and retried.seed != reqs[1].sampling.seed
    assert [len(c) for c in backend.calls] == [3, 2, 1]
    assert sum(o.completion_tokens for o in out) == 14


def test_invalid_schema_fails_without_a_model_call():
    bad = ChatRequest(key="bad", messages=(("user", "x"),), json_schema={"type": "nonsense"})
    good = ChatRequest(key="good", messages=(("user", "x"),), json_schema=SCHEMA)
    backend = _Scripted([Generation(texts=['{"a": 1}'])])
    out = generate_validated(backend, [bad, good], retries=2)
    assert out[0].result is None and out[0].error.startswith("invalid_schema")
    assert out[0].attempts == 0 and '"nonsense"' in out[0].raw
    assert out[1].result.parsed == ({"a": 1},) and [len(c) for c in backend.calls] == [1]



@pytest.mark.parametrize(("text", "start", "end"), [
    ('{"a": 1} tail', 0, 8),
    ('say {"a": "}"} ok', 4, 14),  # a bracket inside a string does not close
    ('{"a": "\\"}"}', 0, 12),  # nor does an escaped quote end the string
    ('[{"a": [1, 2]}, 3]', 0, 18),
    ('{"a": [1, 2', 0, None),  # cut off
    ('{"a": "open', 0, None),
])
def test_json_span_end(text: str, start: int, end: int | None) -> None:
    assert json_span_end(text, start) == end
