"""Human review round trip on a real run: `refinery run` (roles behind the loopback server) →
`refinery review --export` → decisions edited → `--apply` keeps only the accepted items."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main
from tests.compound._role_server import CONTEXT, ROLE_MODELS, RoleServer


def _run(tmp_path: Path, server: RoleServer) -> Path:
    data = tmp_path / "seeds.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"When did the bridge open? case-s{i}",
                                        "context": CONTEXT, "response": f"In 1883 ({i})."}) + "\n"
                            for i in range(3)))
    role = {"backend": "openai", "base_url": server.base_url, "cache": False, "retries": 0}
    cfg = {"run": {"name": "review-test", "seed": 0, "output_dir": str(tmp_path / "out")},
           "sources": [{"path": str(data), "name": "seeds"}],
           "stages": {"compound": {
               "enabled": True, "categories_per_seed": 2, "partner_categories": [],
               "roles": {r: {**role, "model": m} for r, m in ROLE_MODELS.items()}}},
           "llm": {**role, "model": ROLE_MODELS["writer"]},
           "emit": {"include_curated": False, "num_shards": 1},
           "beam": {"runner": "DirectRunner", "direct_running_mode": "in_memory"}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path)]) == 0
    return tmp_path / "out"


@pytest.mark.slow
def test_export_edit_apply_keeps_only_accepted_items(tmp_path: Path, capsys) -> None:
    with RoleServer({}) as server:
        out = _run(tmp_path, server)
    review = tmp_path / "review.jsonl"
    assert main(["review", str(out), "--stage", "compound", "--export", str(review)]) == 0
    items = [json.loads(line) for line in review.read_text().splitlines()]
    assert len(items) == 6 and all(i["decision"] is None for i in items)
    first = items[0]
    assert first["context"] == CONTEXT and first["user_turn"].startswith(CONTEXT)
    assert first["user_turn"].endswith(first["question"]) and len(first["sub_questions"]) == 2
    assert first["reference"] and first["checks"]["question_check"]["matches_type"] is True

    # the reviewer accepts two, rejects one, leaves the rest undecided
    for item, decision in zip(items, ["accept", "reject", "accept"], strict=False):
        item["decision"] = decision
    review.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert main(["review", str(out), "--stage", "compound", "--apply", str(review)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["accepted"], summary["rejected"], summary["undecided"]) == (2, 1, 3)
    kept = pq.read_table(out / "reviewed/compound/train-00000-of-00001.parquet")
    assert sorted(kept.column("id").to_pylist()) == sorted([items[0]["id"], items[2]["id"]])
    assert json.loads((out / "reviewed/compound/review.json").read_text())["accepted"] == 2

    # a stale or mistyped file is refused, naming the problem
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "nope", "decision": "accept"}) + "\n")
    assert main(["review", str(out), "--stage", "compound", "--apply", str(bad)]) == 2
    bad.write_text(json.dumps({"id": items[0]["id"], "decision": "maybe"}) + "\n")
    assert main(["review", str(out), "--stage", "compound", "--apply", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not compound items of this run" in err and "'maybe'" in err


def test_decisions_file_problems_are_named(tmp_path: Path) -> None:
    from transforms.compound.review import ReviewError, read_decisions

    path = tmp_path / "d.jsonl"
    path.write_text('{"id": "a", "decision": "accept"}\n\n{"id": "b", "decision": null}\n'
                    '{"id": "a", "decision": "accept"}\n')
    assert read_decisions(str(path)) == {"a": "accept"}  # blank lines, undecided, repeats ok
    for text, problem in (('{"id": "a", "decision": "accept"}\n{"id": "a", "decision": "reject"}',
                           ":2: id a has two different decisions"),
                          ('{"decision": "accept"}', ":1: each line needs an 'id'"),
                          ("not json", ":1: not JSON")):
        path.write_text(text + "\n")
        with pytest.raises(ReviewError, match=problem):
            read_decisions(str(path))
