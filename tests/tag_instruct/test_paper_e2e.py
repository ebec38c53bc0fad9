"""configs/tag_instruct_paper.yaml, 2 rounds, through the CLI and the real OpenAI client path:
a loopback server plays the teacher and the policy (bracket formats) and records every request.
Asserts the authors' flow: one greedy expand per item per round from the policy; 20 pair
samples at T=1.0 / top_p 0.95 beside it; compress / reconstruct / respond to the teacher at
T=0 / top_p 0.9 with 256 / 1,024 / 2,048 tokens; every parsed round-1 output is a round-2
input; pairs = best vs worst reward of the parseable samples, in tag_policy/ (TRL) and
tag_policy_sharegpt/ (their layout), never in preference/."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main
from pipeline.inspect_rows import sample_rows
from tests.tag_instruct._paper_server import GREEDY_TAG, PAIR_CANDIDATES, PaperServer
from transforms.embed.config import EmbeddingConfig
from transforms.tag_instruct.stage import LazyEmbedder

pytestmark = [pytest.mark.slow, pytest.mark.model]

ROOT = Path(__file__).resolve().parents[2]
SEEDS = ["Explain how a binary search finds a value in a sorted list.",
         "Describe how a hash table looks up a key.",
         "[notag] Explain how a linked list stores its items."]
UTILITY = {"complexity analysis": 300.0, "asymptotic analysis": 280.0, "formal proof": 250.0,
           "greeting": 1.0, "small talk": 2.0, "emoji": 3.0, "runtime": 100.0}
TEACHER, POLICY = "ministral-teacher", "policy-dpo"


def _tables(out: Path, dataset: str) -> list[dict]:
    return [r for f in sorted((out / dataset).glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def _run(tmp_path: Path, server: PaperServer) -> Path:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"instruction": q, "response": "A reference answer."})
                             + "\n" for q in SEEDS))
    table = tmp_path / "tag_values.jsonl"
    table.write_text("".join(json.dumps({"tag": t, "count": 5, "total_value": 5 * u,
                                         "average_value": u}) + "\n"
                             for t, u in UTILITY.items()))
    cfg = yaml.safe_load((ROOT / "configs" / "tag_instruct_paper.yaml").read_text())
    ti = cfg["stages"]["tag_instruct"]
    role = {"backend": "openai", "base_url": server.base_url, "api_key_env": None,
            "cache": False, "max_retries": 0, "concurrency": 8}
    ti.update(rounds=2, utility_path=str(table), reference_k=3,
              roles={"teacher": {**role, "model": TEACHER}, "policy": {**role, "model": POLICY}})
    cfg.update(run={"name": "paper-e2e", "seed": 0, "output_dir": str(tmp_path / "out")},
               sources=[{"path": str(seeds), "name": "seeds"}],
               llm={**role, "model": "run-default"},
               embeddings={**cfg["embeddings"], "device": "cpu"},
               emit={"include_curated": False, "num_shards": 1, "jsonl": True},
               beam={"runner": "DirectRunner", "direct_running_mode": "in_memory"})
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    return tmp_path / "out"


def test_paper_config_two_rounds(tmp_path: Path) -> None:
    with PaperServer() as server:
        out = _run(tmp_path, server)
    calls = server.calls
    sft = _tables(out, "sft")
    by_round = defaultdict(list)
    for row in sft:
        by_round[row["meta"]["ti_round"]].append(row)
    r1_questions = sorted(r["messages"][0]["content"] for r in by_round[1])
    # [notag] got no parseable greedy tag: rejected in round 1; the other two go on
    assert len(r1_questions) == 2 and len(by_round[2]) == 2
    r1_inputs, r2_inputs = sorted(SEEDS), r1_questions

    def per_round(step: str, inputs: list[str], **match) -> Counter:
        return Counter(c.instruction for c in calls if c.step == step and c.instruction in inputs
                       and all(getattr(c, k) == v for k, v in match.items()))

    for inputs in (r1_inputs, r2_inputs):
        # rewrite path: exactly one greedy expand per item per round, from the policy
        assert per_round("expand", inputs, temperature=0.0) == Counter(inputs)
        greedy = [c for c in calls if c.step == "expand" and c.temperature == 0.0
                  and c.instruction in inputs]
        assert {(c.model, c.top_p, c.max_tokens) for c in greedy} == {(POLICY, 0.9, 256)}
        # pair path: 20 samples per item at T=1.0 / top_p 0.95 from the policy
        assert per_round("expand", inputs, temperature=1.0, top_p=0.95, model=POLICY) == \
            Counter({q: 20 for q in inputs})
        # teacher steps at their settings; every parsed round-1 output is a round-2 input
        assert per_round("compress", inputs, model=TEACHER, temperature=0.0, top_p=0.9,
                         max_tokens=256) == Counter(inputs)
    parsed = [q for q in r1_inputs if "[notag]" not in q]  # the item with a new tag
    assert per_round("reconstruct", parsed, model=TEACHER, temperature=0.0, top_p=0.9,
                     max_tokens=1024) == Counter(parsed)
    respond = [c for c in calls if c.step == "respond"]
    assert {(c.model, c.temperature, c.top_p, c.max_tokens) for c in respond} == {
        (TEACHER, 0.0, 0.9, 2048)}
    assert sorted(c.instruction for c in respond) == sorted(r1_questions + [
        r["messages"][0]["content"] for r in by_round[2]])
    assert {c.model for c in calls} == {TEACHER, POLICY}   # never the run's default llm
    assert Counter(c.step for c in calls) == {"compress": 5, "expand": 5 + 5 * 20,
                                              "reconstruct": 4, "respond": 4}
    # round 2 starts from round 1's question; the new tag is the greedy one
    for row in by_round[2]:
        [parent] = row["meta"]["lineage"]["parent_ids"]
        assert parent in {r["id"] for r in by_round[1]}
    assert all(r["meta"]["ti_chosen_tag"] == GREEDY_TAG for r in sft)
    # each round also written alone, as theirs are (sft/ holds them together)
    for rn in (1, 2):
        alone = _tables(out, f"tag_instruct_rounds/round_{rn}")
        assert sorted(r["id"] for r in alone) == sorted(r["id"] for r in by_round[rn])
    import datasets  # the card names every dataset, the per-round and pair ones included

    assert len(datasets.load_dataset(str(out), "tag_instruct_round_2", split="train")) == 2
    assert len(datasets.load_dataset(str(out), "tag_policy_sharegpt", split="train")) == 5
    rejected = [r for f in (out / "rejected").glob("*.parquet")
                for r in pq.read_table(f).to_pylist()]
    # the greedy answer without a [New Tag] cannot be read: the kit's <step>_unparseable
    assert [(r["reject_reason"], r["messages"][0]["content"]) for r in rejected] == [
        ("expand_unparseable", SEEDS[2])]
    detail = json.loads(rejected[0]["reject_detail"])
    assert detail["step"] == "expand" and "missing_tag" in detail["error"] and detail["raw"]

    # pairs: one per item per round (5), best vs worst reward of the 19 parseable samples
    pairs = _tables(out, "tag_policy")
    assert not _tables(out, "preference") and len(pairs) == 5
    usable = [t for t in PAIR_CANDIDATES if t]
    embed = LazyEmbedder(EmbeddingConfig(device="cpu", int8=False))
    v = embed(usable + list(UTILITY))
    top = ["complexity analysis", "asymptotic analysis", "formal proof"]
    bottom = ["greeting", "small talk", "emoji"]
    idx = {t: i for i, t in enumerate(usable + list(UTILITY))}
    cand = v[:len(usable)]
    reward = (cand @ v[[idx[t] for t in top]].T).mean(1) - (
        cand @ v[[idx[t] for t in bottom]].T).mean(1)
    best, worst = usable[int(np.argmax(reward))], usable[int(np.argmin(reward))]
    for pr in pairs:
        assert pr["chosen"][0]["content"] == f"[Explanation] It adds depth.\n[New Tag] {best}"
        assert pr["rejected"][0]["content"] == f"[Explanation] It adds depth.\n[New Tag] {worst}"
        assert pr["prompt"][-1]["content"].startswith("Add exactly one new tag")
        assert pr["meta"]["lineage"]["model"] == f"openai:{POLICY}"
    sharegpt = [json.loads(line) for f in (out / "jsonl" / "tag_policy_sharegpt").glob("*.jsonl")
                for line in f.read_text().splitlines()]
    assert sorted(r["id"] for r in sharegpt) == sorted(p["id"] for p in pairs)
    for row in sharegpt:
        assert [t["from"] for t in row["conversations"]] == ["human"]
        assert row["chosen"]["from"] == row["rejected"]["from"] == "gpt"
        assert row["chosen"]["value"].endswith(best)
    shown = sample_rows(str(out), "tag_policy", n=10)
    assert sorted(r["id"] for r in shown) == sorted(p["id"] for p in pairs)
    assert main(["inspect", str(out), "--dataset", "tag_policy", "-n", "2"]) == 0

    # the report: tags per query (3 compress tags + the new one) and unique tags per round,
    # with the tagger named; the 3 samples without [Explanation] per item are not candidates
    report = json.loads((out / "manifest.json").read_text())["reports"]["tag_instruct"]
    r1, r2 = report["rounds"]
    assert (r1["tags_per_query"], r1["unique_tags"], r2["tags_per_query"]) == (4.0, 4, 4.0)
    assert TEACHER in report["tagger"] and POLICY in report["tagger"]
    assert r1["pairs_by_outcome"] == {"written": 3} and r2["pairs_by_outcome"] == {"written": 2}
    assert r1["candidates_dropped"] == {"missing_explanation": 3}
