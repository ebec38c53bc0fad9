"""Build the Beam graph of a run from its config: ingest → curation → synthesis → emit.

Knows the order of stages (pipeline/stages.py), not how a stage works inside. Everything is
written under a staging directory, at the paths of pipeline/outputs/layout.py; `pipeline.run`
publishes it when the run succeeds. Datasets hold one kind of row each: a stage's step pairs
(meta.pair_kind = step) leave its PAIRS for `preference_steps` only.
"""

from __future__ import annotations

import logging

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import RunConfig
from pipeline.outputs import layout as L
from pipeline.outputs.layout import RunLayout
from pipeline.stages import STAGES, StageSpec
from schemas.records import EXAMPLE_SCHEMA, PAIR_SCHEMA, meta_field
from schemas.step_pairs import STEP_PAIR_SCHEMA
from schemas.tag_policy import SHAREGPT_PAIR_SCHEMA, to_sharegpt
from transforms.base import (
    DEADLETTER,
    EXAMPLES,
    MAIN,
    PAIRS,
    REJECTED,
    REPORT,
    STEP_PAIRS,
    TAG_PAIRS,
    RunContext,
)
from transforms.io.files import write_json
from transforms.io.read_sources import ReadSources
from transforms.io.write_deadletter import WriteDeadLetter
from transforms.io.write_rejected import WriteRejected
from transforms.io.write_shards import WriteShards
from transforms.select_seeds import SelectSeeds

log = logging.getLogger(__name__)


def _collect(path: str, shards: list, rejected: list, deadletter: list, reports: list) -> None:
    info = {"shards": sorted(shards, key=lambda d: d["path"]),
            "rejected": sorted(rejected, key=lambda d: d["stage"]),
            "deadletter": deadletter,
            "reports": sorted(reports, key=lambda d: (d.get("stage", ""), str(sorted(d.items()))))}
    write_json(path, info)


def _flatten(p: beam.Pipeline, pcolls: list[beam.PCollection], label: str) -> beam.PCollection:
    if not pcolls:
        return p | f"No{label}" >> beam.Create([])
    return pcolls | label >> beam.Flatten()


