"""Build the Beam graph of a run from its config: ingest → curation → synthesis → emit.

Knows the order of stages (pipeline/stages.py), not how a stage works inside. Everything is
written under a staging directory; `pipeline.run` publishes it when the run succeeds.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from pipeline.config import RunConfig
from pipeline.stages import CURATION, SYNTHESIS, load_stage
from schemas.records import EXAMPLE_SCHEMA, PAIR_SCHEMA
from transforms.base import DEADLETTER, EXAMPLES, MAIN, PAIRS, REJECTED, REPORT, RunContext
from transforms.io.files import write_json
from transforms.io.read_sources import ReadSources
from transforms.io.write_deadletter import WriteDeadLetter
from transforms.io.write_rejected import WriteRejected
from transforms.io.write_shards import WriteShards
from transforms.select_seeds import SelectSeeds

RUN_INFO = "_run_info.json"


def _tag(kind: str) -> Any:
    return beam.Map(lambda value: (kind, value))


def _collect(items: list[tuple[str, Any]], path: str) -> None:
    info: dict[str, list] = {"shards": [], "rejected": [], "deadletter": [], "reports": []}
    for kind, value in items:
        info[kind].append(value)
    info["shards"].sort(key=lambda d: d["path"])
    info["rejected"].sort(key=lambda d: d["stage"])
    info["reports"].sort(key=lambda d: (d.get("stage", ""), str(sorted(d.items()))))
    write_json(path, info)


def _flatten(p: beam.Pipeline, pcolls: list[beam.PCollection], label: str) -> beam.PCollection:
    if not pcolls:
        return p | f"No{label}" >> beam.Create([])
    return pcolls | label >> beam.Flatten()


def build_graph(p: beam.Pipeline, cfg: RunConfig, ctx: RunContext, staging: str) -> None:
    """Add the whole run to `p`; outputs go under `staging`."""
    ingest = p | "Ingest" >> ReadSources(cfg.sources, cfg.ingest)
    examples = ingest[MAIN]
    pairs = [ingest[PAIRS]]
    rejected: list[beam.PCollection] = []
    deadletter = [ingest[DEADLETTER]]
    reports = [ingest[REPORT]]

    def collect(name: str, out: dict[str, beam.PCollection]) -> None:
        if REJECTED in out:
            rejected.append(out[REJECTED])
        if DEADLETTER in out:
            deadletter.append(out[DEADLETTER])
        if REPORT in out:
            reports.append(out[REPORT])

    for name in CURATION:
        stage_cfg = getattr(cfg.stages, name)
        if stage_cfg.enabled:
            out = examples | name.capitalize() >> load_stage(name)(stage_cfg, ctx)
            examples = out[MAIN]
            collect(name, out)

    sft = [examples] if cfg.emit.include_curated else []
    for name in SYNTHESIS:
        stage_cfg = getattr(cfg.stages, name)
        if stage_cfg.enabled:
            seeds = examples
            if getattr(stage_cfg, "seeds", None) is not None:
                seeds = examples | f"{name.capitalize()}Seeds" >> SelectSeeds(
                    stage_cfg.seeds, cfg.run.seed)
            out = seeds | name.capitalize() >> load_stage(name)(stage_cfg, ctx)
            if EXAMPLES in out:
                sft.append(out[EXAMPLES])
            if PAIRS in out:
                pairs.append(out[PAIRS])
            collect(name, out)

    infos = [
        _flatten(p, sft, "AllSft") | "EmitSft" >> WriteShards(
            "sft", f"{staging}/sft", cfg.emit, EXAMPLE_SCHEMA, f"{staging}/jsonl/sft") | "TagSft" >> _tag("shards"),
        _flatten(p, pairs, "AllPairs") | "EmitPairs" >> WriteShards(
            "preference", f"{staging}/preference", cfg.emit, PAIR_SCHEMA,
            f"{staging}/jsonl/preference")
        | "TagPairs" >> _tag("shards"),
        _flatten(p, rejected, "AllRejected") | "EmitRejected" >> WriteRejected(
            f"{staging}/rejected") | "TagRejected" >> _tag("rejected"),
        _flatten(p, deadletter, "AllDeadletter") | "EmitDeadletter" >> WriteDeadLetter(
            f"{staging}/deadletter") | "TagDeadletter" >> _tag("deadletter"),
        _flatten(p, reports, "AllReports") | "TagReports" >> _tag("reports"),
    ]
    if not cfg.emit.include_curated:
        infos.append(examples | "EmitCurated" >> WriteShards(
            "curated", f"{staging}/curated", cfg.emit, EXAMPLE_SCHEMA, f"{staging}/jsonl/curated")
            | "TagCurated" >> _tag("shards"))
    path = f"{staging}/{RUN_INFO}"
    (infos | "AllInfo" >> beam.Flatten() | "InfoList" >> beam.combiners.ToList()
     | "WriteInfo" >> beam.Map(lambda items: _collect(items, path)))
