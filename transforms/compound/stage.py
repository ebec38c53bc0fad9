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
reason + the failing check in reject_detail). DEADLETTER: requests the serving layer could not
answer, and items that raised here. REPORT: per category items, accepted, rejected by reason,
sub-question counts. Every item (seed × category) ends in exactly one of the three.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.records import first_turn
from transforms.base import (
    DEADLETTER,
    EXAMPLES,
    MAIN,
    METRICS_NAMESPACE,
    REJECTED,
    REPORT,
    RunContext,
    deadletter_entry,
)
from transforms.compound import core, report, steps
from transforms.compound._partner_search import FindPartners
from transforms.compound.categories import CATEGORIES, pick_categories, slug
from transforms.compound.config import CompoundConfig
from transforms.kit import GenerateStep, Rejection, RejectRows, merge_combine
from transforms.llm.api import ChatResult

NS = f"{METRICS_NAMESPACE}.{core.STAGE}"
_DONE = "done"  # tag of finished items (steps.Step with a row)
_EVENT = "event"  # tag of report events
_SEEDS = "seeds"  # tag of (seed, wants_partner), one per usable seed
_BY_SLUG = {slug(c): c for c in CATEGORIES}


def _counter(name: str, n: int = 1) -> None:
    beam.metrics.Metrics.counter(NS, name).inc(n)


class _MakeItems(beam.DoFn):
    """Example batch → one item per (usable seed, drawn category); unusable seeds rejected
    once per category; (seed, wants_partner) once per usable seed on `seeds`."""

    def __init__(self, cfg: CompoundConfig, run_seed: int):
        self._cfg, self._seed = cfg, run_seed
        self._wanted = set(cfg.partner_categories)

    def process(self, batch: pa.RecordBatch) -> Iterable[Any]:
        for row in batch.to_pylist():
            _counter("seeds_in")
            cats = pick_categories(self._seed, row["id"], self._cfg.category_weights,
                                   self._cfg.categories_per_seed)
            seed, reason = core.seed_from_row(row, self._cfg.require_context)
            if seed is None:
                _counter(reason)
                bare = {"id": row["id"], "question": first_turn(row["messages"], "user"),
                        "answer": first_turn(row["messages"], "assistant"),
                        "context": (row.get("meta") or {}).get("context") or "",
                        "source": row.get("source")}
                for cat in cats:
                    item = {"seed": bare, "partner": None, "category": cat}
                    yield beam.pvalue.TaggedOutput(_DONE, steps.finish(
                        item, self._cfg, reason, {"check": "seed", "error": reason}))
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
                _counter("partner_found")
                yield {**item, "partner": choice["partner"],
                       "partner_similarity": choice["similarity"], "partner_status": "found"}
            elif self._cfg.partner_fallback:
                _counter("partner_fallback")
                yield {**item, "partner_status": "fallback"}
            else:
                yield beam.pvalue.TaggedOutput(_DONE, steps.finish(
                    {**item, "partner_status": "none"}, self._cfg, "no_partner",
                    {"check": "partner", "error": choice["reason"],
                     "window": [self._cfg.partner_min_similarity,
                                self._cfg.partner_max_similarity]}))


class _OnStep(beam.DoFn):
    """ChatResult of one step → next request (main) or a finished item (tag `done`). An item
    that raises here goes to the dead letter with its payload."""

    def __init__(self, step: str, cfg: CompoundConfig, run_seed: int):
        self._step, self._cfg, self._seed = step, cfg, run_seed

    def process(self, result: ChatResult) -> Iterable[Any]:
        try:
            out = steps.ON_STEP[self._step](result, self._cfg, self._seed)
        except Exception as e:  # a bug or an odd payload must not take the run down
            entry = deadletter_entry(
                core.STAGE, f"{self._step}: {type(e).__name__}: {e}",
                {"key": result.key, "texts": list(result.texts), "payload": result.payload},
                record_id=result.key)
            yield beam.pvalue.TaggedOutput(DEADLETTER, {**entry, "step": self._step})
            return
        if out.request is not None:
            yield out.request
        else:
            yield beam.pvalue.TaggedOutput(_DONE, out)


class _Finish(beam.DoFn):
    """Finished items → accepted rows (main) or (row, reason, detail) for REJECTED, plus one
    report event each (with the partner status of two-subject categories)."""

    def process(self, step: steps.Step) -> Iterable[Any]:
        meta, status, n_sub = step.row["meta"], step.partner_status, step.n_sub_questions
        if step.accepted:
            _counter("accepted")
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
    llm_question_*, llm_answer_* (docs/compound.md lists them all).
    Example: `out = seed_batches | CompoundStage(CompoundConfig(enabled=True), ctx)`.
    """

    def __init__(self, config: CompoundConfig, ctx: RunContext, *, label: str | None = None):
        """Each step's model is `ctx.llm_for("compound", role)`; `ctx.backend_factory`
        replaces the backend (tests)."""
        super().__init__(label)
        self._cfg, self._ctx = config, ctx

    def _generate(self, requests: beam.PCollection, step: str) -> dict[str, beam.PCollection]:
        name = "".join(w.title() for w in step.split("_"))
        return requests | f"Generate{name}" >> GenerateStep(
            self._ctx, stage=core.STAGE, step=step, role=core.ROLE_OF_STEP[step])

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
        """The LLM steps in order; (finished-item collections, dead-letter collections)."""
        cfg, seed = self._cfg, self._ctx.seed
        done, deadletters = [], []
        requests = items | "QuestionRequests" >> beam.Map(core.question_request, cfg, seed)
        for step in core.STEPS if cfg.answer_check else core.STEPS[:-1]:
            gen = self._generate(requests, step)
            deadletters.append(gen[DEADLETTER])
            name = "".join(w.title() for w in step.split("_"))
            out = gen[MAIN] | f"On{name}" >> beam.ParDo(
                _OnStep(step, cfg, seed)).with_outputs(_DONE, DEADLETTER, main=MAIN)
            done.append(out[_DONE])
            deadletters.append(out[DEADLETTER])
            requests = out[MAIN]  # after the last step this is always empty
        return done, deadletters

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg = self._cfg
        made = batches | "MakeItems" >> beam.ParDo(_MakeItems(cfg, self._ctx.seed)).with_outputs(
            _DONE, _SEEDS, main=MAIN)
        items, no_partner = self._with_partners(made[MAIN], made[_SEEDS])
        done, deadletters = self._steps(items)
        done += [made[_DONE]] + ([no_partner] if no_partner is not None else [])
        finished = (done | "AllDone" >> beam.Flatten()
                    | "Finish" >> beam.ParDo(_Finish()).with_outputs(REJECTED, _EVENT, main=MAIN))
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
