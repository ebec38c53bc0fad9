"""The Beam graph of `refinery tag-utility CONFIG` (driver: pipeline/tag_utility.py): tag a corpus
with the InsTag tagger and write the utility table.

Reads the config's sources (ingest as in a run), asks the tagger (the stage's `teacher` role,
default the run's `llm`) for the tags of every instruction that has an answer, folds
(tags, response tokens) rows into per-tag partial sums (a CombineFn, O(tags) per row), merges
near-identical tags when `merge_similarity` is set, keeps tags seen at least `min_tag_count`
times and writes the top and bottom `reference_k` of them as JSON {tag: {utility, count}} to
`utility_path` (or `out`), which the stage then loads. A summary JSON (rows read, tagged, failed
by reason, rows ingest could not read, tags seen, tags written) goes next to it as `<table>.summary.json`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from transforms.base import DEADLETTER, MAIN, REJECTED, RunContext
from transforms.io.files import write_json
from transforms.kit import Emit, Rejection, RunStep, StepSpec
from transforms.tag_instruct import core
from transforms.tag_instruct.config import STEP_ROLES, TagInstructConfig
from transforms.tag_instruct.utility import (
    Partial,
    UtilityTable,
    aggregate_similar,
    save_utility,
    top_bottom_table,
)
from transforms.tag_instruct.verify import Failure

_OUTCOME = "outcome"


class _TagRows(beam.DoFn):
    """Example row → the item of its instruction (rows without an answer skipped)."""

    def process(self, row: dict[str, Any]) -> Iterator[Any]:
        item = core.start_item(row, 0)
        if isinstance(item, Failure) or not item["answer"]:
            yield beam.pvalue.TaggedOutput(_OUTCOME, "skipped_no_instruction_or_answer")
        else:
            yield item


def _parse_tags(result: Any, cfg: TagInstructConfig) -> Iterator[Any]:
    item = core.after_tag(result.payload, result, cfg)
    if isinstance(item, Failure):
        yield Rejection(item_row(result.payload), item.reason, item.detail)
    else:
        yield Emit(_OUTCOME, "tagged")
        yield core.utility_row(item)


def item_row(item: dict[str, Any]) -> dict[str, Any]:
    return item["row"]


def tag_spec(cfg: TagInstructConfig, seed: int) -> StepSpec:
    """The tagging step: the InsTag tagger (the stage's `teacher` role) on one instruction;
    its answer → a (tags, response tokens) utility row."""
    build = functools.partial(core.build_request, "tag", cfg=cfg, run_seed=seed)
    return StepSpec("utility_tag", None, build=build,
                    parse=functools.partial(_parse_tags, cfg=cfg), row_of=item_row,
                    role=STEP_ROLES["tag"])


def finish_table(partial: Partial, cfg: TagInstructConfig, embeddings: Any = None
                 ) -> tuple[UtilityTable, dict[str, Any]]:
    """Merged partial sums → (the table to write, figures for the summary)."""
    merged_into: dict[str, str] = {}
    if cfg.merge_similarity is not None:
        from transforms.tag_instruct.stage import LazyEmbedder

        partial, merged_into = aggregate_similar(partial, LazyEmbedder(embeddings),
                                                 cfg.merge_similarity)
    table = UtilityTable.from_partial(partial)
    written = top_bottom_table(table, cfg.reference_k, cfg.min_tag_count)
    return written, {"tags_seen": len(table.utility), "tags_merged": len(merged_into),
                     "tags_frequent": sum(c >= cfg.min_tag_count for c in table.count.values()),
                     "tags_written": len(written.utility)}


def _write(partial: Partial, outcomes: list[tuple[str, int]], path: str,
           cfg: TagInstructConfig, embeddings: Any) -> None:
    table, figures = finish_table(partial, cfg, embeddings)
    save_utility(table, path)
    write_json(f"{path}.summary.json", {"table": path, "outcomes": dict(sorted(outcomes)),
                                        "min_tag_count": cfg.min_tag_count,
                                        "reference_k": cfg.reference_k, **figures})


def build_tag_utility(p: beam.Pipeline, run_cfg: Any, ctx: RunContext, path: str) -> None:
    """Add the tagging and the table writing to `p` (run_cfg: pipeline.config.RunConfig)."""
    from transforms.io.read_sources import ReadSources
    from transforms.tag_instruct.stage import utility_combine

    cfg: TagInstructConfig = run_cfg.stages.tag_instruct
    ingest = p | "Ingest" >> ReadSources(run_cfg.sources, run_cfg.ingest)
    requests = (ingest[MAIN]
                | "Rows" >> beam.FlatMap(lambda b: b.to_pylist())
                | "TagItems" >> beam.ParDo(_TagRows()).with_outputs(_OUTCOME, main="items"))
    tagged = requests["items"] | "Tag" >> RunStep(tag_spec(cfg, run_cfg.run.seed), ctx,
                                                  stage=core.STAGE, outputs=(_OUTCOME,))
    failed = tagged[REJECTED] | "RejectedOutcome" >> beam.Map(lambda r: f"failed_{r.reason}")
    dead = tagged[DEADLETTER] | "DeadOutcome" >> beam.Map(lambda _: "failed_deadletter")
    unread = ingest[DEADLETTER] | "IngestOutcome" >> beam.Map(lambda _: "ingest_deadletter")
    outcomes = ((requests[_OUTCOME], tagged[_OUTCOME], failed, dead, unread)
                | "Outcomes" >> beam.Flatten()
                | "CountOutcomes" >> beam.combiners.Count.PerElement())
    sums = tagged[MAIN] | "Utility" >> beam.CombineGlobally(utility_combine())
    _ = sums | "WriteTable" >> beam.Map(_write, beam.pvalue.AsList(outcomes), path, cfg,
                                           run_cfg.embeddings)

