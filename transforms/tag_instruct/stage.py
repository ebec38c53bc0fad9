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
calls) and one REPORT dict (see report.py). Every model step is a kit step (`step_spec`), with
the kit's failure policy: a failed call → DEADLETTER, an unreadable answer → REJECTED
`<step>_unparseable` (raw answer in the detail), a rule → REJECTED with its reason. Every instruction entering a round ends accepted,
rejected or dead-lettered in that round; a dead-lettered candidate only drops itself.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from schemas.records import examples_to_batch, pairs_to_batch
from transforms.base import (
    DEADLETTER,
    EXAMPLES,
    MAIN,
    REJECTED,
    REPORT,
    TAG_PAIRS,
    RunContext,
)
from transforms.kit import (
    EVENTS,
    Emit,
    Gathered,
    Rejection,
    RejectRows,
    RunStep,
    StepSpec,
    count,
    merge_combine,
)
from transforms.tag_instruct import core, report, rows
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

STAGE = core.STAGE
_REJ, _PAIR, _EVENT = REJECTED, "pair", EVENTS
_BUCKETS = 16  # output rows are batched per hash bucket of the id (no single-list gather)
_SINGLE_STEPS = ("reconstruct", "respond", "retag")


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


def _emit_event(round_no: int, kind: str, **fields: Any) -> Emit:
    return Emit(EVENTS, {"round": round_no, "kind": kind, **fields})


class _StartFn(beam.DoFn):
    """Example row → round item (or rejected: no instruction)."""

    def __init__(self, round_no: int):
        self._round = round_no

    def process(self, row: dict[str, Any]) -> Iterator[Any]:
        count(STAGE, "rows_in")
        yield _event(self._round, "input")
        item = core.start_item(row, self._round)
        if isinstance(item, Failure):
            yield beam.pvalue.TaggedOutput(_REJ, Rejection(
                row, item.reason, rows.reject_detail(None, item, "start", self._round)))
            yield _event(self._round, "rejected", reason=item.reason)
        else:
            yield item


_AFTER = {"compress": core.after_compress, "tag": core.after_tag,
          "expand": core.after_expand_one, "retag": core.after_retag}
_AFTER_EMBED = {"reconstruct": core.after_reconstruct, "respond": core.after_respond}


class _After:
    """The parse of a one-answer step: ChatResult → the item for the next step and its event,
    or the Rejection of a rule (an unreadable answer raises ParseError)."""

    def __init__(self, step: str, cfg: TagInstructConfig, round_no: int, embeddings: Any):
        self._step, self._cfg, self._round = step, cfg, round_no
        self._embed = LazyEmbedder(embeddings)

    def __call__(self, result: Any) -> Iterator[Any]:
        item = dict(result.payload)
        step, cfg, rn = self._step, self._cfg, self._round
        if step in _AFTER_EMBED:
            out: Any = _AFTER_EMBED[step](item, result, self._embed, cfg)
        else:
            out = _AFTER[step](item, result, cfg)
        if isinstance(out, Failure):
            yield Rejection(item["row"], out.reason, rows.reject_detail(item, out, step, rn))
            return
        if step == "compress":
            yield _emit_event(rn, "compressed", tags=out["tags_before"])
        elif step == "tag":
            yield _emit_event(rn, "tagged", tags=out["tagger_before"])
        elif step == "reconstruct":
            yield _emit_event(rn, "reconstructed", kept=len(out["tags_used"]) - 1,
                              offered=len(out["tags_before"]))
        yield out


