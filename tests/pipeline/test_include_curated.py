"""emit.include_curated=false moves curated records to `curated/`; none are lost."""

from __future__ import annotations

import json
from pathlib import Path

import datasets

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_curated_records_get_their_own_dataset(tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = tmp_path / "run.yaml"
    config.write_text("ingest: {max_record_bytes: 65536}\n")
    inputs = [str(ROOT / "data" / name) for name in ("alpaca.jsonl", "preference.jsonl")]
    assert main(["run", str(config), "--out", str(out), *sum((["--input", i] for i in inputs), []),
                 "--set", "emit.include_curated=false"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    curated = datasets.load_dataset("parquet", data_dir=str(out / "curated"), split="train")
    sft_rows = sum(s["rows"] for s in manifest["shards"] if s["dataset"] == "sft")
    assert sft_rows == 0  # no synthesis stage ran
    assert len(curated) == manifest["counts"]["outputs"]["curated"]["ingest"] > 0
    c = manifest["conservation"]
    assert c["holds"] and c["records_out"] == len(curated) + manifest["counts"]["outputs"][
        "preference"]["ingest"]
