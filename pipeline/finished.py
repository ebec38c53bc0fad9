"""A finished run, read once: after the pipeline, the driver reads the run directory here and
hands the one `FinishedRun` to the manifest, the error budgets, the card, the report and the
console (no step reads the run's facts from disk again)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import RunConfig
from pipeline.manifest import build_manifest
from pipeline.outputs.layout import RunLayout
from pipeline.outputs.storage import read_jsonl
from transforms.io.files import delete_file, read_json
from transforms.llm.usage import llm_usage


@dataclass(frozen=True)
class FinishedRun:
    layout: RunLayout
    info: dict[str, Any]  # what the graph wrote about its shards, rejected rows, dead letter
    manifest: dict[str, Any]
    deadletter: list[dict[str, Any]]  # every dead-letter entry


def read_finished(cfg: RunConfig, run_dir: str, out: str, timings: dict[str, Any],
                  counters: Any) -> FinishedRun:
    """Read the run directory once: the graph's run info (then deleted), the manifest built
    from it (with `timings` and the LLM usage of the runner's `counters`), the dead letter."""
    layout = RunLayout(run_dir)
    info = read_json(layout.run_info)
    delete_file(layout.run_info)
    info["staging"] = run_dir
    manifest = build_manifest(cfg, info, out)
    manifest["timings"] = timings
    manifest["llm"] = llm_usage(counters)  # tokens, cache hits, rates per step
    return FinishedRun(layout, info, manifest, read_jsonl(layout.deadletter))
