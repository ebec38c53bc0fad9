"""CompoundStage: CQ-Syn compound questions over the seed's context, with verified reference
answers (Compound-QA, arXiv 2411.10163).

Reads Example batches (QA / instruction seeds, context from meta.context). Per seed:
`categories_per_seed` seeded categories; for two-subject categories a partner among the seed's
nearest neighbours (bucketed LSH search, FindPartners); then per item, through the serving
layer: question (role `writer`) → rule check (generic + per type) → question check (role
`judge`) → reference answer (role `answer`) → answer rules → optional answer check (`judge`).
Writes EXAMPLES (user = context [+ partner's context] + compound question, assistant =
reference answer; meta: category, context, partner_context, com_question, com_reference,
sub_questions, sub_answers, seed_id, partner_id, checks, lineage). Drops to REJECTED (row +
reason + the failing check in reject_detail; an answer a step cannot read:
`<step>_unparseable` with the raw answer). DEADLETTER: model calls that failed. Each step is a
kit step (steps.step_specs, kit.RunStep). REPORT: per category items, accepted, rejected by reason,
sub-question counts. Every item (seed × category) ends in exactly one of the three.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.records import first_turn
from transforms.base import (
    DEADLETTER,
    EXAMPLES,
    MAIN,
    REJECTED,
    REPORT,
    RunContext,
)
from transforms.compound import core, report, steps
from transforms.compound._partner_search import FindPartners
from transforms.compound.categories import CATEGORIES, pick_categories, slug
from transforms.compound.config import CompoundConfig
from transforms.kit import Rejection, RejectRows, RunStep, merge_combine, metrics_namespace

_DONE = "done"  # tag of Rejections before the model steps
_EVENT = "event"  # tag of report events
_SEEDS = "seeds"  # tag of (seed, wants_partner), one per usable seed
_BY_SLUG = {slug(c): c for c in CATEGORIES}
_COUNT = partial(beam.metrics.Metrics.counter, metrics_namespace(core.STAGE))


class _MakeItems(beam.DoFn):
    """Example batch → one item per (usable seed, drawn category); unusable seeds rejected
    once per category; (seed, wants_partner) once per usable seed on `seeds`."""

    def __init__(self, cfg: CompoundConfig, run_seed: int):
        self._cfg, self._seed = cfg, run_seed
        self._wanted = set(cfg.partner_categories)

    def process(self, batch: pa.RecordBatch) -> Iterable[Any]:
        for row in batch.to_pylist():
            _COUNT("seeds_in").inc()
            cats = pick_categories(self._seed, row["id"], self._cfg.category_weights,
                                   self._cfg.categories_per_seed)
            seed, reason = core.seed_from_row(row, self._cfg.require_context)
            if seed is None:
                _COUNT(reason).inc()
                bare = {"id": row["id"], "question": first_turn(row["messages"], "user"),
                        "answer": first_turn(row["messages"], "assistant"),
                        "context": (row.get("meta") or {}).get("context") or "",
                        "source": row.get("source")}
                for cat in cats:
                    item = {"seed": bare, "partner": None, "category": cat}
                    yield beam.pvalue.TaggedOutput(_DONE, Rejection(
                        item, reason, {"check": "seed", "error": reason}))
                continue
            yield beam.pvalue.TaggedOutput(_SEEDS, (seed, bool(self._wanted & set(cats))))
            for cat in cats:
                yield {"seed": seed, "partner": None, "partner_similarity": None,
                       "category": cat}


class _AttachPartner(beam.DoFn):
    """(seed id, {item: [...], choice: [...]}) → items with their partner; without one in the
    window: fall back to the one seed, or reject (`no_partner`)."""

    def __init__(self, cfg: CompoundConfig):
        self._cfg = cfg

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterable[Any]:
        _, groups = element
        choice = (groups["choice"] or [{"partner": None, "similarity": None,
                                        "reason": "no_embedding"}])[0]
        for item in groups["item"]:
            if choice["partner"] is not None:
                _COUNT("partner_found").inc()
                yield {**item, "partner": choice["partner"],
                       "partner_similarity": choice["similarity"], "partner_status": "found"}
            elif self._cfg.partner_fallback:
                _COUNT("partner_fallback").inc()
                yield {**item, "partner_status": "fallback"}
            else:
                yield beam.pvalue.TaggedOutput(_DONE, Rejection(
                    {**item, "partner_status": "none"}, "no_partner",
                    {"check": "partner", "error": choice["reason"],
                     "window": [self._cfg.partner_min_similarity,
                                self._cfg.partner_max_similarity]}))


class _Finish(beam.DoFn):
    """Items that passed every step, or Rejections of items → accepted rows (main) or
    Rejections of rows for REJECTED, plus one report event each (with the partner status of
    two-subject categories)."""

    def __init__(self, cfg: CompoundConfig):
        self._cfg = cfg

    def process(self, out: Any) -> Iterable[Any]:
        step = steps.finish_outcome(out, self._cfg)
        meta, status, n_sub = step.row["meta"], step.partner_status, step.n_sub_questions
        if step.accepted:
            _COUNT("accepted").inc()
            yield step.row
            yield beam.pvalue.TaggedOutput(_EVENT, report.event(
                meta["category"], "accepted", partner=status, n_sub=n_sub))
        else:  # RejectRows counts dropped_<reason>
            yield beam.pvalue.TaggedOutput(REJECTED, Rejection(step.row, step.reason, step.detail))
            yield beam.pvalue.TaggedOutput(_EVENT, report.event(
                meta["category"], "rejected", step.reason, partner=status, n_sub=n_sub))


def _deadletter_event(entry: dict[str, Any]) -> dict[str, Any]:
    """Report event of a dead-lettered request; the category is read back from its key."""
    key = entry.get("record_id") or entry.get("key") or ""
    parsed = core.parse_key(str(key))
    category = _BY_SLUG.get(parsed[1]) if parsed else None
    step = parsed[0] if parsed else "unknown"
    return report.event(category, "deadletter", f"deadletter_{step}")


class CompoundStage(beam.PTransform):
    """CQ-Syn over a PCollection of Example batches.

    Input: Example batches (seeds). Outputs: {EXAMPLES, REJECTED, DEADLETTER, REPORT}.
    Reject reasons: seed_*, no_partner, question_/answer_<parse error>, rule_<rule>,
    llm_question_*, llm_answer_*, <step>_unparseable (docs/compound.md lists them all).
    Example: `out = seed_batches | CompoundStage(CompoundConfig(enabled=True), ctx)`.
    """

    def __init__(self, config: CompoundConfig, ctx: RunContext, *, label: str | None = None):
        """Each step's model is `ctx.llm_for("compound", role)`; `ctx.backend_factory`
        replaces the backend (tests)."""
        super().__init__(label)
        self._cfg, self._ctx = config, ctx

    def _with_partners(self, items: beam.PCollection, seeds: beam.PCollection
                       ) -> tuple[beam.PCollection, beam.PCollection | None]:
        cfg = self._cfg
        if not any(cfg.category_weights.get(c, 0) > 0 for c in cfg.partner_categories):
            return items, None
        wanted = set(cfg.partner_categories)
        split = items | "SplitPartnerItems" >> beam.Partition(
            lambda it, _: int(it["category"] in wanted), 2)
        choices = seeds | "FindPartners" >> FindPartners(cfg, self._ctx.embeddings,
                                                         self._ctx.seed)
        keyed = split[1] | "KeyBySeed" >> beam.Map(lambda it: (it["seed"]["id"], it))
        out = ({"item": keyed, "choice": choices} | "JoinPartners" >> beam.CoGroupByKey()
               | "AttachPartner" >> beam.ParDo(_AttachPartner(cfg)).with_outputs(
                   _DONE, main=MAIN))
        ready = (split[0], out[MAIN]) | "AllItems" >> beam.Flatten()
        return ready, out[_DONE]

    def _steps(self, items: beam.PCollection) -> tuple[list[Any], list[Any]]:
        """The model steps in order (kit.RunStep each); (collections of Rejections and of
        the items that passed every step, dead-letter collections)."""
        done, deadletters = [], []
        for spec in steps.step_specs(self._cfg, self._ctx.seed):
            name = "".join(w.title() for w in spec.name.split("_"))
            out = items | name >> RunStep(spec, self._ctx, stage=core.STAGE)
            done.append(out[REJECTED])
            deadletters.append(out[DEADLETTER])
            items = out[MAIN]
        return [*done, items], deadletters

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg = self._cfg
        made = batches | "MakeItems" >> beam.ParDo(_MakeItems(cfg, self._ctx.seed)).with_outputs(
            _DONE, _SEEDS, main=MAIN)
        items, no_partner = self._with_partners(made[MAIN], made[_SEEDS])
        done, deadletters = self._steps(items)
        done += [made[_DONE]] + ([no_partner] if no_partner is not None else [])
        finished = (done | "AllDone" >> beam.Flatten()
                    | "Finish" >> beam.ParDo(_Finish(cfg)).with_outputs(
                        REJECTED, _EVENT, main=MAIN))
        size = cfg.output_batch_rows
        examples = (finished[MAIN]
                    | "BatchAccepted" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
                    | "AcceptedToArrow" >> beam.Map(core.rows_to_batch))
        rejected = finished[REJECTED] | "Rejected" >> RejectRows(
            core.STAGE, to_batch=core.rows_to_batch, size=size)
        deadletter = deadletters | "AllDeadletter" >> beam.Flatten()
        dl_events = deadletter | "DeadletterEvents" >> beam.Map(_deadletter_event)
        rep = ((finished[_EVENT], dl_events) | "AllEvents" >> beam.Flatten()
               | "Report" >> beam.CombineGlobally(merge_combine(
                   report.empty, report.add, report.merge, report.finish)))
        return {EXAMPLES: examples, REJECTED: rejected, DEADLETTER: deadletter, REPORT: rep}
