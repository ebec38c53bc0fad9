"""Build the Beam graph of a run from its config: ingest → curation → synthesis → emit.

Knows the order of stages (pipeline/stages.py), not how a stage works inside. Everything is
written under a staging directory; `pipeline.run` publishes it when the run succeeds.
"""

from __future__ import annotations

import logging

import apache_beam as beam
import pyarrow.compute as pc

from pipeline.config import RunConfig
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

RUN_INFO = "_run_info.json"
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
        stage = spec.load()(stage_cfg, ctx, label=spec.name.capitalize())
        if spec.kind == "curation":
            out = examples | stage
            examples = out[MAIN]
        else:
            seeds = examples | f"{spec.name.capitalize()}Seeds" >> SelectSeeds(
                stage_cfg.seeds, cfg.run.seed)
            out = seeds | stage
            for key, into in ((EXAMPLES, synthesized), (PAIRS, pairs), (STEP_PAIRS, step_pairs),
                              (TAG_PAIRS, tag_pairs)):
                if key in spec.outputs:
                    into.append(out[key])
            if getattr(stage_cfg, "round_datasets", False):  # one dataset per round as well
                per_round += [out[EXAMPLES] | f"{spec.name}Round{r}" >> beam.Map(
                    lambda b, r=r: b.filter(pc.equal(meta_field(b, "ti_round"), r)))
                    | f"Emit{spec.name}Round{r}" >> WriteShards(
                        f"{spec.name}_round_{r}", f"{staging}/{spec.name}_rounds/round_{r}",
                        cfg.emit, EXAMPLE_SCHEMA, f"{staging}/jsonl/{spec.name}_rounds/round_{r}")
                    for r in range(1, stage_cfg.rounds + 1)]
        collect(out)
    sft = ([examples] if cfg.emit.include_curated else []) + synthesized

    shards = [
        _flatten(p, sft, "AllSft") | "EmitSft" >> WriteShards(
            "sft", f"{staging}/sft", cfg.emit, EXAMPLE_SCHEMA, f"{staging}/jsonl/sft"),
        _flatten(p, pairs, "AllPairs") | "EmitPairs" >> WriteShards(
            "preference", f"{staging}/preference", cfg.emit, PAIR_SCHEMA,
            f"{staging}/jsonl/preference"),
    ]
    if step_pairs:
        shards.append(_flatten(p, step_pairs, "AllStepPairs") | "EmitStepPairs" >> WriteShards(
            "preference_steps", f"{staging}/preference_steps", cfg.emit, STEP_PAIR_SCHEMA,
            f"{staging}/jsonl/preference_steps"))
    if tag_pairs:  # TAG-INSTRUCT's policy pairs: TRL layout and the authors' ShareGPT layout
        policy = _flatten(p, tag_pairs, "AllTagPairs")
        shards.append(policy | "EmitTagPolicy" >> WriteShards(
            "tag_policy", f"{staging}/tag_policy", cfg.emit, PAIR_SCHEMA,
            f"{staging}/jsonl/tag_policy"))
        shards.append(policy | "ToShareGPT" >> beam.Map(to_sharegpt)
                      | "EmitTagPolicyShareGPT" >> WriteShards(
                          "tag_policy_sharegpt", f"{staging}/tag_policy_sharegpt", cfg.emit,
                          SHAREGPT_PAIR_SCHEMA, f"{staging}/jsonl/tag_policy_sharegpt"))
    shards += per_round
    if not cfg.emit.include_curated:
        shards.append(examples | "EmitCurated" >> WriteShards(
            "curated", f"{staging}/curated", cfg.emit, EXAMPLE_SCHEMA, f"{staging}/jsonl/curated"))
    infos = {
        "shards": shards | "AllShards" >> beam.Flatten(),
        "rejected": (rejected | "AllRejected" >> beam.Flatten()
                     | "EmitRejected" >> WriteRejected(f"{staging}/rejected")) if rejected else None,
        "deadletter": (deadletter | "AllDeadletter" >> beam.Flatten()
                       | "EmitDeadletter" >> WriteDeadLetter(
                           f"{staging}/deadletter", ctx.secret_envs)),
        "reports": reports | "AllReports" >> beam.Flatten(),
    }
    # one step reads every info as a side input (fewer steps than tagging, flattening and
    # combining them: the DirectRunner pays tens of ms per step)
    path = f"{staging}/{RUN_INFO}"
    sides = {k: beam.pvalue.AsList(v) for k, v in infos.items() if v is not None}
    _ = (p | "InfoStart" >> beam.Impulse()
         | "WriteInfo" >> beam.Map(lambda _, **lists: _collect(path, **{"rejected": [], **lists}),
                                   **sides))
