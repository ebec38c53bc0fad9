"""The manifest separates input records (conservation law) from synthesis-stage outcomes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import load_config
from pipeline.manifest import build_manifest
from schemas.records import example_row, examples_to_batch


def _shard(path: Path, stages: list[str | None]) -> None:
    rows = []
    for i, stage in enumerate(stages):
        msgs = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]
        row = example_row(f"{i:032x}", msgs, {"dataset": "d", "file": "f", "row": i})
        row["meta"]["lineage"]["stage"] = stage
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_batches([examples_to_batch(rows)]), path)


def test_synthesis_outcomes_are_reported_beside_the_conservation_law(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("{}\n")
    shard = tmp_path / "sft" / "train-00000-of-00001.parquet"
    _shard(shard, [None, None, None, "compound", "compound"])
    info = {
        "staging": str(tmp_path),
        "shards": [{"dataset": "sft", "path": str(shard), "rows": 5, "sha256": "x",
                    "format": "parquet"}],
        "rejected": [
            {"stage": "quality", "path": str(tmp_path / "rejected/quality.parquet"), "rows": 1,
             "sha256": "y", "reasons": {"refusal": 1}},
            {"stage": "compound", "path": str(tmp_path / "rejected/compound.parquet"),
             "rows": 4, "sha256": "z", "reasons": {"rule_check": 3, "llm_check": 1}},
        ],
        "deadletter": [{"stages": {"ingest": 1, "compound": 2}}],
        "reports": [{"stage": "ingest", "file": str(src), "layout": "alpaca", "format": "jsonl",
                     "rows_read": 5, "examples": 4, "pairs": 0, "deadletter": 1}],
    }
    manifest = build_manifest(load_config(None, inputs=[str(src)]), info, str(tmp_path))
    assert manifest["conservation"] == {"records_in": 5, "records_out": 3, "rejected": 1,
                                        "deadletter": 1, "holds": True}
    assert manifest["synthesis"] == {"compound": {"rejected": 4, "deadletter": 2,
                                                  "out_sft": 2, "out_preference": 0}}
