"""TagInstructStage: complexity expansion in tag space (TAG-INSTRUCT), R rounds.

Reads Example batches. Per round: compress (exactly `num_tags` tags) → tag utility (from round
1's corpus, or `utility_path`) → expand (N sampled candidates, rewarded on embeddings, best
used) → reconstruct → respond → verify (re-tag). Accepted examples feed the next round.
Writes EXAMPLES (new examples, every round, with lineage), PAIRS (best vs worst candidate tag),
REJECTED (the parent row, reject_reason and a JSON detail), DEADLETTER (failed LLM calls, from
the serving layer) and one REPORT dict with per-round figures.
Every instruction entering a round ends accepted, rejected or dead-lettered in that round.
"""

from __future__ import annotations

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
    PAIRS,
    REJECTED,
    REPORT,
    RunContext,
    reject_rows,
)
from transforms.kit import GenerateStep
from transforms.tag_instruct import core
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.report import build_report
from transforms.tag_instruct.utility import (
    ReferenceSets,
    UtilityTable,
    load_utility,
    merge_partials,
    reference_sets,
    utility_partial,
)
from transforms.tag_instruct.verify import Failure

_NS = f"{METRICS_NAMESPACE}.{core.STAGE}"
_REJ, _PAIR, _EVENT = "rej", "pair", "event"


def _counter(name: str, n: int = 1) -> None:
    beam.metrics.Metrics.counter(_NS, name).inc(n)


class _Embed:
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


def _reject(item: dict[str, Any] | None, row: dict[str, Any], failure: Failure, step: str,
            round_no: int) -> Iterator[Any]:
    _counter(f"dropped_{failure.reason}")
    yield beam.pvalue.TaggedOutput(_REJ, {
        "row": row, "round": round_no, "reason": failure.reason,
        "detail": core.reject_detail(item, failure, step, round_no)})
    yield beam.pvalue.TaggedOutput(_EVENT, {"round": round_no, "kind": "rejected",
                                            "reason": failure.reason})


class _StartFn(beam.DoFn):
    """Example row → round item (or rejected: no instruction)."""

    def __init__(self, round_no: int):
        self._round = round_no

    def process(self, row: dict[str, Any]) -> Iterator[Any]:
        _counter("rows_in")
        yield beam.pvalue.TaggedOutput(_EVENT, {"round": self._round, "kind": "input"})
        item = core.start_item(row, self._round)
        if isinstance(item, Failure):
            yield from _reject(None, row, item, "start", self._round)
        else:
            yield item


class _AfterFn(beam.DoFn):
    """ChatResult of one step → the item for the next step, a rejection, a pair, events."""

    def __init__(self, step: str, cfg: TagInstructConfig, round_no: int, embeddings: Any):
        self._step, self._cfg, self._round = step, cfg, round_no
        self._embed = _Embed(embeddings)

    def process(self, result: Any, refs: dict[str, Any] | None = None) -> Iterator[Any]:
        item = dict(result.payload)
        step, cfg = self._step, self._cfg
        pair = None
        if step == "compress":
            out: Any = core.after_compress(item, result, cfg)
            if not isinstance(out, Failure):
                yield beam.pvalue.TaggedOutput(_EVENT, {"round": self._round, "kind": "compressed",
                                                        "tags": out["tags_before"]})
        elif step == "expand":
            ref_sets = ReferenceSets(top=tuple(refs["top"]), bottom=tuple(refs["bottom"]),
                                     pool_size=refs["pool_size"], min_count=refs["min_count"])
            out, pair = core.after_expand(item, result, ref_sets, self._embed, cfg)
            if not isinstance(out, Failure):
                yield beam.pvalue.TaggedOutput(_EVENT, {
                    "round": self._round, "kind": "expanded", "chosen": out["chosen_reward"],
                    "rewards": [c["reward"] for c in out["candidates"]]})
        elif step == "reconstruct":
            out = core.after_reconstruct(item, result, self._embed, cfg)
        elif step == "respond":
            out = core.after_respond(item, result, self._embed, cfg)
        else:
            out = core.after_retag(item, result, cfg)
        if pair is not None:
            _counter("pairs")
            yield beam.pvalue.TaggedOutput(_PAIR, pair)
            yield beam.pvalue.TaggedOutput(_EVENT, {"round": self._round, "kind": "pair"})
        if isinstance(out, Failure):
            yield from _reject(item, item["row"], out, step, self._round)
        else:
            yield out


def _accept(item: dict[str, Any]) -> Iterator[Any]:
    _counter("rows_out")
    row = core.new_example(item)
    yield row
    yield beam.pvalue.TaggedOutput(_EVENT, {"round": item["round"], "kind": "accepted",
                                            "tags_after": item["tags_after"]})


class _UtilityFn(beam.CombineFn):
    """(tags, tokens) rows → merged per-tag partial sums."""

    def create_accumulator(self) -> dict[str, list[float]]:
        return {}

    def add_input(self, acc: dict[str, list[float]], row: tuple[list[str], int]
                  ) -> dict[str, list[float]]:
        return merge_partials([acc, utility_partial([row])])

    def merge_accumulators(self, accs: Iterable[dict[str, list[float]]]
                           ) -> dict[str, list[float]]:
        return merge_partials(accs)

    def extract_output(self, acc: dict[str, list[float]]) -> dict[str, list[float]]:
        return acc


