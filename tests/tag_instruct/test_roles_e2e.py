"""End to end through the real OpenAI client path: a loopback server plays a scripted teacher
and policy (different model names). Asserts each step went to its role's model, rounds chain,
the teacher's tag subset is kept, ties and zero-signal candidates give no pair (counted),
a schema-invalid candidate drops alone, and truncated answers are rejected."""

from __future__ import annotations

import json
from collections import defaultdict

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from schemas.records import example_row, examples_to_batch
from tests.llm.helpers import Collect, read_collected
from tests.tag_instruct._teacher_policy_server import TeacherPolicyServer
from transforms.base import DEADLETTER, EXAMPLES, REJECTED, REPORT, TAG_PAIRS, RunContext
from transforms.embed.config import EmbeddingConfig
from transforms.llm.config import OpenAIConfig
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.stage import TagInstructStage

pytestmark = [pytest.mark.slow, pytest.mark.model]

SEEDS = {
    "happy": "Explain how a binary search finds a value in a sorted list.",
    "tie": "[tie] Explain how a linear search finds a value in a list.",
    "zero": "[zero] Explain how a hash table finds a value by its key.",
    "trunc": "[trunc] Explain how an interpolation search finds a value in a sorted list.",
}
UTILITY = {"complexity analysis": 300.0, "runtime analysis": 250.0, "formal proof": 200.0,
           "emoji": 2.0, "greeting": 1.0, "small talk": 3.0}


def _llm(server: TeacherPolicyServer, model: str) -> OpenAIConfig:
    return OpenAIConfig(model=model, base_url=server.base_url, api_key_env=None,
                     retries=0, max_retries=0, concurrency=4, batch_size=8, progress=False,
                     cache=False)


def _run(tmp_path, server: TeacherPolicyServer) -> dict[str, list]:
    utility = tmp_path / "utility.json"
    utility.write_text(json.dumps({t: {"utility": u, "count": 5} for t, u in UTILITY.items()}))
    cfg = TagInstructConfig(
        enabled=True, rounds=2, num_candidates=3, utility_path=str(utility), reference_k=3,
        max_similarity=0.995, respond={"max_tokens": 64},
        roles={"teacher": _llm(server, "teacher-7b"), "policy": _llm(server, "policy-rl")})
    ctx = RunContext(seed=3, work_dir=str(tmp_path / "work"), llm=_llm(server, "run-default"),
                     embeddings=EmbeddingConfig(device="cpu"),
                     roles={"tag_instruct": cfg.roles})  # as pipeline.run.make_context does
    rows = [example_row(f"id-{k}", [{"role": "user", "content": q},
                                    {"role": "assistant", "content": "A reference answer " * 3}])
            for k, q in SEEDS.items()]
    with TestPipeline() as p:
        out = p | beam.Create([examples_to_batch(rows)]) | TagInstructStage(cfg, ctx)
        for k in out:
            _ = out[k] | f"{k}Collect" >> beam.ParDo(Collect(str(tmp_path / k)))
    return {k: read_collected(tmp_path / k) for k in out}


def test_teacher_and_policy_rounds_pairs_and_truncation(tmp_path) -> None:
    with TeacherPolicyServer() as server:
        got = _run(tmp_path, server)
    # every step went to its role's model, never to the run's default
    models = defaultdict(set)
    for step, model in server.calls:
        models[step].add(model)
    assert dict(models) == {"compress": {"teacher-7b"}, "tag": {"teacher-7b"},
                            "reconstruct": {"teacher-7b"}, "respond": {"teacher-7b"},
                            "expand": {"policy-rl"}}
    examples = [r for b in got[EXAMPLES] for r in b.to_pylist()]
    rejected = [r for b in got[REJECTED] for r in b.to_pylist()]
    pairs = [r for b in got[TAG_PAIRS] for r in b.to_pylist()]
    [report] = got[REPORT]
    r1, r2 = report["rounds"]

    # truncated answers are rejected; everything else is accepted in both rounds
    assert [(r["id"], r["reject_reason"]) for r in rejected] == [("id-trunc",
                                                                   "response_truncated")]
    assert json.loads(rejected[0]["reject_detail"])["step"] == "respond"
    by_root = defaultdict(dict)
    for e in examples:
        by_root[e["meta"]["ti_root_id"]][e["meta"]["ti_round"]] = e
    assert {k: sorted(v) for k, v in by_root.items()} == {
        "id-happy": [1, 2], "id-tie": [1, 2], "id-zero": [1, 2]}
    for rounds in by_root.values():  # round 2 starts from round 1's output
        assert rounds[2]["meta"]["lineage"]["parent_ids"] == [rounds[1]["id"]]
        assert rounds[2]["messages"][0]["content"].startswith(rounds[1]["messages"][0]["content"])
    # the teacher's subset (second old tag + the new one) is what the example records
    happy = by_root["id-happy"][1]["meta"]
    assert happy["ti_chosen_tag"] == "complexity analysis"
    assert happy["ti_tags_used"] == ["explanation", "complexity analysis"]
    assert json.loads(happy["ti_models"])["expand"] == "openai:policy-rl"
    assert json.loads(happy["ti_models"])["respond"] == "openai:teacher-7b"
    assert r1["tags_kept_by_teacher"] == {"1_of_3": 4}  # trunc is rebuilt too

    # pairs: only happy (both rounds) and trunc (round 1, before its answer was cut)
    assert sorted((p["meta"]["parent_id"], p["meta"]["ti_round"]) for p in pairs) == sorted([
        ("id-happy", 1), ("id-trunc", 1), (by_root["id-happy"][1]["id"], 2)])
    for pr in pairs:
        assert json.loads(pr["chosen"][0]["content"])["tag"] == "Complexity Analysis"
        assert json.loads(pr["rejected"][0]["content"])["tag"] == "Emoji"
        assert pr["meta"]["lineage"]["model"] == "openai:policy-rl"
    assert r1["pairs_by_outcome"] == {"written": 2, "reward_tie": 1, "single_candidate": 1}
    assert r2["pairs_by_outcome"] == {"written": 1, "reward_tie": 1, "single_candidate": 1}
    assert r1["candidates_dropped"] == {"overlaps_existing_tag": 2}

    # the schema-invalid candidate of [zero] was dead-lettered alone, once per round (which
    # candidate number gets it depends on the order the 3 concurrent requests reach the
    # scripted server: it answers by arrival)
    dead = got[DEADLETTER]
    assert sorted(d["record_id"].split("|")[1:3] for d in dead) == [["r1", "expand"],
                                                                    ["r2", "expand"]]
    assert all(d["record_id"].split("|")[3] in {"0", "1", "2"} for d in dead)
    assert all(d["stage"] == "tag_instruct" for d in dead)
    assert r1["deadletter_by_step"] == {"expand_candidate": 1} and r1["deadletter"] == 0

    # per-round figures: same tagger before and after, conservation per round
    assert (r1["inputs"], r1["accepted"], r1["rejected"]) == (4, 3, 1)
    assert (r2["inputs"], r2["accepted"], r2["rejected"]) == (3, 3, 0)
    assert r1["mean_tags_before"] == 2.0 and r1["mean_tags_after"] == 3.0
    assert r2["mean_tags_before"] == 3.0 and r2["mean_tags_after"] == 4.0
    assert r1["reward_margin"]["count"] == 4 and r1["reward_margin"]["min"] == 0.0
    assert report["conserved"] and report["utility"]["source"] == "file"
