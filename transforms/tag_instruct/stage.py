"""TagInstructStage: complexity expansion in tag space (TAG-INSTRUCT), R rounds.

Reads Example batches. Per round: compress (teacher: the tags) → [tag (teacher, InsTag
tagger: complexity before; `instag_tagger`)] → expand (policy) → reconstruct (teacher) →
respond (teacher) → [retag (same tagger: complexity after)]. Accepted examples feed the next.
Expand, `best_of_n_rewrite` (ours): N candidate requests, grouped back by item id, rewarded on
embeddings against the utility table's top/bottom sets; the best rewrites, best vs worst is
the pair. Off (paper): ONE greedy request gives the new tag, and a separate pair path samples
N `pair_expand` candidates of the same (tags, question) only to build the pair.
Writes EXAMPLES (new examples with lineage), TAG_PAIRS (tag-policy pairs, emitted to
`tag_policy/`), REJECTED (the parent row, reject_reason, JSON detail), DEADLETTER (failed LLM
calls) and one REPORT dict (see report.py). Every instruction entering a round ends accepted,
rejected or dead-lettered in that round; a dead-lettered candidate only drops itself.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from schemas.records import examples_to_batch, pairs_to_batch
from transforms.base import (
    DEADLETTER,
    EXAMPLES,
    MAIN,
    METRICS_NAMESPACE,
    REJECTED,
    REPORT,
    TAG_PAIRS,
    RunContext,
)
from transforms.kit import GenerateStep, Rejection, RejectRows, merge_combine
from transforms.tag_instruct import core, report
from transforms.tag_instruct.config import STEP_ROLES, TagInstructConfig
from transforms.tag_instruct.utility import (
    Partial,
    ReferenceSets,
    UtilityTable,
    add_row,
    aggregate_similar,
    load_utility,
    merge_partials,
    reference_sets,
)
from transforms.tag_instruct.verify import Failure

_NS = f"{METRICS_NAMESPACE}.{core.STAGE}"
_REJ, _PAIR, _EVENT = "rej", "pair", "event"
_BUCKETS = 16  # output rows are batched per hash bucket of the id (no single-list gather)
_SINGLE_STEPS = ("reconstruct", "respond", "retag")


def _counter(name: str, n: int = 1) -> None:
    beam.metrics.Metrics.counter(_NS, name).inc(n)


class LazyEmbedder:
    """The shared embedding model, loaded once per worker on first use."""

    def __init__(self, embeddings: Any):
        self._config = embeddings
        self._embedder: Any = None

    def __call__(self, texts: Iterable[str]) -> np.ndarray:
        if self._embedder is None:
            from transforms.embed.model import Embedder

            self._embedder = Embedder(self._config)
        vectors = self._embedder.encode(list(texts)).astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms)


def _event(round_no: int, kind: str, **fields: Any) -> Any:
    return beam.pvalue.TaggedOutput(_EVENT, {"round": round_no, "kind": kind, **fields})


def _reject(item: dict[str, Any] | None, row: dict[str, Any], failure: Failure, step: str,
            round_no: int) -> Iterator[Any]:
    yield beam.pvalue.TaggedOutput(_REJ, Rejection(
        row, failure.reason, core.reject_detail(item, failure, step, round_no)))
    yield _event(round_no, "rejected", reason=failure.reason)


class _StartFn(beam.DoFn):
    """Example row → round item (or rejected: no instruction)."""

    def __init__(self, round_no: int):
        self._round = round_no

    def process(self, row: dict[str, Any]) -> Iterator[Any]:
        _counter("rows_in")
        yield _event(self._round, "input")
        item = core.start_item(row, self._round)
        if isinstance(item, Failure):
            yield from _reject(None, row, item, "start", self._round)
        else:
            yield item


class _AfterFn(beam.DoFn):
    """ChatResult of a one-answer step → the item for the next step, or a rejection; events."""

    def __init__(self, step: str, cfg: TagInstructConfig, round_no: int, embeddings: Any):
        self._step, self._cfg, self._round = step, cfg, round_no
        self._embed = LazyEmbedder(embeddings)

    def process(self, result: Any) -> Iterator[Any]:
        item = dict(result.payload)
        step, cfg, rn = self._step, self._cfg, self._round
        if step == "compress":
            out: Any = core.after_compress(item, result, cfg)
        elif step == "tag":
            out = core.after_tag(item, result, cfg)
        elif step == "expand":
            out = core.after_expand_one(item, result, cfg)
        elif step == "reconstruct":
            out = core.after_reconstruct(item, result, self._embed, cfg)
        elif step == "respond":
            out = core.after_respond(item, result, self._embed, cfg)
        else:
            out = core.after_retag(item, result, cfg)
        if isinstance(out, Failure):
            yield from _reject(item, item["row"], out, step, rn)
        else:
            if step == "compress":
                yield _event(rn, "compressed", tags=out["tags_before"])
            elif step == "tag":
                yield _event(rn, "tagged", tags=out["tagger_before"])
            elif step == "reconstruct":
                yield _event(rn, "reconstructed", kept=len(out["tags_used"]) - 1,
                             offered=len(out["tags_before"]))
            yield out


class _ExpandFn(beam.DoFn):
    """(item id, {item: [item], cands: [ChatResult...]}) → the item with its chosen tag (or
    rejected), a pair when the margin is real, and an `expanded` event. `pair_only` (the
    paper's pair path): only the pair and a `pair_path` event; the item goes on elsewhere."""

    def __init__(self, cfg: TagInstructConfig, round_no: int, embeddings: Any,
                 pair_only: bool = False):
        self._cfg, self._round, self._pair_only = cfg, round_no, pair_only
        self._embed = LazyEmbedder(embeddings)

    def process(self, element: tuple[str, dict[str, list[Any]]], refs: dict[str, Any]
                ) -> Iterator[Any]:
        _, groups = element
        # every candidate's item is in the group (the candidates were made from it)
        item = groups["item"][0]
        ref_sets = ReferenceSets(top=tuple(refs["top"]), bottom=tuple(refs["bottom"]),
                                 pool_size=refs["pool_size"], min_count=refs["min_count"])
        out, pair, info = core.after_expand(item, groups["cands"], ref_sets, self._embed,
                                            self._cfg)
        if pair is not None:
            _counter("pairs")
            yield beam.pvalue.TaggedOutput(_PAIR, pair)
            yield _event(self._round, "pair")
        elif info["pair_skip"] != "no_valid_candidate" or self._pair_only:
            _counter(f"pairs_skipped_{info['pair_skip']}")
        if self._pair_only:
            yield _event(self._round, "pair_path", pair_skip=info["pair_skip"],
                         rewards=[] if isinstance(out, Failure)
                         else [c["reward"] for c in out["candidates"]],
                         margin=info["margin"], problems=info["problems"])
            return
        if isinstance(out, Failure):
            yield from _reject(item, item["row"], out, "expand", self._round)
        else:
            yield _event(self._round, "expanded", chosen=out["chosen_reward"],
                         rewards=[c["reward"] for c in out["candidates"]],
                         margin=info["margin"], problems=info["problems"],
                         pair_skip=info["pair_skip"])
            yield out


def _accept(item: dict[str, Any], cfg: TagInstructConfig) -> Iterator[Any]:
    _counter("rows_out")
    yield core.new_example(item, cfg)
    yield _event(item["round"], "accepted", tags_after=core.item_tags(item))


def _add_utility_row(acc: Partial, row: tuple[list[str], int]) -> Partial:
    return add_row(acc, row[0], row[1])


def utility_combine() -> beam.CombineFn:
    """(tags, tokens) rows → per-tag partial sums; O(tags of the row) per row."""
    return merge_combine(dict, _add_utility_row, merge_partials)


def refs_dict(table: UtilityTable, cfg: TagInstructConfig, source: str) -> dict[str, Any]:
    """The reference sets (and how they were made) as the report and side input show them.
    With `require_references`, a table whose pool cannot give disjoint top-K and bottom-K
    sets is a ValueError (raised while the graph is built, before any model call)."""
    refs = reference_sets(table, cfg.reference_k, cfg.min_tag_count, cfg.fallback_min_count)
    if cfg.require_references and len(refs.top) < cfg.reference_k:
        raise ValueError(
            f"require_references: the utility table {cfg.utility_path} has {refs.pool_size} "
            f"tags seen >= {cfg.min_tag_count} times; top and bottom {cfg.reference_k} need "
            f"{2 * cfg.reference_k} (rebuild it from a bigger corpus, or lower reference_k)")
    return {**refs.as_dict(), "source": source, "tags": len(table.utility),
            "top_utility": [round(table.utility[t], 4) for t in refs.top[:20]],
            "bottom_utility": [round(table.utility[t], 4) for t in refs.bottom[:20]]}


class _CorpusRefs(beam.DoFn):
    """Round 1's merged partial sums → reference sets (tags merged by similarity if asked)."""

    def __init__(self, cfg: TagInstructConfig, embeddings: Any):
        self._cfg = cfg
        self._embed = LazyEmbedder(embeddings)

    def process(self, partial: Partial) -> Iterator[dict[str, Any]]:
        if self._cfg.merge_similarity is not None:
            partial, _ = aggregate_similar(partial, self._embed, self._cfg.merge_similarity)
        yield refs_dict(UtilityTable.from_partial(partial), self._cfg, "corpus")


def _batches(rows: Iterable[dict[str, Any]], size: int,
             to_batch: Callable[[list[dict[str, Any]]], pa.RecordBatch],
             key: Callable[[dict[str, Any]], Any]) -> Iterator[pa.RecordBatch]:
    rows = sorted(rows, key=key)
    for start in range(0, len(rows), size):
        yield to_batch(rows[start:start + size])


class _Batched(beam.PTransform):
    """Rows → sorted record batches, grouped per hash bucket of the row id (bounded groups)."""

    def __init__(self, size: int, to_batch: Callable[[list[dict[str, Any]]], pa.RecordBatch],
                 row_id: Callable[[dict[str, Any]], str],
                 key: Callable[[dict[str, Any]], Any], label: str | None = None):
        super().__init__(label)
        self._size, self._to_batch, self._id, self._key = size, to_batch, row_id, key

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        row_id = self._id
        return (rows
                | "Bucket" >> beam.Map(
                    lambda r: (zlib.crc32(row_id(r).encode()) % _BUCKETS, r))
                | "Group" >> beam.GroupByKey()
                | "ToBatches" >> beam.FlatMap(
                    lambda kv: _batches(kv[1], self._size, self._to_batch, self._key)))


class TagInstructStage(beam.PTransform):
    """Example batches → {EXAMPLES, PAIRS, REJECTED, DEADLETTER, REPORT} (see module doc).
    Steps go to their role's model: `teacher` (compress, tag, reconstruct, respond, retag)
    and `policy` (expand), each defaulting to the run's `llm`."""

    def __init__(self, config: TagInstructConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.cfg, self.ctx = config, ctx

    def _tagger(self) -> str:
        """Who made the tags the report counts per query."""
        teacher = self.ctx.llm_for(core.STAGE, "teacher").model
        if self.cfg.instag_tagger:
            return f"InsTag tagger: teacher ({teacher}), tags of the new question"
        policy = self.ctx.llm_for(core.STAGE, "policy").model
        return f"compress tags by the teacher ({teacher}) + new tag by the policy ({policy})"

    def _call(self, items: beam.PCollection, step: str, r: int, sink: dict[str, list]
              ) -> beam.PCollection:
        """Requests of `step` → Generate → ChatResults; failed calls to the dead letter."""
        cfg, seed = self.cfg, self.ctx.seed
        label = f"R{r}{step.capitalize()}"
        if step == "pair_expand" or (step == "expand" and cfg.best_of_n_rewrite):
            reqs = items | f"{label}Requests" >> beam.FlatMap(core.expand_requests, cfg, seed,
                                                             step)
        else:
            reqs = items | f"{label}Request" >> beam.Map(
                lambda it, step=step: core.build_request(step, it, cfg, seed))
        gen = reqs | f"{label}Generate" >> GenerateStep(self.ctx, stage=core.STAGE, step=step,
                                                        role=STEP_ROLES[step])
        sink["dead"].append(gen[DEADLETTER])
        sink["events"].append(gen[DEADLETTER] | f"{label}DeadEvent" >> beam.Map(
            lambda d, r=r, step=step: {
                "round": r, "kind": "deadletter", "step": step,
                "candidate": (d.get("record_id", "").split("|") + [None] * 4)[3]}))
        return gen[MAIN]

    def _parse(self, results: beam.PCollection, step: str, r: int, sink: dict[str, list]
               ) -> beam.PCollection:
        out = results | f"R{r}{step.capitalize()}Parse" >> beam.ParDo(
            _AfterFn(step, self.cfg, r, self.ctx.embeddings)).with_outputs(
            _REJ, _EVENT, main="items")
        sink["rejected"].append(out[_REJ])
        sink["events"].append(out[_EVENT])
        return out["items"]

    def _expand_step(self, items: beam.PCollection, r: int, refs: beam.PCollection,
                     sink: dict[str, list]) -> beam.PCollection:
        if not self.cfg.best_of_n_rewrite:  # paper: one greedy call; pairs on their own path
            self._candidates(items, "pair_expand", r, refs, sink)
            return self._parse(self._call(items, "expand", r, sink), "expand", r, sink)
        return self._candidates(items, "expand", r, refs, sink)

    def _candidates(self, items: beam.PCollection, step: str, r: int, refs: beam.PCollection,
                    sink: dict[str, list]) -> beam.PCollection:
        """N candidate requests per item, grouped back by item id, rewarded; the pair (and,
        for `expand`, the item with the best tag)."""
        results = self._call(items, step, r, sink)
        tag = "Pair" if step == "pair_expand" else ""
        grouped = ({"item": items | f"R{r}{tag}KeyItems" >> beam.Map(lambda it: (it["id"], it)),
                    "cands": results | f"R{r}{tag}KeyCands" >> beam.Map(
                        lambda res: (res.payload["id"], res))}
                   | f"R{r}{tag}GroupCandidates" >> beam.CoGroupByKey())
        out = grouped | f"R{r}{tag}ExpandParse" >> beam.ParDo(
            _ExpandFn(self.cfg, r, self.ctx.embeddings, pair_only=bool(tag)),
            beam.pvalue.AsSingleton(refs)).with_outputs(_REJ, _PAIR, _EVENT, main="items")
        sink["rejected"].append(out[_REJ])
        sink["events"].append(out[_EVENT])
        sink["pairs"].append(out[_PAIR])
        return out["items"]

    def _corpus_refs(self, items: beam.PCollection, r: int) -> beam.PCollection:
        return (items
                | f"R{r}UtilityRows" >> beam.FlatMap(
                    lambda it: [u] if (u := core.utility_row(it)) else [])
                | f"R{r}Utility" >> beam.CombineGlobally(utility_combine())
                | f"R{r}RefSets" >> beam.ParDo(_CorpusRefs(self.cfg, self.ctx.embeddings)))

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg = self.cfg
        p = batches.pipeline
        sink: dict[str, list] = {"examples": [], "pairs": [], "rejected": [], "dead": [],
                                 "events": []}
        refs = None
        if cfg.utility_path:
            refs = p | "UtilityFromFile" >> beam.Create(
                [refs_dict(load_utility(cfg.utility_path), cfg, "file")])
        rows = batches | "Rows" >> beam.FlatMap(lambda b: b.to_pylist())
        for r in range(1, cfg.rounds + 1):
            started = rows | f"R{r}Start" >> beam.ParDo(_StartFn(r)).with_outputs(
                _REJ, _EVENT, main="items")
            sink["rejected"].append(started[_REJ])
            sink["events"].append(started[_EVENT])
            items = started["items"]
            for step in ("compress", "tag") if cfg.instag_tagger else ("compress",):
                items = self._parse(self._call(items, step, r, sink), step, r, sink)
            if refs is None:
                refs = self._corpus_refs(items, r)
            items = self._expand_step(items, r, refs, sink)
            for step in _SINGLE_STEPS if cfg.instag_tagger else _SINGLE_STEPS[:2]:
                items = self._parse(self._call(items, step, r, sink), step, r, sink)
            accepted = items | f"R{r}Accept" >> beam.ParDo(_accept, cfg).with_outputs(
                _EVENT, main="rows")
            sink["examples"].append(accepted["rows"])
            sink["events"].append(accepted[_EVENT])
            rows = accepted["rows"]
        return self._outputs(sink, refs)

    def _outputs(self, sink: dict[str, list], refs: beam.PCollection
                 ) -> dict[str, beam.PCollection]:
        size, rounds = self.cfg.batch_rows, self.cfg.rounds
        tagger = self._tagger()
        by_id = (lambda r: r["id"])  # noqa: E731
        examples = (sink["examples"] | "AllExamples" >> beam.Flatten()
                    | "ExampleBatches" >> _Batched(size, examples_to_batch, by_id, by_id))
        pairs = (sink["pairs"] | "AllPairs" >> beam.Flatten()
                 | "PairBatches" >> _Batched(size, pairs_to_batch, by_id, by_id))
        rejected = (sink["rejected"] | "AllRejected" >> beam.Flatten()
                    | "RejectedBatches" >> RejectRows(core.STAGE, size=size))
        rep = (sink["events"] | "AllEvents" >> beam.Flatten()
               | "FoldEvents" >> beam.CombineGlobally(
                   merge_combine(report.empty, report.add, report.merge))
               | "Report" >> beam.Map(lambda acc, u: report.finish(acc, rounds, u, tagger),
                                      beam.pvalue.AsSingleton(refs)))
        return {EXAMPLES: examples, TAG_PAIRS: pairs, REJECTED: rejected,
                DEADLETTER: sink["dead"] | "AllDeadletter" >> beam.Flatten(), REPORT: rep}
