"""Run a config: build the graph, run it, check the error budgets, publish the outputs.

Each run writes everything into its own `<out>/.runs/<run-id>/` and is published
(pipeline/outputs/publish.py: one pointer switch on local disk, an ordered copy with a commit marker on
object stores) only when it is within every error budget
(pipeline/budget.py) and the conservation law holds; otherwise the previous outputs stay as
they were and the run fails with the stage, its top errors and the path of its dead letter.
Every file is read and written through Beam's FileSystems, so `<out>` may be local, gs:// or
s3://; the driver gets the run's pipeline options (endpoints, credentials) for its own reads.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.budget import budget_problems
from pipeline.config import RunConfig
from pipeline.finished import FinishedRun, read_finished
from pipeline.graph import build_graph
from pipeline.outputs.layout import WORK
from pipeline.outputs.publish import (
    OutputRefused,
    PublishError,
    claim_out,
    clean_stale,
    new_run_dir,
    out_root,
    publish,
    run_lock,
)
from pipeline.report.card import render_card
from pipeline.report.page import write_report
from pipeline.runner.options import pipeline_options
from pipeline.runner.timings import stage_seconds, step_msecs
from pipeline.stages import CURATION, STAGES, SYNTHESIS
from transforms import progress
from transforms.base import RunContext
from transforms.io.files import join, write_text
from transforms.llm.deadline import run_deadline
from transforms.llm.usage import query_counters
from transforms.redact import Redactor, secret_env_names

log = logging.getLogger(__name__)


class RunAborted(Exception):
    """The run finished but its outputs must not be published (or it could not start);
    `deadletter` holds the entries of the run's dead letter when it has one."""

    def __init__(self, message: str, deadletter: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.deadletter = deadletter


class RunRefused(RunAborted):
    """A usage error found before the run started (exit 2): e.g. `--out` is a file or holds
    files Refinery did not write."""


@dataclass
class RunResult:
    out_dir: str
    manifest: dict[str, Any]
    run_dir: str | None = None
    deadletter: list[dict[str, Any]] = field(default_factory=list)  # the run's entries


_NO_SPACE = re.compile(r"No space left on device: '([^']+)'|Disk quota exceeded: '([^']+)'")


def disk_full(e: BaseException) -> str | None:
    """'writing PATH (strerror)' when `e` or any exception it wraps is a full disk or quota
    (runners re-raise worker errors as new exceptions: the text is looked at too), else None."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"writing {e.filename or '(unknown path)'} ({e.strerror})"
        found = _NO_SPACE.search(str(e))
        if found:
            return f"writing {found.group(1) or found.group(2)} (No space left on device)"
        e = e.__cause__ or e.__context__
    return None


def make_context(cfg: RunConfig) -> RunContext:
    out = out_root(cfg.run.output_dir)  # absolute: workers may run elsewhere
    return RunContext(seed=cfg.run.seed, output_dir=out, work_dir=join(out, WORK),
                      llm=cfg.llm, embeddings=cfg.embeddings, roles=cfg.roles(),
                      secret_envs=tuple(secret_env_names(cfg.model_dump(mode="json"))))


def _say(line: str) -> None:
    """A progress line of the driver (same form and switch as transforms.progress)."""
    if progress.interval_s() > 0:
        print(f"[refinery] {line}", file=sys.stderr, flush=True)


def _stage_names(cfg: RunConfig) -> list[str]:
    """The enabled stages' names, in run order."""
    return [s for s in (*CURATION, *SYNTHESIS) if getattr(cfg.stages, s).enabled]


def run_config(cfg: RunConfig, extra_args: list[str] | None = None) -> RunResult:
    options = pipeline_options(cfg.beam, extra_args, shuffles_rows=bool(_stage_names(cfg)))
    FileSystems.set_options(options)  # the driver's own reads and writes (object stores)
    out = out_root(cfg.run.output_dir)
    try:
        with run_lock(out):
            for moved in claim_out(out, cfg.run.take_over):
                log.warning("take-over: moved %s aside (it was not written by Refinery)", moved)
            clean_stale(out)
            run_dir = new_run_dir(out)
            with run_deadline(cfg.llm.max_run_s):
                try:
                    return _run_locked(cfg, out, run_dir, options)
                except Exception as e:
                    full = disk_full(e)
                    if full is None:
                        raise
                    raise RunAborted(
                        f"the disk is full: {full}\nnothing was published (the previous "
                        f"outputs in {out} are untouched); free space and rerun (this run's "
                        f"partial outputs in {run_dir} are removed by the next run)") from e
    except OutputRefused as e:
        raise RunRefused(str(e)) from e
    except PublishError as e:
        raise RunAborted(str(e)) from e


def _run_locked(cfg: RunConfig, out: str, run_dir: str, options: PipelineOptions
                ) -> RunResult:
    ctx = make_context(cfg)
    p = beam.Pipeline(options=options)
    build_graph(p, cfg, ctx, run_dir)
    stages = _stage_names(cfg)
    _say(f"run: {len(cfg.sources)} source(s) → {', '.join(stages) or 'no stage'} → {run_dir}")
    started = time.monotonic()
    with progress.running():
        result = p.run()
        result.wait_until_finish()
    _say(f"run: pipeline done in {time.monotonic() - started:.1f} s")
    with progress.running("writing the manifest, dataset card and report"):
        return _finish(cfg, out, run_dir, ctx, result, started)


def _finish(cfg: RunConfig, out: str, run_dir: str, ctx: RunContext, result: Any,
            started: float) -> RunResult:
    """After the pipeline: the finished run read once, then manifest, error budgets, card,
    report, publish."""
    timings = {"total_s": round(time.monotonic() - started, 3),
               "stages": stage_seconds(step_msecs(result), {s.label: s.name for s in STAGES})}
    run: FinishedRun = read_finished(cfg, run_dir, out, timings, query_counters(result))
    redact = Redactor(ctx.secret_envs)
    stored = redact(json.dumps(run.manifest, indent=2, sort_keys=True))
    write_text(run.layout.manifest, stored + "\n")  # kept with a failed run too, for inspection
    # the card and report read the manifest as stored, as `refinery report` does later
    as_stored = json.loads(stored)
    problems = budget_problems(cfg, run.manifest, run.deadletter)
    if problems:
        more = "".join(f"\n  also: {p.message}" for p in problems[1:])
        raise RunAborted(
            f"aborted at stage {problems[0].stage}: {problems[0].message}{more}"
            + f"\nnothing was published (the previous outputs in {out} are untouched); this "
            f"run's manifest and outputs stay in {run_dir} until the next run; this run's dead "
            f"letter: {run.layout.deadletter}", deadletter=run.deadletter)
    write_text(run.layout.card, redact(render_card(as_stored, cfg.emit.split)))
    write_report(run_dir, redact, manifest=as_stored, deadletter=run.deadletter)
    publish(out, run_dir)
    return RunResult(out, run.manifest, run_dir, run.deadletter)
