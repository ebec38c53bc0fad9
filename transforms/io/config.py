"""Config of reading and writing (the top-level `sources`, `ingest` and `emit` blocks).
io owns these models; pipeline/config.py mounts them in the run config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from transforms.config_base import StrictModel
from transforms.io.presets import PRESETS

FORMATS = ("auto", "jsonl", "json", "parquet", "csv", "hf_disk", "hf")
LAYOUTS = ("auto", "alpaca", "sharegpt", "openai", "dolly", "qa", "preference", "mbpp",
           "mt_bench", "prompt", "text", "rise_prompt")
SPLIT_NAME = r"^\w+(\.\w+)*$"  # the split names `datasets` accepts; no path separators


class SourceConfig(StrictModel):
    """One input: a file, glob or dataset directory, and how to read it."""

    path: str = Field(..., description="file, glob, or directory (hf_disk) to read")
    name: str | None = Field(None, description="dataset name in `source.dataset`; default: file stem")
    format: Literal[FORMATS] = "auto"  # type: ignore[valid-type]
    layout: Literal[LAYOUTS] = "auto"  # type: ignore[valid-type]
    field_map: dict[str, str] = Field(
        default_factory=dict,
        description="canonical field → source field, e.g. {instruction: prompt, output: reply}; "
        "overrides detection (set `layout` too)",
    )
    preset: Literal[tuple(PRESETS)] | None = Field(  # type: ignore[valid-type]
        None, description="layout and field_map of a known dataset (`refinery layouts` lists "
        "them); an explicit layout or field_map wins")
    split: str = Field("train", description="split for `hf` sources")
    limit: int | None = Field(None, ge=1, description="read only the first N rows of each file")
    license: str | None = Field(None, description="licence of this input (SPDX id, e.g. "
                                "cc-by-sa-3.0); listed in release cards")

    @model_validator(mode="after")
    def _apply_preset(self) -> SourceConfig:
        if self.preset is not None:
            preset = PRESETS[self.preset]
            if self.layout == "auto":
                self.layout = preset.layout
            if not self.field_map:
                self.field_map = dict(preset.field_map)
        return self


class IngestConfig(StrictModel):
    """Reading: batch size, split size, limits and the error budget."""

    batch_rows: int = Field(2000, ge=1, description="rows per Arrow batch between stages")
    split_bytes: int = Field(16 << 20, ge=1024, description="byte-range split size for JSONL")
    max_record_bytes: int = Field(1 << 20, ge=16, description="larger records go to the dead letter")
    max_error_rate: float = Field(
        0.2, ge=0, le=1, description="abort (publish nothing) when dead-lettered/read exceeds it, "
        "over all input and in any one file"
    )
    on_unreadable_file: Literal["fail", "skip"] = Field(
        "fail", description="a file that cannot be read as a whole (corrupt, wrong encoding, "
        "empty) fails the run, or is skipped and listed in the manifest's unreadable_files")


class EmitConfig(StrictModel):
    """Writing: split name, shard count, JSONL copies, compression."""

    split: str = Field("train", pattern=SPLIT_NAME,
                       description="split name in shard file names (letters, digits, _ and .)")
    num_shards: int | None = Field(None, ge=1, description="fixed shard count; default by rows")
    rows_per_shard: int = Field(100_000, ge=1, description="used when num_shards is not set")
    jsonl: bool = Field(False, description="also write <split>-*.jsonl next to the Parquet shards")
    include_curated: bool = Field(
        True, description="true: curated input examples go into `sft` with the synthesized ones; "
        "false: they get their own dataset `curated/`, so `sft` holds only synthesized examples")
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
