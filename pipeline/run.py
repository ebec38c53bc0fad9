"""Run a config: build the graph, run it, check the error budgets, publish the outputs.

Each run writes everything into its own `<out>/.runs/<run-id>/` and is published by switching
one pointer (pipeline/publish.py) only when it is within every error budget
(pipeline/budget.py) and the conservation law holds; otherwise the previous outputs stay as
they were and the run fails with the stage, its top errors and the path of its dead letter.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam

from pipeline.budget import budget_problems, read_deadletter
from pipeline.card import render_card
from pipeline.config import RunConfig
from pipeline.graph import RUN_INFO, build_graph
from pipeline.manifest import build_manifest
from pipeline.options import pipeline_options
from pipeline.publish import PublishError, clean_stale, new_run_dir, publish, run_lock
from pipeline.report import write_report
from pipeline.stages import CURATION, SYNTHESIS
from pipeline.timings import stage_seconds, step_msecs
from transforms.base import RunContext
from transforms.llm.usage import llm_usage, query_counters
from transforms.redact import Redactor, secret_env_names


class RunAborted(Exception):
    """The run finished but its outputs must not be published (or it could not start)."""


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict[str, Any]
    run_dir: Path | None = None


def make_context(cfg: RunConfig) -> RunContext:
    out = Path(cfg.run.output_dir).resolve()  # absolute: workers may run elsewhere
    return RunContext(seed=cfg.run.seed, output_dir=str(out), work_dir=str(out / "_work"),
                      llm=cfg.llm, embeddings=cfg.embeddings, roles=cfg.roles(),
                      secret_envs=tuple(secret_env_names(cfg.model_dump(mode="json"))))


def run_config(cfg: RunConfig, extra_args: list[str] | None = None) -> RunResult:
    out = Path(cfg.run.output_dir).resolve()
    try:
        with run_lock(out):
            clean_stale(out)
            return _run_locked(cfg, out, new_run_dir(out), extra_args)
    except PublishError as e:
        raise RunAborted(str(e)) from e


def _run_locked(cfg: RunConfig, out: Path, run_dir: Path, extra_args: list[str] | None
                ) -> RunResult:
    ctx = make_context(cfg)
    p = beam.Pipeline(options=pipeline_options(cfg.beam, extra_args))
    build_graph(p, cfg, ctx, str(run_dir))
    started = time.monotonic()
    result = p.run()
    result.wait_until_finish()
    timings = {"total_s": round(time.monotonic() - started, 3),
               "stages": stage_seconds(step_msecs(result), [*CURATION, *SYNTHESIS])}
    info = json.loads((run_dir / RUN_INFO).read_text())
    (run_dir / RUN_INFO).unlink()
    info["staging"] = str(run_dir)
    manifest = build_manifest(cfg, info, str(out))
    manifest["timings"] = timings
    manifest["llm"] = llm_usage(query_counters(result))  # tokens, cache hits, rates per step
    redact = Redactor(ctx.secret_envs)
    (run_dir / "manifest.json").write_text(  # kept with a failed run too, for inspection
        redact(json.dumps(manifest, indent=2, sort_keys=True)) + "\n")
    dead_path = run_dir / "deadletter" / "deadletter.jsonl"
    problems = budget_problems(cfg, manifest, read_deadletter(dead_path))
    if problems:
        more = "".join(f"\n  also: {p.message}" for p in problems[1:])
        raise RunAborted(
            f"aborted at stage {problems[0].stage}: {problems[0].message}{more}"
            + f"\nnothing was published (the previous outputs in {out} are untouched); this "
            f"run's manifest and outputs stay in {run_dir} until the next run; this run's dead "
            f"letter: {dead_path}")
    (run_dir / "README.md").write_text(render_card(manifest, cfg.emit.split))
    write_report(str(run_dir), redact)
    publish(out, run_dir)
    return RunResult(out, manifest, run_dir)
