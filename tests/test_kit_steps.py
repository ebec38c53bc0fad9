"""RunStep's growth against a real OpenAI-compatible server on 127.0.0.1 (faults scripted in
the prompt): the failure policy (failed call → dead letter; an answer off the schema →
`<step>_unparseable` with the raw answer; a rule → its reason), `Emit` side outputs, per-step
report events, n requests per item gathered back with their item (fan-in), side inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from schemas.ids import derive_seed
from schemas.records import example_row
from tests.llm._openai_server import ChatServer
from tests.llm.helpers import Collect, read_collected
from transforms.base import DEADLETTER, MAIN, REJECTED, RunContext
from transforms.kit import EVENTS, Emit, Gathered, Rejection, RunStep, StepSpec
from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.config import OpenAIConfig

KEY = "kit-steps-key"
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
          "required": ["answer"]}


def _request(key: str, text: str, payload: dict[str, Any]) -> ChatRequest:
    return ChatRequest(key=key, messages=(("user", text),), json_schema=SCHEMA,
                       sampling=SamplingParams(max_tokens=16, seed=derive_seed(key)),
                       payload=payload)


def _row(item: dict[str, Any]) -> dict[str, Any]:
    return example_row(item["id"], [{"role": "user", "content": item["text"]}])


def _parse(result: Any) -> Any:
    answer = result.parsed[0]["answer"]
    if answer.startswith("SHORT"):
        return Rejection(_row(result.payload), "too_short", {"chars": len(answer)})
    return iter([Emit(EVENTS, {"kind": "answered", "id": result.payload["id"]}),
                 {**result.payload, "answer": answer}])


def _event(kind: str, x: Any) -> dict[str, Any]:
    return {"kind": kind, "what": x.reason if kind == "rejected" else x["record_id"]}


def _run(tmp_path: Path, items: list[dict], spec: StepSpec, outputs: tuple[str, ...] = (),
         side: list[Any] | None = None) -> dict[str, list[Any]]:
    with ChatServer(api_key=KEY) as server:
        llm = OpenAIConfig(model="m", base_url=server.base_url, api_key_env="KIT_STEPS_KEY",
                           cache=False, retries=0, max_retries=0, timeout_s=5.0)
        ctx = RunContext(work_dir=str(tmp_path), llm=llm)
        p = TestPipeline()
        kw = {}
        if side is not None:
            kw["extra"] = beam.pvalue.AsList(p | "Side" >> beam.Create(side))
        out = p | beam.Create(items) | RunStep(spec, ctx, stage="demo", outputs=outputs, **kw)
        names = (MAIN, REJECTED, DEADLETTER, EVENTS, *outputs)
        for name in names:
            out[name] | f"C{name}" >> beam.ParDo(Collect(str(tmp_path / f"{name}.pkl")))
        p.run().wait_until_finish()
    return {name: read_collected(tmp_path / f"{name}.pkl") for name in names}


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_STEPS_KEY", KEY)


def _build(item: dict[str, Any]) -> ChatRequest:
    if item["text"] == "UNRENDERABLE":
        raise KeyError("slot")
    return _request(item["id"], item["text"], item)


def test_one_failure_policy_emits_and_events(tmp_path: Path) -> None:
    spec = StepSpec("answer", None, build=_build,
                    parse=_parse, row_of=_row, event=_event,
                    detail=lambda it: {"text_chars": len(it["text"])})
    items = [{"id": "ok", "text": "fine"}, {"id": "bad", "text": "[fault:badanswer*all] b"},
             {"id": "dead", "text": "[fault:500*all] d"}, {"id": "rule", "text": "SHORT"},
             {"id": "unbuilt", "text": "UNRENDERABLE"}]
    out = _run(tmp_path, items, spec)
    assert [(i["id"], i["answer"]) for i in out[MAIN]] == [("ok", "fine")]
    rejected = sorted(out[REJECTED], key=lambda r: r.reason)
    assert [(r.row["id"], r.reason) for r in rejected] == [("bad", "answer_unparseable"),
                                                         ("rule", "too_short")]
    detail = rejected[0].detail
    assert detail["step"] == "answer" and detail["error"].startswith("schema_violation")
    assert json.loads(detail["raw"]) == {"wrong": 1} and detail["text_chars"] == len("[fault:badanswer*all] b")
    dead, unbuilt = sorted(out[DEADLETTER], key=lambda e: e["record_id"])
    assert (dead["stage"], dead["step"], dead["record_id"]) == ("demo", "answer", "dead")
    assert dead["error"].startswith("http_500")
    assert (unbuilt["stage"], unbuilt["step"], unbuilt["error"]) == (
        "demo", "answer", "build: KeyError: 'slot'")
    assert json.loads(unbuilt["raw"]) == items[-1]
    assert sorted(map(json.dumps, out[EVENTS])) == sorted(map(json.dumps, [
        {"kind": "answered", "id": "ok"}, {"kind": "rejected", "what": "answer_unparseable"},
        {"kind": "rejected", "what": "too_short"}, {"kind": "deadletter", "what": "dead"},
        {"kind": "deadletter", "what": "unbuilt"}]))


def _candidates(item: dict[str, Any]) -> list[ChatRequest]:
    return [_request(f"{item['id']}|{i}", f"{text} {item['id']}", {"id": item["id"], "i": i})
            for i, text in enumerate(item["texts"])]


def _best(g: Gathered, extra: list[str]) -> Any:
    answers = [r.parsed[0]["answer"] for r in g.results]
    yield Emit("pair", {"id": g.item["id"], "n": len(answers)})
    yield {"id": g.item["id"], "answers": answers, "extra": extra}


def test_n_requests_per_item_are_gathered_back_with_their_item(tmp_path: Path) -> None:
    spec = StepSpec("expand", None, build=_candidates, parse=_best, row_of=_row,
                    gather=lambda x: x["id"])
    items = [{"id": "a", "text": "a", "texts": ["one", "two", "[fault:500*all] three"]},
             {"id": "b", "text": "b", "texts": ["one", "[fault:badanswer*all] two"]},
             {"id": "c", "text": "c", "texts": ["[fault:500*all] one"]}]
    out = _run(tmp_path, items, spec, outputs=("pair",), side=["s"])
    by_id = {i["id"]: i for i in out[MAIN]}
    assert sorted(by_id) == ["a", "b", "c"]  # an item whose every call failed is still parsed
    assert [len(by_id[k]["answers"]) for k in "abc"] == [2, 1, 0]
    assert by_id["a"]["answers"] == ["one a", "two a"]  # in key order
    assert by_id["a"]["extra"] == ["s"]  # side inputs reach parse
    assert sorted((p["id"], p["n"]) for p in out["pair"]) == [("a", 2), ("b", 1), ("c", 0)]
    # in a fan-in an unreadable or failed candidate only drops itself: dead letter, no rejection
    assert out[REJECTED] == []
    assert sorted(d["record_id"] for d in out[DEADLETTER]) == ["a|2", "b|1", "c|0"]