def _refs_dict(table: UtilityTable, cfg: TagInstructConfig, source: str) -> dict[str, Any]:
    refs = reference_sets(table, cfg.reference_k, cfg.min_tag_count, cfg.fallback_min_count)
    return {**refs.as_dict(), "source": source, "tags": len(table.utility),
            "top_utility": [round(table.utility[t], 4) for t in refs.top],
            "bottom_utility": [round(table.utility[t], 4) for t in refs.bottom]}


def _sorted_batches(rows: list[dict[str, Any]], size: int,
                    to_batch: Callable[[list[dict[str, Any]]], pa.RecordBatch]
                    ) -> Iterator[pa.RecordBatch]:
    rows = sorted(rows, key=lambda r: r["id"])
    for start in range(0, len(rows), size):
        yield to_batch(rows[start:start + size])


def _rejected_batches(rejs: list[dict[str, Any]], size: int) -> Iterator[pa.RecordBatch]:
    rejs = sorted(rejs, key=lambda r: (r["round"], r["row"]["id"], r["reason"]))
    for start in range(0, len(rejs), size):
        chunk = rejs[start:start + size]
        batch = examples_to_batch([r["row"] for r in chunk])
        yield reject_rows(batch, core.STAGE, [r["reason"] for r in chunk],
                          [r["detail"] for r in chunk])


class TagInstructStage(beam.PTransform):
    """Example batches → {EXAMPLES, PAIRS, REJECTED, DEADLETTER, REPORT} (see module doc)."""

    def __init__(self, config: TagInstructConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.cfg, self.ctx = config, ctx

    def _generate_transform(self, step: str) -> beam.PTransform:
        role = "policy" if step == "expand" else "teacher"
        return GenerateStep(self.ctx, stage=core.STAGE, step=step, role=role)

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, ctx = self.cfg, self.ctx
        p = batches.pipeline
        examples, pairs, rejected, deadletter, events = [], [], [], [], []
        refs = None
        if cfg.utility_path:
            table = load_utility(cfg.utility_path)
            refs = p | "UtilityFromFile" >> beam.Create([_refs_dict(table, cfg, "file")])
        rows = batches | "Rows" >> beam.FlatMap(lambda b: b.to_pylist())
        for r in range(1, cfg.rounds + 1):
            started = rows | f"R{r}Start" >> beam.ParDo(_StartFn(r)).with_outputs(
                _REJ, _EVENT, main="items")
            rejected.append(started[_REJ])
            events.append(started[_EVENT])
            items = started["items"]
            for step in ("compress", "expand", "reconstruct", "respond", "retag"):
                label = f"R{r}{step.capitalize()}"
                gen = (items
                       | f"{label}Request" >> beam.Map(
                           lambda it, step=step: core.build_request(step, it, cfg, ctx.seed))
                       | f"{label}Generate" >> self._generate_transform(step))
                # attribute failed calls to this stage (the step is in record_id: id|rN|step)
                deadletter.append(gen[DEADLETTER] | f"{label}DeadStage" >> beam.Map(
                    lambda d: {**d, "stage": core.STAGE}))
                events.append(gen[DEADLETTER] | f"{label}DeadEvent" >> beam.Map(
                    lambda _, r=r, step=step: {"round": r, "kind": "deadletter", "step": step}))
                side = {"refs": beam.pvalue.AsSingleton(refs)} if step == "expand" else {}
                out = gen[MAIN] | f"{label}Parse" >> beam.ParDo(
                    _AfterFn(step, cfg, r, ctx.embeddings), **side).with_outputs(
                    _REJ, _PAIR, _EVENT, main="items")
                rejected.append(out[_REJ])
                events.append(out[_EVENT])
                pairs.append(out[_PAIR])
                items = out["items"]
                if step == "compress" and refs is None:
                    refs = (items
                            | f"R{r}UtilityRows" >> beam.FlatMap(
                                lambda it: [u] if (u := core.utility_row(it)) else [])
                            | f"R{r}Utility" >> beam.CombineGlobally(_UtilityFn())
                            | f"R{r}RefSets" >> beam.Map(
                                lambda part: _refs_dict(UtilityTable.from_partial(part), cfg,
                                                        "corpus")))
            accepted = items | f"R{r}Accept" >> beam.ParDo(_accept).with_outputs(
                _EVENT, main="rows")
            examples.append(accepted["rows"])
            events.append(accepted[_EVENT])
            rows = accepted["rows"]

        size = cfg.batch_rows
        out_examples = (examples | "AllExamples" >> beam.Flatten()
                        | "ExamplesList" >> beam.combiners.ToList()
                        | "ExampleBatches" >> beam.FlatMap(_sorted_batches, size,
                                                           examples_to_batch))
        out_pairs = (pairs | "AllPairs" >> beam.Flatten()
                     | "PairsList" >> beam.combiners.ToList()
                     | "PairBatches" >> beam.FlatMap(_sorted_batches, size, pairs_to_batch))
        out_rejected = (rejected | "AllRejected" >> beam.Flatten()
                        | "RejectedList" >> beam.combiners.ToList()
                        | "RejectedBatches" >> beam.FlatMap(_rejected_batches, size))
        report = (events | "AllEvents" >> beam.Flatten()
                  | "EventsList" >> beam.combiners.ToList()
                  | "Report" >> beam.Map(lambda evs, u: build_report(evs, cfg.rounds, u),
                                         beam.pvalue.AsSingleton(refs)))
        return {EXAMPLES: out_examples, PAIRS: out_pairs, REJECTED: out_rejected,
                DEADLETTER: deadletter | "AllDeadletter" >> beam.Flatten(), REPORT: report}
