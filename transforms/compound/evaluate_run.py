"""`refinery eval compound PATH...`: the Beam shell of the Compound-QA evaluation (evaluate.py).

Reads released Compound-QA files (`Understanding_Cause_and_Effect.jsonl`, ...) or a run's output
(a directory: its emitted SFT rows, JSONL or Parquet; rows without `meta.com_question` are
skipped, so only our synthesized compound items count), asks the candidate (role
`candidate`) for an answer to each, then the judge (role `judge`), two kit steps (RunStep),
so models, backends, caching, the test seam and the failure policy are the ones every stage
uses. Writes the report as JSON to `out` and returns it. Failures (`<step>_deadletter` calls,
`judge_unparseable` verdicts) are counted in the report by reason, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from transforms.base import MAIN, RunContext
from transforms.compound import evaluate as ev
from transforms.compound.categories import CATEGORIES, slug
from transforms.compound.compound_qa import read_records, record
from transforms.io.files import is_dir, list_files, read_bytes, read_json, read_text, write_json
from transforms.kit import EVENTS, RunStep, StepSpec, merge_combine

_BY_SLUG = {slug(c): c for c in CATEGORIES}


def input_files(paths: Sequence[str]) -> list[str]:
    """Files of the given paths: a file as is; a run's output directory → its synthesized rows
    (`jsonl/sft/*.jsonl` when emitted, else `sft/*.parquet`); another directory → its
    `*.jsonl`."""
    files: list[str] = []
    for path in paths:
        if not is_dir(path):
            files.append(path)
            continue
        base = path.rstrip("/")
        files += (list_files(f"{base}/jsonl/sft/*.jsonl") or list_files(f"{base}/sft/*.parquet")
                  or list_files(f"{base}/*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no JSONL or Parquet files under {list(paths)}")
    return files


def _read(path: str) -> list[dict[str, Any]]:
    if path.endswith(".parquet"):
        table = pq.read_table(pa.BufferReader(read_bytes(path)))
        return [r for r in (record(row, None, None) for row in table.to_pylist()) if r]
    return list(read_records(path, read_text(path)))


def load_records(paths: Sequence[str], limit: int | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in input_files(paths):
        recs = _read(path)
        out += recs[:limit] if limit else recs
    return out


def _dead_event(entry: dict[str, Any], step: str) -> dict[str, Any]:
    """A dead-lettered call → a failure event; its cell is read back from the request key."""
    key = str(entry.get("record_id") or "").split(":", 2)[-1]
    dim, _, rest = key.partition("/")
    cat = _BY_SLUG.get(rest.split("/", 1)[0])
    return ev.failure({"dimension": dim or None, "category": cat}, f"{step}_deadletter")


def _event(step: str, kind: str, x: Any) -> dict[str, Any]:
    """The failure event of a rejected record (its reason) or a dead-lettered call."""
    return ev.failure(x[0], x[1]) if kind == "rejected" else _dead_event(x, step)


def _record(rec: dict[str, Any]) -> dict[str, Any]:
    return rec


def eval_steps(cfg: ev.CompoundEvalConfig) -> list[StepSpec]:
    """The two kit steps: the candidate answers, the judge grades (its report event)."""
    return [StepSpec(name="candidate", prompt=None, build=partial(ev.candidate_request, cfg=cfg),
                     parse=ev.answered, row_of=_record, role="candidate",
                     event=partial(_event, "candidate")),
            StepSpec(name="judge", prompt=ev.judge_prompt(),
                     build=partial(ev.judge_request, cfg=cfg), parse=ev.outcome,
                     row_of=_record, role="judge", event=partial(_event, "judge"))]


def build_eval(p: beam.Pipeline, records: list[dict[str, Any]], cfg: ev.CompoundEvalConfig,
               ctx: RunContext) -> beam.PCollection:
    """records → candidate → judge → one report dict."""
    candidate, judge = eval_steps(cfg)
    cand = (p | "Records" >> beam.Create(records)
            | "Candidate" >> RunStep(candidate, ctx, stage=ev.STAGE))
    judged = cand[MAIN] | "Judge" >> RunStep(judge, ctx, stage=ev.STAGE)
    events = (judged[MAIN], cand[EVENTS], judged[EVENTS]) | "Events" >> beam.Flatten()
    k = cfg.examples
    return events | "Report" >> beam.CombineGlobally(merge_combine(
        ev.empty, partial(ev.add, examples=k), partial(ev.merge, examples=k), ev.finish))


def run_eval(paths: Sequence[str], cfg: ev.CompoundEvalConfig, out: str | None = None,
             backend_factory: Any = None) -> dict[str, Any]:
    """Evaluate the records of `paths`; the report (also written to `out` when given)."""
    records = load_records(paths, cfg.limit)
    ctx = RunContext(seed=cfg.seed, output_dir=cfg.output_dir,
                     work_dir=f"{cfg.output_dir.rstrip('/')}/_work", llm=cfg.candidate,
                     roles={ev.STAGE: {"candidate": cfg.candidate, "judge": cfg.judge}},
                     backend_factory=backend_factory)
    path = out or f"{ctx.work_dir}/compound_eval_report.json"
    head = {"records": len(records), "inputs": list(paths)}
    with beam.Pipeline(runner="DirectRunner") as p:
        rep = build_eval(p, records, cfg, ctx)
        _ = rep | "Write" >> beam.Map(lambda r: write_json(path, {**head, **r}))
    return read_json(path)


def summary(report: dict[str, Any]) -> str:
    """A plain table of the report: one line per type, then the total."""
    lines = [f"{'type':<27} {'n':>4} {'win':>6} {'tie':>6} {'loss':>6} {'omission':>9}"]
    rows = [*report["per_type"].items(), ("all", report["overall"])]
    for name, c in rows:
        rate = [f"{c[k]:.3f}" if c[k] is not None else "-" for k in
                ("win_rate", "tie_rate", "loss_rate", "omission_rate")]
        lines.append(f"{name:<27} {c['n']:>4} {rate[0]:>6} {rate[1]:>6} {rate[2]:>6} "
                     f"{rate[3]:>9}")
    if report["failed"]:
        lines.append(f"failed: {report['failed']}")
    return "\n".join(lines)
