"""The tag-utility job (`refinery tag-utility`, not a registered stage: it writes a table, no
rows) under the same failure policy, through the real CLI against the contract's scripted
server: each input row ends in one outcome of its summary: a failed call →
`failed_deadletter`, an unreadable tagger answer → `failed_utility_tag_unparseable`, a rule
(only placeholder tags) → `failed_tag_too_few_tags`, the good row → `tagged`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from pipeline.cli import main
from tests.model_contract.contract import MODES, ModelStageCase, marker, role_model
from tests.model_contract.server import ContractServer
from tests.tag_instruct._teacher_policy_server import step_of

CASE = ModelStageCase(
    stage="tag_instruct", step="utility_tag", settings={},
    row=lambda text: {"instruction": f"{text} Explain binary search.",
                      "output": "It halves a sorted range at every step."},
    answer=lambda role, prompt: {"tags": [{"tag": "algorithms", "explanation": "topic"}]},
    is_step=lambda role, prompt: role == "teacher" and step_of(prompt) == "tag",
    unparseable="algorithms, search",
    rule={"tags": [{"tag": "tag 1", "explanation": "x"}]},
    rule_reason="tag_too_few_tags", name="tag_utility")


def test_tag_utility_outcomes_follow_the_policy(tmp_path: Path, capsys) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(CASE.row(f"Case {i} {marker(m)}")) + "\n"
                              for i, m in enumerate(MODES)))
    with ContractServer([CASE], {"tag_instruct": ["teacher", "policy"]}) as server:
        block = {"backend": "openai", "base_url": server.base_url, "api_key_env": None,
                 "max_retries": 0, "retries": 0, "cache": False}
        config = {
            "run": {"name": "tu", "output_dir": str(tmp_path / "out")},
            "sources": [{"path": str(corpus), "name": "corpus"}],
            "stages": {"tag_instruct": {
                "utility_path": str(tmp_path / "utility.json"), "reference_k": 1,
                "min_tag_count": 1,
                "roles": {"teacher": {**block, "model": role_model("tag_instruct", "teacher")}}}},
            "llm": {**block, "model": "run-model"},
        }
        path = tmp_path / "tu.yaml"
        path.write_text(yaml.safe_dump(config))
        assert main(["tag-utility", str(path)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["outcomes"] == {"tagged": 1, "failed_deadletter": 2,
                                   "failed_utility_tag_unparseable": 1,
                                   f"failed_{CASE.rule_reason}": 1}
