"""The respond stage's pure core: which rows are answered, pending turns, requests (seeded
per row and turn, n samples, system prompt), and the choice among sampled answers."""

from __future__ import annotations

import json

import pytest

from schemas.records import example_row
from transforms.llm.api import ChatResult
from transforms.respond import core
from transforms.respond.config import RespondConfig

SRC = {"dataset": "seeds", "file": "seeds.jsonl", "row": 3}


def row(*turns: tuple[str, str], rid: str = "r1") -> dict:
    return example_row(rid, [{"role": r, "content": c} for r, c in turns], SRC, category="qa")


def result(item: dict, texts: list[str], finish: list[str] | None = None) -> ChatResult:
    return ChatResult(key=core.request_key(item), texts=tuple(texts), model="m",
                      payload=item, finish_reasons=None if finish is None else tuple(finish))


def test_only_prompt_only_rows_are_answered_unless_overwrite() -> None:
    cfg = RespondConfig(enabled=True)
    assert core.start_item(row(("user", "q"), ("assistant", "a")), cfg) is None
    item = core.start_item(row(("system", "s"), ("user", "q")), cfg)
    assert item["messages"][-1] == {"role": "user", "content": "q"} and item["turn"] == 0
    over = core.start_item(row(("user", "q"), ("assistant", "a"), ("user", "q2"),
                               ("assistant", "a2")), RespondConfig(overwrite=True))
    assert [m["role"] for m in over["messages"]] == ["user", "user"]
    tools = core.start_item(row(("user", "q"), ("assistant", "call"), ("tool", "t"),
                                ("assistant", "a")), RespondConfig(overwrite=True))
    assert isinstance(tools, core.Rejection) and tools.reason == "tool_turns"
    many = core.start_item(row(*[("user", f"q{i}") for i in range(5)]), RespondConfig(max_turns=4))
    assert many.reason == "too_many_turns" and many.detail == {"turns": 5, "max_turns": 4}


def test_pending_turns_in_order() -> None:
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}, {"role": "user", "content": "d"}]
    assert core.pending_turn(msgs) == 2 and core.pending_count(msgs) == 2
    assert core.pending_turn(msgs[:2]) is None


def test_request_has_system_prompt_n_samples_and_a_seed_per_row_and_turn() -> None:
    cfg = RespondConfig(system_prompt="Be kind.", n=3)
    item = core.start_item(row(("user", "q1"), ("user", "q2")), cfg)
    req = core.build_request(item, cfg, seed=7)
    assert req.messages == (("system", "Be kind."), ("user", "q1"))
    assert req.sampling.n == 3 and req.sampling.max_tokens == 512
    assert req.template_version.startswith("respond.answer@") and req.payload is item
    again = core.build_request(item, cfg, seed=7)
    assert again.sampling.seed == req.sampling.seed
    assert core.build_request(item, cfg, seed=8).sampling.seed != req.sampling.seed
    next_turn = {**item, "turn": 1}
    assert core.build_request(next_turn, cfg, seed=7).sampling.seed != req.sampling.seed
    own_system = core.start_item(row(("system", "Mine."), ("user", "q")), cfg)
    assert core.build_request(own_system, cfg, 7).messages[0] == ("system", "Mine.")


def test_turn_by_turn_answers_are_inserted_after_their_turn() -> None:
    cfg = RespondConfig()
    item = core.start_item(row(("user", "q1"), ("user", "q2")), cfg)
    first = core.choose(item, core.candidates(result(item, ["a1"], ["stop"])), {}, cfg, "m")
    assert [m["content"] for m in first.item["messages"]] == ["q1", "a1", "q2"]
    assert core.build_request(first.item, cfg, 0).messages == (
        ("user", "q1"), ("assistant", "a1"), ("user", "q2"))
    second = core.choose(first.item, core.candidates(result(first.item, ["a2"])), {}, cfg, "m")
    assert [m["content"] for m in second.item["messages"]] == ["q1", "a1", "q2", "a2"]
    assert core.pending_turn(second.item["messages"]) is None and second.pair is None
    ex = core.answered_example(second.item, "m", "v")
    assert ex["meta"]["lineage"]["parent_ids"] == ["r1"] and ex["meta"]["category"] == "qa"
    assert ex["meta"]["lineage"]["stage"] == "respond" and ex["source"] == SRC


def test_best_is_kept_and_a_pair_needs_the_margin() -> None:
    cfg = RespondConfig(n=3, pair_margin=1.5)
    item = core.start_item(row(("user", "q")), cfg)
    cands = core.candidates(result(item, ["ok", "great", "bad"], ["stop"] * 3))
    got = core.choose(item, cands, {0: 4.0, 1: 5.0, 2: 2.0}, cfg, "m")
    assert got.item["messages"][-1]["content"] == "great" and got.item["scores"] == [5.0]
    pair = got.pair
    assert pair["chosen"][0]["content"] == "great" and pair["rejected"][0]["content"] == "bad"
    assert pair["prompt"] == [{"role": "user", "content": "q"}]
    assert json.loads(pair["meta"]["extra"])["chosen_score"] == 5.0
    assert pair["meta"]["method"] == "respond_best_vs_worst"
    small = core.choose(item, cands, {0: 4.0, 1: 5.0, 2: 4.0}, cfg, "m")
    assert small.pair is None and small.item["messages"][-1]["content"] == "great"
    ties = core.choose(item, cands, {0: 5.0, 1: 5.0, 2: None}, cfg, "m")
    assert ties.item["messages"][-1]["content"] == "ok" and ties.pair is None


def test_truncated_answers_are_not_kept() -> None:
    cfg = RespondConfig(n=2)
    item = core.start_item(row(("user", "q")), cfg)
    cut = core.choose(item, core.candidates(result(item, ["long", "lon"], ["length"] * 2)),
                      {}, cfg, "m")
    assert cut.item is None and cut.rejection.reason == "response_truncated"
    assert cut.rejection.detail["finish_reasons"] == ["length", "length"]
    one = core.choose(item, core.candidates(result(item, ["cut", "whole"], ["length", "stop"])),
                      {0: 6.0, 1: 1.0}, cfg, "m")
    assert one.item["messages"][-1]["content"] == "whole" and one.pair is None
    empty = core.choose(item, core.candidates(result(item, [" ", ""])), {}, cfg, "m")
    assert empty.rejection.reason == "empty_response"


def test_judge_rows_name_turn_and_sample() -> None:
    item = core.start_item(row(("user", "q")), RespondConfig())
    jr = core.judge_row(item, core.Candidate(2, "ans", "stop"))
    assert jr["id"] == f"{core.request_key(item)}:2"
    assert jr["messages"] == [{"role": "user", "content": "q"},
                              {"role": "assistant", "content": "ans"}]


@pytest.mark.parametrize("aspects", [["quality", "complexity"], ["complexity"]])
def test_judge_rates_quality_only(aspects: list[str]) -> None:
    cfg = RespondConfig(judge={"enabled": True, "aspects": aspects})
    assert cfg.judge.aspects == ["quality"]