def full_pairs(batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    """The rows of a pair batch that are not step pairs (meta.pair_kind != "step"; a batch
    without the field is all full pairs); [] when none is left."""
    if "pair_kind" not in {f.name for f in batch.schema.field("meta").type}:
        return [batch]
    kept = batch.filter(pc.fill_null(pc.not_equal(meta_field(batch, "pair_kind"), "step"), True))
    return [kept] if kept.num_rows else []


def enabled_stages(cfg: RunConfig) -> list[StageSpec]:
    """The enabled stages in run order; warns when a stage reads a meta field that no earlier
    enabled stage writes; logs (INFO) a preferred field with no writer (dedup ranks keepers by
    meta.quality_score when present, else by smallest id)."""
    enabled = [s for s in STAGES if getattr(cfg.stages, s.name).enabled]
    written: set[str] = set()
    for spec in enabled:
        for field in spec.reads:
            if field not in written:
                log.warning("stage %s reads %s, which no earlier enabled stage writes",
                            spec.name, field)
        for field in spec.prefers:
            if field not in written:
                log.info("stage %s uses %s when present; no earlier enabled stage writes it, so "
                         "it takes its fallback", spec.name, field)
        written.update(spec.writes)
    return enabled


def build_graph(p: beam.Pipeline, cfg: RunConfig, ctx: RunContext, staging: str) -> None:
    """Add the whole run to `p`; outputs go under `staging`."""
    run = RunLayout(staging)

    def emit(name: str, schema: pa.Schema, folder: str | None = None) -> WriteShards:
        return WriteShards(name, run.dataset(folder or name), cfg.emit, schema,
                           run.jsonl(folder or name))

    ingest = p | "Ingest" >> ReadSources(cfg.sources, cfg.ingest)
    examples = ingest[MAIN]
    pairs = [ingest[PAIRS]]
    step_pairs: list[beam.PCollection] = []
    tag_pairs: list[beam.PCollection] = []
    rejected: list[beam.PCollection] = []
    deadletter = [ingest[DEADLETTER]]
    reports = [ingest[REPORT]]

    def collect(out: dict[str, beam.PCollection]) -> None:
        for key, into in ((REJECTED, rejected), (DEADLETTER, deadletter), (REPORT, reports)):
            if key in out:
                into.append(out[key])

    synthesized = []
    per_round: list[beam.PCollection] = []
    for spec in enabled_stages(cfg):
        stage_cfg = getattr(cfg.stages, spec.name)
        stage = spec.load()(stage_cfg, ctx, label=spec.label)
        if spec.kind == "curation":
            out = examples | stage
            examples = out[MAIN]
        else:
            seeds = examples | f"{spec.label}Seeds" >> SelectSeeds(stage_cfg.seeds, cfg.run.seed)
            out = seeds | stage
            for key, into in ((EXAMPLES, synthesized), (STEP_PAIRS, step_pairs),
                              (TAG_PAIRS, tag_pairs)):
                if key in spec.outputs:
                    into.append(out[key])
            if PAIRS in spec.outputs:  # step pairs go to preference_steps only
                pairs.append(out[PAIRS] if STEP_PAIRS not in spec.outputs else
                             out[PAIRS] | f"{spec.label}FullPairs" >> beam.FlatMap(full_pairs))
            if getattr(stage_cfg, "round_datasets", False):  # one dataset per round as well
                for r in range(1, stage_cfg.rounds + 1):
                    name, folder = L.round_dataset(spec.name, r)
                    per_round.append(out[EXAMPLES] | f"{spec.name}Round{r}" >> beam.Map(
                        lambda b, r=r: b.filter(pc.equal(meta_field(b, "ti_round"), r)))
                        | f"Emit{spec.name}Round{r}" >> emit(name, EXAMPLE_SCHEMA, folder))
        collect(out)
    sft = ([examples] if cfg.emit.include_curated else []) + synthesized

    shards = [
        _flatten(p, sft, "AllSft") | "EmitSft" >> emit(L.SFT, EXAMPLE_SCHEMA),
        _flatten(p, pairs, "AllPairs") | "EmitPairs" >> emit(L.PREFERENCE, PAIR_SCHEMA),
    ]
    if step_pairs:
        shards.append(_flatten(p, step_pairs, "AllStepPairs")
                      | "EmitStepPairs" >> emit(L.PREFERENCE_STEPS, STEP_PAIR_SCHEMA))
    if tag_pairs:  # TAG-INSTRUCT's policy pairs: TRL layout and the authors' ShareGPT layout
        policy = _flatten(p, tag_pairs, "AllTagPairs")
        shards.append(policy | "EmitTagPolicy" >> emit(L.TAG_POLICY, PAIR_SCHEMA))
        shards.append(policy | "ToShareGPT" >> beam.Map(to_sharegpt)
                      | "EmitTagPolicyShareGPT" >> emit(L.TAG_POLICY_SHAREGPT,
                                                        SHAREGPT_PAIR_SCHEMA))
    shards += per_round
    if not cfg.emit.include_curated:
        shards.append(examples | "EmitCurated" >> emit(L.CURATED, EXAMPLE_SCHEMA))
    infos = {
        "shards": shards | "AllShards" >> beam.Flatten(),
        "rejected": (rejected | "AllRejected" >> beam.Flatten()
                     | "EmitRejected" >> WriteRejected(run.rejected, ctx.secret_envs)) if rejected else None,
        "deadletter": (deadletter | "AllDeadletter" >> beam.Flatten()
                       | "EmitDeadletter" >> WriteDeadLetter(run.deadletter, ctx.secret_envs)),
        "reports": reports | "AllReports" >> beam.Flatten(),
    }
    # one step reads every info as a side input (fewer steps than tagging, flattening and
    # combining them: the DirectRunner pays tens of ms per step)
    path = run.run_info
    sides = {k: beam.pvalue.AsList(v) for k, v in infos.items() if v is not None}
    _ = (p | "InfoStart" >> beam.Impulse()
         | "WriteInfo" >> beam.Map(lambda _, **lists: _collect(path, **{"rejected": [], **lists}),
                                   **sides))
