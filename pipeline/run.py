"""Run a config: build the graph, run it, check the error budget, publish the outputs.

Outputs are written under `<out>/.staging` and moved into `<out>` only when the run succeeds
and the dead-letter rate is within `ingest.max_error_rate`; otherwise nothing is published
except the dead letter (kept for inspection) and the run fails with a clear message.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam

from pipeline.card import render_card
from pipeline.config import RunConfig
from pipeline.graph import RUN_INFO, build_graph
from pipeline.manifest import build_manifest
from pipeline.options import pipeline_options
from pipeline.report import render_report
from transforms.base import RunContext
from transforms.llm.usage import llm_usage, query_counters

PUBLISHED = ("sft", "curated", "preference", "jsonl", "rejected", "deadletter", "README.md",
             "manifest.json", "report.html")


class RunAborted(Exception):
    """The run finished but its outputs must not be published."""


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict[str, Any]


def make_context(cfg: RunConfig) -> RunContext:
    out = Path(cfg.run.output_dir)
    return RunContext(seed=cfg.run.seed, output_dir=str(out), work_dir=str(out / "_work"),
                      llm=cfg.llm, embeddings=cfg.embeddings, roles=cfg.roles())


def _publish(staging: Path, out: Path, names: tuple[str, ...] = PUBLISHED) -> None:
    for name in names:
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        if (staging / name).exists():
            shutil.move(str(staging / name), str(target))


def run_config(cfg: RunConfig, extra_args: list[str] | None = None) -> RunResult:
    out = Path(cfg.run.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    p = beam.Pipeline(options=pipeline_options(cfg.beam, extra_args))
    build_graph(p, cfg, make_context(cfg), str(staging))
    result = p.run()
    result.wait_until_finish()
    info = json.loads((staging / RUN_INFO).read_text())
    info["staging"] = str(staging)
    manifest = build_manifest(cfg, info, str(out))
    manifest["llm"] = llm_usage(query_counters(result))  # tokens, cache hits, rates per step
    c = manifest["conservation"]
    ingest_dead = manifest["counts"]["deadletter"].get("ingest", 0)
    rate = ingest_dead / c["records_in"] if c["records_in"] else 0.0
    if rate > cfg.ingest.max_error_rate:
        _publish(staging, out, ("deadletter",))
        shutil.rmtree(staging, ignore_errors=True)
        raise RunAborted(
            f"aborted: {ingest_dead} of {c['records_in']} input records ({rate:.1%}) could not "
            f"be read, above ingest.max_error_rate={cfg.ingest.max_error_rate}; nothing was "
            f"published. See {out / 'deadletter' / 'deadletter.jsonl'} for errors and raw rows.")
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (staging / "README.md").write_text(render_card(manifest, cfg.emit.split))
    (staging / "report.html").write_text(render_report(manifest))
    _publish(staging, out)
    shutil.rmtree(staging, ignore_errors=True)
    if not c["holds"]:
        raise RunAborted(f"conservation law violated: {json.dumps(c)}; see {out / 'manifest.json'}")
    return RunResult(out, manifest)
