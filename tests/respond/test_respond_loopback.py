"""The respond stage end to end (ingest → respond → emit, the real CLI path) against a
scripted OpenAI-compatible server on 127.0.0.1, each role its own model name: n samples +
judge → best kept and best-vs-worst pairs, truncated answers rejected, multi-turn prompts
answered turn by turn, answered rows passed by, the conservation law."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.run import run_config
from tests.respond._respond_server import RespondServer

SEEDS = [
    {"instruction": "Name a colour."},
    {"question": "Why is the sky blue?"},
    {"prompt": "Write a haiku. [cut-first]"},
    {"query": "Tell a very long story. [long]"},
    {"question_id": 1, "category": "writing", "turns": ["Write a title.", "Shorten it."]},
    {"instruction": "Say hi.", "output": "Hi!"},  # answered already: not this stage's
    {"question": "Will this call fail? [fail]"},  # the model call fails: dead letter
]


def _rows(out: Path, name: str) -> list[dict]:
    return [r for p in sorted((out / name).glob("*.parquet")) for r in pq.read_table(p).to_pylist()]


def _run(tmp_path: Path, server: RespondServer, judge: bool) -> tuple[Path, dict]:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in SEEDS))
    block = {"backend": "openai", "base_url": server.base_url, "max_retries": 0}
    sets = [
        "stages.respond.enabled=true", "stages.respond.n=3", "stages.respond.pair_margin=2.0",
        "stages.respond.system_prompt=You are concise.", "stages.respond.max_turns=2",
        f"stages.respond.roles={json.dumps({'responder': {**block, 'model': 'responder'}, 'judge': {**block, 'model': 'judge'}})}",
        f"llm={json.dumps({**block, 'model': 'run-model'})}",
        "emit.include_curated=false", "emit.num_shards=1"]
    if judge:
        sets += ["stages.respond.judge.enabled=true", "stages.respond.judge.use_logprobs=false"]
    cfg = load_config(None, sets, inputs=[str(seeds)], out=str(tmp_path / "out"))
    return tmp_path / "out", run_config(cfg).manifest


def test_n_samples_judge_pairs_truncation_and_turns(tmp_path: Path) -> None:
    with RespondServer() as server:
        out, manifest = _run(tmp_path, server, judge=True)
    assert manifest["conservation"]["holds"] and manifest["conservation"]["deadletter"] == 0
    dead = [json.loads(x) for x in (out / "deadletter" / "deadletter.jsonl").read_text().splitlines()]
    assert [(d["stage"], d["step"]) for d in dead] == [("respond", "answer")]
    assert "[fail]" in dead[0]["raw"] and dead[0]["error"].startswith("http_500")
    assert manifest["synthesis"]["respond"]["deadletter"] == 1
    assert not server.by_model("run-model")  # every call went to its role's model
    answered = {r["messages"][0]["content"] if r["messages"][0]["role"] == "user" else None: r
                for r in _rows(out, "sft")}
    assert sorted(answered) == ["Name a colour.", "Why is the sky blue?", "Write a haiku. [cut-first]",
                                "Write a title."]
    for r in answered.values():  # the judge's best (BEST, sample 1) was kept at every turn
        assistant = [m["content"] for m in r["messages"] if m["role"] == "assistant"]
        assert all(a.startswith("BEST answer") for a in assistant)
        assert r["meta"]["respond_score"] == 6.0
        assert r["meta"]["lineage"]["stage"] == "respond"
        assert r["meta"]["lineage"]["model"] == "openai:responder"
    # turn by turn: the second turn was asked with the first answer in the conversation
    multi = answered["Write a title."]
    assert [m["role"] for m in multi["messages"]] == ["user", "assistant", "user", "assistant"]
    assert multi["messages"][1]["content"] == "BEST answer, turn 1: Write a title."
    assert multi["messages"][3]["content"] == "BEST answer, turn 2: Shorten it."
    second = [b for b in server.by_model("responder") if b["messages"][-1]["content"] == "Shorten it."]
    assert [m["role"] for m in second[0]["messages"]] == ["system", "user", "assistant", "user"]
    assert second[0]["messages"][0]["content"] == "You are concise." and second[0]["n"] == 3
    # pairs: best (6) vs worst (1) at every answered turn (the cut-first row: from its two
    # usable samples)
    pairs = _rows(out, "preference")
    assert len(pairs) == 5
    for p in pairs:
        assert p["chosen"][0]["content"].startswith("BEST")
        assert p["rejected"][0]["content"].startswith(("BAD", "OK"))
        assert p["meta"]["method"] == "respond_best_vs_worst"
    turn2 = [p for p in pairs if p["prompt"][-1]["content"] == "Shorten it."]
    assert len(turn2) == 1 and turn2[0]["prompt"][1]["role"] == "assistant"
    # truncation: every sample of the [long] prompt was cut → rejected with that reason
    rejected = pq.read_table(out / "rejected" / "respond.parquet").to_pylist()
    assert [(r["reject_reason"], r["messages"][0]["content"]) for r in rejected] == [
        ("response_truncated", "Tell a very long story. [long]")]
    assert json.loads(rejected[0]["reject_detail"])["finish_reasons"] == ["length"] * 3
    # the judge rated each usable sample once (3 + 3 + 2 + 3 + 3)
    assert len(server.by_model("judge")) == 14
    report = manifest["reports"]["respond"]
    assert report["answered"] == 4 and report["pairs"] == 5
    assert report["rejected"] == {"response_truncated": 1}
    assert (report["seeds"], report["not_prompt_only"], report["deadletter"]) == (7, 1, 1)
    assert report["conserved"]
    curated = _rows(out, "curated")
    assert len(curated) == 7  # the prompts themselves, and the answered row, as curated input


@pytest.mark.parametrize("judge", [False])
def test_without_judge_the_first_usable_sample_is_kept_and_no_pairs(tmp_path: Path,
                                                                    judge: bool) -> None:
    with RespondServer() as server:
        out, manifest = _run(tmp_path, server, judge=judge)
    assert not server.by_model("judge") and not _rows(out, "preference")
    first = {r["messages"][1]["content"] for r in _rows(out, "sft")}
    assert "BEST answer, turn 1: Write a haiku. [cut-first]" in first  # sample 0 was cut
    assert "OK answer, turn 1: Name a colour." in first
    assert manifest["conservation"]["holds"]
