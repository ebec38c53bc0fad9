"""emit.include_curated=false moves curated records to `curated/`; none are lost."""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_curated_records_get_their_own_dataset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(ROOT / "configs/demo.yaml"), "--out", str(out),
                 "--set", "emit.include_curated=false", "--set", "emit.jsonl=false"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    curated = datasets.load_dataset("parquet", data_dir=str(out / "curated"), split="train")
    sft_rows = sum(s["rows"] for s in manifest["shards"] if s["dataset"] == "sft")
    assert sft_rows == 0  # nothing synthesized in the demo's ingest-only run
    assert len(curated) == manifest["counts"]["outputs"]["curated"]["ingest"] > 0
    c = manifest["conservation"]
    assert c["holds"] and c["records_out"] == len(curated) + manifest["counts"]["outputs"][
        "preference"]["ingest"]
