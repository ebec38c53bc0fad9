"""`refinery tag-utility` through the real CLI, ingest and OpenAI client path: a loopback tagger
names topics by keyword; the written table holds the expected utilities (response tokens /
#tags, averaged over occurrences), keeps only frequent tags, and is what the stage loads."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import main
from tests.llm._loopback import LoopbackServer
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.stage import refs_dict
from transforms.tag_instruct.utility import load_utility

TOPICS = {"math": "Mathematics", "code": "Programming", "poem": "Poetry", "chess": "Chess"}
# (instruction, answer tokens)
CORPUS = [("Solve this math problem", 40), ("Write code for a math formula", 60),
          ("Write a poem", 6), ("A math riddle", 20), ("Review my code", 30),
          ("A poem on rain", 4), ("A poem in code", 10), ("One chess puzzle", 500),
          ("A math question without an answer", 0)]


class Tagger(LoopbackServer):
    def __init__(self) -> None:
        self.models: set[str] = set()
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.models.add(body["model"])
        query = prompt.split("User query:\n", 1)[1].split("\n\nAnswer with", 1)[0]
        tags = [{"tag": t, "explanation": "topic"} for k, t in TOPICS.items() if k in query]
        content = json.dumps({"tags": tags})
        reply = {"choices": [{"index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": content}}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
        self.send_json(h, 200, json.dumps(reply).encode())


def test_tag_utility_writes_the_table_the_stage_loads(tmp_path, capsys) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"instruction": q, "input": "",
                                          "output": " ".join(["w"] * n)}) + "\n"
                              for q, n in CORPUS))
    table = tmp_path / "utility.json"
    with Tagger() as server:
        config = {
            "run": {"name": "tu", "output_dir": str(tmp_path / "out")},
            "sources": [{"path": str(corpus), "name": "corpus"}],
            "stages": {"tag_instruct": {
                "utility_path": str(table), "reference_k": 1, "min_tag_count": 3,
                "roles": {"teacher": {"backend": "openai", "model": "tagger-model",
                                      "base_url": server.base_url, "api_key_env": None,
                                      "max_retries": 0, "cache": False}}}},
            "llm": {"backend": "openai", "model": "run-model", "base_url": server.base_url},
        }
        path = tmp_path / "tu.yaml"
        path.write_text(yaml.safe_dump(config))
        assert main(["tag-utility", str(path)]) == 0
    assert server.models == {"tagger-model"}
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the row without an answer stops at ingest; chess (1 occurrence) is not frequent
    assert summary["outcomes"] == {"tagged": 8, "ingest_deadletter": 1}
    assert (summary["tags_seen"], summary["tags_frequent"], summary["tags_written"]) == (4, 3, 2)
    written = [json.loads(line) for line in table.read_text().splitlines()]
    # mathematics: 40, 60/2, 20 → 30; poetry: 6, 4, 10/2 → 5; programming (middle) dropped at K=1
    # the authors' tag_values.jsonl columns, best first
    assert written == [
        {"tag": "mathematics", "count": 3, "total_value": 90.0, "average_value": 30.0},
        {"tag": "poetry", "count": 3, "total_value": 15.0, "average_value": 5.0}]
    refs = refs_dict(load_utility(table), TagInstructConfig(reference_k=1000), "file")
    assert (refs["top"], refs["bottom"]) == (["mathematics"], ["poetry"])


def test_tag_utility_needs_a_table_path(tmp_path, capsys) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"sources": [{"path": "x.jsonl"}]}))
    assert main(["tag-utility", str(path)]) == 2
    assert "utility_path" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [{"num_candidates": 65}, {"min_reward_margin": 0}])
def test_config_bounds(bad) -> None:
    with pytest.raises(ValueError):
        TagInstructConfig(**bad)


def test_the_alpaca_1k_table_from_the_local_model_loads_into_reference_sets() -> None:
    """data/tag_utility/: written by `refinery tag-utility configs/tag_instruct_demo.yaml
    --input ../shared/evaldata/alpaca_subset_1k.json` with the 135M local model (docs/
    tag_instruct.md). The stage's loader reads it; its sets are the table's extremes."""
    path = str(Path(__file__).resolve().parents[2] / "data/tag_utility/alpaca1k_smollm2_135m.json")
    with open(f"{path}.summary.json") as f:
        summary = json.load(f)
    assert sum(summary["outcomes"].values()) == 1000
    table = load_utility(path)
    assert len(table.utility) == summary["tags_written"] == 2 * summary["reference_k"]
    assert min(table.count.values()) >= summary["min_tag_count"]
    cfg = TagInstructConfig(enabled=True, utility_path=path, reference_k=5)
    refs = refs_dict(table, cfg, "file")
    ranked = sorted(table.utility, key=table.utility.get)
    assert set(refs["top"]) == set(ranked[-5:]) and set(refs["bottom"]) == set(ranked[:5])
