"""Shared helpers of the reliability tests: write inputs, run the CLI in-process, count what
a run left in its files (never from the manifest alone)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline.cli import main as cli_main

OFF = ["--set", "stages.quality.enabled=false", "--set", "stages.dedup.enabled=false",
       "--set", "stages.decontam.enabled=false"]


def alpaca_lines(n: int, start: int = 0) -> list[str]:
    return [json.dumps({"instruction": f"Question number {i}?", "output": f"Answer {i}."})
            for i in range(start, start + n)]


def write_jsonl(path: Path, n: int, start: int = 0) -> Path:
    path.write_text("\n".join(alpaca_lines(n, start)) + "\n")
    return path


def run_cli(capsys: Any, inputs: list[Path], out: Path, *extra: str) -> tuple[int, str]:
    """`refinery ingest INPUTS --out OUT` with every stage off; (exit code, stderr)."""
    argv = ["ingest", *map(str, inputs), "--out", str(out), *OFF, *extra]
    code = cli_main(argv)
    return code, capsys.readouterr().err


def read_inputs(inputs: list[Path], **ingest: Any) -> dict[str, Any]:
    """Reader level, no pipeline: every input planned and converted as `refinery ingest` reads
    it. {"rows": records read, "dead": row dead-letter entries, "file_errors": {path: error}}."""
    from transforms.io.config import IngestConfig, SourceConfig
    from transforms.io.plan import plan_sources
    from transforms.io.read_sources import FILE_STAGE, convert_split

    cfg = IngestConfig(**ingest)
    sources = [SourceConfig(path=str(p)) for p in inputs]
    got: dict[str, Any] = {"rows": 0, "dead": [], "file_errors": {}}
    for split in plan_sources(sources, cfg):
        for kind, value in convert_split(split, sources[split.source_index], cfg):
            if kind in ("example", "pair"):
                got["rows"] += value.num_rows
            elif kind == "deadletter" and value["stage"] == FILE_STAGE:
                got["file_errors"][value["file"]] = value["error"]
            elif kind == "deadletter":
                got["dead"].append(value)
    return got


def run_dir_of(out: Path) -> Path | None:
    """The directory a run wrote into: the published run, else the newest under .runs/, else
    `out` itself (outputs laid out before runs were published by pointer)."""
    if (out / "current").is_symlink():
        return (out / "current").resolve()
    runs = sorted((p for p in (out / ".runs").glob("*") if p.is_dir()),
                  key=lambda p: p.stat().st_mtime) if (out / ".runs").is_dir() else []
    return runs[-1] if runs else out


def counts_from_files(run_dir: Path) -> dict[str, int]:
    """Rows out / rejected / dead-lettered (records, not whole files) counted from the files."""
    out = sum(pq.ParquetFile(p).metadata.num_rows
              for d in ("sft", "curated", "preference") for p in (run_dir / d).glob("*.parquet"))
    rejected = sum(pq.ParquetFile(p).metadata.num_rows for p in (run_dir / "rejected").glob("*.parquet"))
    dead_file = run_dir / "deadletter" / "deadletter.jsonl"
    entries = [json.loads(x) for x in dead_file.read_text().splitlines()] if dead_file.exists() else []
    return {"out": out, "rejected": rejected,
            "dead": sum(1 for e in entries if e["stage"] != "ingest.file"),
            "file_errors": sum(1 for e in entries if e["stage"] == "ingest.file")}


def manifest_of(out: Path) -> dict[str, Any]:
    return json.loads((out / "manifest.json").read_text())
