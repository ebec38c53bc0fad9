"""`refinery inspect OUT --id ID`: a synthesized pair traced to the source row of its parent,
with the stage, method and prompt version that made it; a rejected row with where and why."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lineage") / "run"
    args = ["run", str(ROOT / "configs/demo.yaml"), "--out", str(out),
            "--input", str(ROOT / "data/gsm8k_style.parquet"), "--set", "emit.jsonl=false",
            "--set", "stages.dedup.semantic=false", "--set", "stages.tag_instruct.enabled=false",
            "--set", "stages.compound.enabled=false"]
    assert main(args) == 0
    return out


def test_inspect_traces_a_synthesized_pair_to_its_source(run: Path, capsys) -> None:
    # the demo's RISE pairs are rule-edited steps: their dataset is preference_steps
    pairs = pq.read_table(run / "preference_steps", columns=["id", "meta"]).to_pylist()
    pair = next(p for p in pairs if p["meta"]["lineage"]["stage"] == "rise")
    parent = pair["meta"]["lineage"]["parent_ids"][0]
    sft = {r["id"]: r["source"] for r in pq.read_table(
        run / "sft", columns=["id", "source"]).to_pylist()}
    capsys.readouterr()
    assert main(["inspect", str(run), "--id", pair["id"][:12]]) == 0
    text = capsys.readouterr().out
    lineage = pair["meta"]["lineage"]
    assert text.startswith(f"id: {pair['id']}  [preference_steps]")
    assert (f"made by: rise method={lineage['method']} model={lineage['model']} "
            f"prompt={lineage['template_version']}") in text
    assert f"    id: {parent}  [sft]" in text  # the parent, indented under "parent:"
    src = sft[parent]
    assert f"source: gsm8k_style {src['file']} row {src['row']}" in text
    assert "stages: ingest → quality → dedup → decontam" in text
    assert "quality signals: quality_score=" in text


def test_inspect_says_where_and_why_a_row_was_dropped(run: Path, capsys) -> None:
    rejected = pq.read_table(run / "rejected" / "decontam.parquet").to_pylist()[0]
    capsys.readouterr()
    assert main(["inspect", str(run), "--id", rejected["id"]]) == 0
    text = capsys.readouterr().out
    assert f"id: {rejected['id']}  [rejected]" in text
    assert "stages: ingest → quality → dedup → decontam\n" in text
    assert f"DROPPED at decontam: {rejected['reject_reason']} " in text and "mini_gsm8k" in text
    assert main(["inspect", str(run), "--id", "ffffffffffff"]) == 2
    assert "no row with id" in capsys.readouterr().err


def test_inspect_tells_a_dropped_copy_from_its_keeper(tmp_path: Path, capsys) -> None:
    """Two identical input rows: two ids, one content hash; the copy dedup drops names its
    keeper (another id) as duplicate_of, and inspect shows each of them on its own."""
    row = {"instruction": "Explain why the sky looks blue on a clear afternoon.",
           "output": "Air molecules scatter short blue wavelengths of sunlight far more than red."}
    other = {"instruction": "Name a prime number between ten and twenty.", "output": "Thirteen."}
    src = tmp_path / "copies.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in (row, other, row)))
    out = tmp_path / "run"
    off = [a for s in ("quality", "decontam", "rise", "tag_instruct", "compound")
           for a in ("--set", f"stages.{s}.enabled=false")]
    assert main(["run", str(ROOT / "configs/demo.yaml"), "--out", str(out), "--input", str(src),
                 "--set", "emit.jsonl=false", "--set", "stages.dedup.semantic=false", *off]) == 0
    dropped = pq.read_table(out / "rejected" / "dedup.parquet").to_pylist()
    assert [d["reject_reason"] for d in dropped] == ["exact_duplicate"]
    d = dropped[0]
    kept = {r["id"]: r for r in pq.read_table(out / "sft").to_pylist()}
    assert d["duplicate_of"] in kept and d["duplicate_of"] != d["id"]
    assert kept[d["duplicate_of"]]["content_hash"] == d["content_hash"]
    assert {kept[d["duplicate_of"]]["source"]["row"], d["source"]["row"]} == {0, 2}
    capsys.readouterr()
    assert main(["inspect", str(out), "--id", d["id"]]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"id: {d['id']}  [rejected]")
    assert f"content hash: {d['content_hash']}" in text
    assert "DROPPED at dedup: exact_duplicate" in text
    assert f"duplicate of: {d['duplicate_of']}" in text
    assert main(["inspect", str(out), "--id", d["duplicate_of"]]) == 0
    assert capsys.readouterr().out.startswith(f"id: {d['duplicate_of']}  [sft]")
