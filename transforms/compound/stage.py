"""CompoundStage: CQ-Syn compound questions with verified reference answers.

Reads Example batches (QA / instruction seeds, context from meta.context). Per seed: a seeded
category; for two-subject categories a partner among the seed's nearest neighbours by
embedding; then three LLM calls through the serving layer (question → answer → check).
Writes EXAMPLES (user = compound question, assistant = reference answer, meta: category,
sub_questions, sub_answers, seed_id, partner_id, lineage with model and template versions).
Drops to REJECTED (candidate row + reason + the failing check in reject_detail): unusable
seeds, unparseable model output, rule-check and LLM-check failures, no partner (when fallback
is off). DEADLETTER: requests the serving layer could not answer, and items that raised here.
REPORT: counts and acceptance per category. Every seed ends in exactly one of the three.
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
    reject_rows,
)
from transforms.compound import core, report
from transforms.compound.categories import CATEGORIES, pick_category, slug
from transforms.compound.config import CompoundConfig
from transforms.compound.partners import select_partners
from transforms.kit import GenerateStep
from transforms.llm.api import ChatResult

NS = f"{METRICS_NAMESPACE}.{core.STAGE}"
_DONE = "done"  # tag of finished items (core.Step with a row)
_EVENT = "event"  # tag of report events
_BY_SLUG = {slug(c): c for c in CATEGORIES}
_ROLES = {"question": "writer", "answer": "answerer", "check": "judge"}  # CompoundConfig.ROLES


def _counter(name: str, n: int = 1) -> None:
    beam.metrics.Metrics.counter(NS, name).inc(n)


class _MakeItems(beam.DoFn):
    """Example batch → one item per usable seed (category drawn); unusable rows rejected."""

    def __init__(self, cfg: CompoundConfig, run_seed: int):
        self._cfg, self._seed = cfg, run_seed

    def process(self, batch: pa.RecordBatch) -> Iterable[Any]:
        for row in batch.to_pylist():
            _counter("seeds_in")
            category = pick_category(self._seed, row["id"], self._cfg.category_weights)
            seed, reason = core.seed_from_row(row)
            if seed is None:
                seed = {"id": row["id"], "question": first_turn(row["messages"], "user"),
                        "answer": first_turn(row["messages"], "assistant"),
                        "context": (row.get("meta") or {}).get("context") or "",
                        "source": row.get("source")}
                item = {"seed": seed, "partner": None, "category": category}
                yield beam.pvalue.TaggedOutput(_DONE, core.reject(
                    item, reason, {"check": "seed", "error": reason}))
                continue
            yield {"seed": seed, "partner": None, "partner_similarity": None,
                   "category": category}


def _embed_text(item: dict[str, Any]) -> str:
    seed = item["seed"]
    return f"{seed['question']}\n{seed['context'][:300]}".strip()


class _Embed(beam.DoFn):
    """Items → (id, seed, wants_partner, vector), the embedding model loaded once per worker."""

    def __init__(self, embeddings: Any, partner_categories: list[str]):
        self._cfg, self._wanted = embeddings, set(partner_categories)

    def setup(self) -> None:
        from transforms.embed.model import Embedder

        self._embedder = Embedder(self._cfg)

    def process(self, items: list[dict[str, Any]]) -> Iterable[Any]:
        vectors = self._embedder.encode([_embed_text(it) for it in items])
        for it, vec in zip(items, vectors, strict=True):
            yield (it["seed"]["id"], it["seed"], it["category"] in self._wanted, vec)


def _partner_map(entries: list[tuple], cfg: CompoundConfig) -> dict[str, dict[str, Any]]:
    """Global view of all seeds → {seed id: {partner, similarity, reason}} for wanting seeds."""
    import numpy as np

    if not entries:
        return {}
    entries = sorted(entries, key=lambda e: e[0])  # order-free: ties broken by id in any case
    ids = [e[0] for e in entries]
    emb = np.stack([e[3] for e in entries]).astype(np.float32)
    choices = select_partners(ids, emb, cfg.partner_min_similarity, cfg.partner_max_similarity,
                              cfg.partner_neighbours, wanted=[e[2] for e in entries])
    out = {}
    for e, c in zip(entries, choices, strict=True):
        if e[2]:
            partner = None if c.index < 0 else {
                k: entries[c.index][1][k] for k in ("id", "question", "answer", "context")}
            out[e[0]] = {"partner": partner, "similarity": c.similarity, "reason": c.reason}
    return out


class _AttachPartner(beam.DoFn):
    """Give two-subject items their partner; fall back to one seed or reject (`no_partner`)."""

    def __init__(self, cfg: CompoundConfig):
        self._cfg, self._wanted = cfg, set(cfg.partner_categories)

    def process(self, item: dict[str, Any], partners: dict[str, Any]) -> Iterable[Any]:
        if item["category"] not in self._wanted:
            yield item
            return
        choice = partners.get(item["seed"]["id"], {"partner": None, "similarity": None,
                                                   "reason": "no_embedding"})
        if choice["partner"] is not None:
            _counter("partner_found")
            yield {**item, "partner": choice["partner"], "partner_similarity":
                   choice["similarity"], "partner_status": "found"}
        elif self._cfg.partner_fallback:
            _counter("partner_fallback")
            yield {**item, "partner_status": "fallback"}
        else:
            yield beam.pvalue.TaggedOutput(_DONE, core.reject(
                {**item, "partner_status": "none"}, "no_partner",
                {"check": "partner", "error": choice["reason"],
                 "window": [self._cfg.partner_min_similarity, self._cfg.partner_max_similarity]}))


class _OnStep(beam.DoFn):
    """ChatResult of one step → next request (main) or a finished item (tag `done`). An item
    that raises here goes to the dead letter with its payload."""

    def __init__(self, step: str, cfg: CompoundConfig, run_seed: int):
        self._step, self._cfg, self._seed = step, cfg, run_seed

    def process(self, result: ChatResult) -> Iterable[Any]:
        try:
            if self._step == "question":
                out = core.on_question(result, self._cfg, self._seed)
            elif self._step == "answer":
                out = core.on_answer(result, self._cfg, self._seed)
            else:
                out = core.on_check(result)
        except Exception as e:  # a bug or an odd payload must not take the run down
            yield beam.pvalue.TaggedOutput(DEADLETTER, deadletter_entry(
                core.STAGE, f"{self._step}: {type(e).__name__}: {e}",
                {"key": result.key, "texts": list(result.texts), "payload": result.payload},
                record_id=result.key))
            return
        if out.request is not None:
            yield out.request
        else:
            yield beam.pvalue.TaggedOutput(_DONE, out)


class _Finish(beam.DoFn):
    """Finished items → accepted rows (main) or (row, reason, detail) for REJECTED, plus one
    report event each (with the partner status of two-subject categories)."""

    def process(self, step: core.Step) -> Iterable[Any]:
        meta, status = step.row["meta"], step.partner_status
        if step.accepted:
            _counter("accepted")
            yield step.row
            yield beam.pvalue.TaggedOutput(_EVENT, report.event(meta["category"], "accepted",
                                                                partner=status))
        else:
            _counter(f"dropped_{step.reason}")
            yield beam.pvalue.TaggedOutput(REJECTED, (step.row, step.reason, step.detail))
            yield beam.pvalue.TaggedOutput(_EVENT, report.event(meta["category"], "rejected",
                                                                step.reason, partner=status))


def _deadletter_event(entry: dict[str, Any]) -> dict[str, Any]:
    """Report event of a dead-lettered request; the category is read back from its key."""
    key = entry.get("record_id") or entry.get("key") or ""
    parsed = core.parse_key(str(key))
    category = _BY_SLUG.get(parsed[1]) if parsed else None
    step = parsed[0] if parsed else "unknown"
    return report.event(category, "deadletter", f"deadletter_{step}")


def _rejected_batch(items: list[tuple]) -> pa.RecordBatch:
    batch = core.rows_to_batch([r for r, _, _ in items])
    return reject_rows(batch, core.STAGE, [why for _, why, _ in items],
                       [detail for _, _, detail in items])


class _ReportFn(beam.CombineFn):
    def create_accumulator(self) -> report.Acc:
        return report.empty()

    def add_input(self, acc: report.Acc, ev: dict[str, Any]) -> report.Acc:
        return report.add(acc, ev)

    def merge_accumulators(self, accs: Iterable[report.Acc]) -> report.Acc:
        return report.merge(accs)

    def extract_output(self, acc: report.Acc) -> dict[str, Any]:
        return report.finish(acc)


class CompoundStage(beam.PTransform):
    """CQ-Syn over a PCollection of Example batches; see the module docstring."""

    def __init__(self, config: CompoundConfig, ctx: RunContext, *, label: str | None = None):
        """`ctx.backend_factory` replaces the configured LLM backend (tests script models)."""
        super().__init__(label)
        self._cfg, self._ctx = config, ctx

    def _generate(self, requests: beam.PCollection, step: str) -> dict[str, beam.PCollection]:
        return requests | f"Generate{step.title()}" >> GenerateStep(
            self._ctx, stage=core.STAGE, step=step, role=_ROLES[step])

    def _with_partners(self, items: beam.PCollection) -> tuple[beam.PCollection, Any]:
        cfg = self._cfg
        if not any(cfg.category_weights.get(c, 0) > 0 for c in cfg.partner_categories):
            return items, None
        partners = (
            items
            | "BatchForEmbedding" >> beam.BatchElements(min_batch_size=1, max_batch_size=256)
            | "Embed" >> beam.ParDo(_Embed(self._ctx.embeddings, cfg.partner_categories))
            | "AllSeeds" >> beam.combiners.ToList()
            | "ChoosePartners" >> beam.Map(_partner_map, cfg)
        )
        out = items | "AttachPartner" >> beam.ParDo(
            _AttachPartner(cfg), beam.pvalue.AsSingleton(partners)).with_outputs(_DONE, main=MAIN)
        return out[MAIN], out[_DONE]

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, seed = self._cfg, self._ctx.seed
        made = batches | "MakeItems" >> beam.ParDo(_MakeItems(cfg, seed)).with_outputs(
            _DONE, main=MAIN)
        items, no_partner = self._with_partners(made[MAIN])
        done = [made[_DONE]] + ([no_partner] if no_partner is not None else [])
        deadletters = []
        requests = items | "QuestionRequests" >> beam.Map(core.question_request, cfg, seed)
        for step in ("question", "answer", "check"):
            gen = self._generate(requests, step)
            deadletters.append(gen[DEADLETTER])
            out = gen[MAIN] | f"On{step.title()}" >> beam.ParDo(
                _OnStep(step, cfg, seed)).with_outputs(_DONE, DEADLETTER, main=MAIN)
            done.append(out[_DONE])
            deadletters.append(out[DEADLETTER])
            requests = out[MAIN]  # after "check" this is always empty
        finished = (done | "AllDone" >> beam.Flatten()
                    | "Finish" >> beam.ParDo(_Finish()).with_outputs(REJECTED, _EVENT, main=MAIN))
        size = cfg.output_batch_rows
        examples = (finished[MAIN]
                    | "BatchAccepted" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
                    | "AcceptedToArrow" >> beam.Map(core.rows_to_batch))
        rejected = (finished[REJECTED]
                    | "BatchRejected" >> beam.BatchElements(min_batch_size=1, max_batch_size=size)
                    | "RejectedToArrow" >> beam.Map(_rejected_batch))
        deadletter = deadletters | "AllDeadletter" >> beam.Flatten()
        dl_events = deadletter | "DeadletterEvents" >> beam.Map(_deadletter_event)
        rep = ((finished[_EVENT], dl_events) | "AllEvents" >> beam.Flatten()
               | "Report" >> beam.CombineGlobally(_ReportFn()))
        return {EXAMPLES: examples, REJECTED: rejected, DEADLETTER: deadletter, REPORT: rep}