class _Expand:
    """The parse of the N expand candidates of an item (a `Gathered`): the item with its
    chosen tag (or rejected), a pair when the margin is real, and an `expanded` event.
    `pair_only` (the paper's pair path): only the pair and a `pair_path` event; the item goes
    on elsewhere."""

    def __init__(self, cfg: TagInstructConfig, round_no: int, embeddings: Any,
                 pair_only: bool = False):
        self._cfg, self._round, self._pair_only = cfg, round_no, pair_only
        self._embed = LazyEmbedder(embeddings)

    def __call__(self, gathered: Gathered, refs: dict[str, Any]) -> Iterator[Any]:
        item = gathered.item
        ref_sets = ReferenceSets(top=tuple(refs["top"]), bottom=tuple(refs["bottom"]),
                                 pool_size=refs["pool_size"], min_count=refs["min_count"])
        out, pair, info = core.after_expand(item, gathered.results, ref_sets, self._embed,
                                            self._cfg)
        if pair is not None:
            count(STAGE, "pairs")
            yield Emit(_PAIR, pair)
            yield _emit_event(self._round, "pair")
        elif info["pair_skip"] != "no_valid_candidate" or self._pair_only:
            count(STAGE, f"pairs_skipped_{info['pair_skip']}")
        if self._pair_only:
            yield _emit_event(self._round, "pair_path", pair_skip=info["pair_skip"],
                              rewards=[] if isinstance(out, Failure)
                              else [c["reward"] for c in out["candidates"]],
                              margin=info["margin"], problems=info["problems"])
            return
        if isinstance(out, Failure):
            yield Rejection(item["row"], out.reason,
                            rows.reject_detail(item, out, "expand", self._round))
        else:
            yield _emit_event(self._round, "expanded", chosen=out["chosen_reward"],
                              rewards=[c["reward"] for c in out["candidates"]],
                              margin=info["margin"], problems=info["problems"],
                              pair_skip=info["pair_skip"])
            yield out


def _step_event(kind: str, x: Any, step: str, round_no: int) -> dict[str, Any]:
    """The report event of a rejection or a failed call of `step` (report.py)."""
    if kind == "rejected":
        return {"round": round_no, "kind": "rejected", "reason": x.reason}
    return {"round": round_no, "kind": "deadletter", "step": step,
            "candidate": (x.get("record_id", "").split("|") + [None] * 4)[3]}


def step_spec(step: str, cfg: TagInstructConfig, seed: int, round_no: int,
              embeddings: Any, pair_only: bool = False) -> StepSpec:
    """The kit step of `step` in round `round_no`: one request per item, or (expand with
    best_of_n_rewrite, pair_expand) N candidates gathered back by item id."""
    fan_in = step == "pair_expand" or (step == "expand" and cfg.best_of_n_rewrite)
    if fan_in:
        build: Callable[[Any], Any] = partial(core.expand_requests, cfg=cfg, run_seed=seed,
                                              step=step)
        parse: Callable[..., Any] = _Expand(cfg, round_no, embeddings, pair_only)
    else:
        build = partial(core.build_request, step, cfg=cfg, run_seed=seed)
        parse = _After(step, cfg, round_no, embeddings)
    return StepSpec(
        step, None, build=build, parse=parse, row_of=lambda item: item["row"],
        role=STEP_ROLES[step], gather=(lambda x: x["id"]) if fan_in else None,
        detail=lambda item: rows.reject_detail(item, Failure("", {}), step, round_no),
        event=partial(_step_event, step=step, round_no=round_no))


def _accept(item: dict[str, Any], cfg: TagInstructConfig) -> Iterator[Any]:
    count(STAGE, "rows_out")
    yield rows.new_example(item, cfg)
    yield _event(item["round"], "accepted", tags_after=rows.item_tags(item))


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

    def _step(self, items: beam.PCollection, step: str, r: int, sink: dict[str, list],
              refs: beam.PCollection | None = None) -> beam.PCollection:
        """Items → the kit step `step` (step_spec) → the next items; its rejections, failed
        calls, events and pairs go to `sink`."""
        pair_only = step == "pair_expand"
        spec = step_spec(step, self.cfg, self.ctx.seed, r, self.ctx.embeddings, pair_only)
        side = {} if spec.gather is None else {"refs": beam.pvalue.AsSingleton(refs)}
        out = items | f"R{r}{step.capitalize()}" >> RunStep(
            spec, self.ctx, stage=STAGE, outputs=(_PAIR,) if spec.gather else (), **side)
        sink["rejected"].append(out[REJECTED])
        sink["dead"].append(out[DEADLETTER])
        sink["events"].append(out[EVENTS])
        if spec.gather is not None:
            sink["pairs"].append(out[_PAIR])
        return out[MAIN]

    def _expand_step(self, items: beam.PCollection, r: int, refs: beam.PCollection,
                     sink: dict[str, list]) -> beam.PCollection:
        if not self.cfg.best_of_n_rewrite:  # paper: one greedy call; pairs on their own path
            self._step(items, "pair_expand", r, sink, refs)
        return self._step(items, "expand", r, sink, refs)

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
                items = self._step(items, step, r, sink)
            if refs is None:
                refs = self._corpus_refs(items, r)
            items = self._expand_step(items, r, refs, sink)
            for step in _SINGLE_STEPS if cfg.instag_tagger else _SINGLE_STEPS[:2]:
                items = self._step(items, step, r, sink)
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
