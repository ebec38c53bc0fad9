"""Pure core of the decontam stage: one Example batch → kept rows and rejected rows.

Reads the messages column (user turns, or all turns with scope=conversation); each message is
tokenized on its own, so no n-gram spans two messages, and a row's coverage of an item is the
union over its messages. A row flagged by any rule is rejected with reason
`contaminated_<first rule in config order that flags it>` and a detail naming the benchmark,
item id, overlap and matched span; the paraphrase check (optional) runs on the rows the n-gram
rules kept. A batch that fails is retried row by row by ApplyBatchFn; a row that fails goes to
the dead letter.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.base import BatchResult, split_by_mask
from transforms.decontam.benchmarks import BenchmarkItems
from transforms.decontam.config import DecontamConfig
from transforms.decontam.ngram_index import BenchmarkIndex
from transforms.decontam.rules import Pairs, flagged, shared_pairs

STAGE = "decontam"
EXCERPT = 200


def row_texts(batch: pa.RecordBatch, scope: str) -> tuple[pa.Array, np.ndarray]:
    """The checked message texts of a batch (flat) and the row of each."""
    messages = batch.column("messages")
    flat = pc.list_flatten(messages)
    parent = pc.list_parent_indices(messages).to_numpy(zero_copy_only=False).astype(np.int64)
    content = flat.field("content")
    if scope == "prompt":
        is_user = pc.fill_null(pc.equal(flat.field("role"), "user"), False)
        content = content.filter(is_user)
        parent = parent[is_user.to_numpy(zero_copy_only=False)]
    return content, parent


class Detector:
    """Benchmark index + rules (+ paraphrase index), built once per worker process."""

    def __init__(self, config: DecontamConfig, items: BenchmarkItems,
                 embedder_factory: Callable[[], Any] | None = None):
        self.config = config
        self.items = items
        self.index = BenchmarkIndex.build(items, [r.n for r in config.rules],
                                          config.mask_numbers, config.max_item_share)
        self.paraphrase = None
        if config.paraphrase.enabled:
            from transforms.decontam.paraphrase import ParaphraseIndex

            if embedder_factory is None:
                raise ValueError("the paraphrase check needs an embedding model")
            self.paraphrase = ParaphraseIndex(items.texts, embedder_factory())

    def _match(self, item: int, rule: str, n: int, overlap: float, span: str) -> dict[str, Any]:
        return {"rule": rule, "n": n, "benchmark": self.items.benchmarks[self.items.bench[item]],
                "item_id": self.items.ids[item], "overlap": round(float(overlap), 4),
                "span": span}

    def find(self, batch: pa.RecordBatch) -> tuple[list[str | None], list[dict | None]]:
        """Per row: reject reason (None = clean) and detail."""
        n_rows = batch.num_rows
        content, parent = row_texts(batch, self.config.scope)
        ids, doc = self.index.encode(content)
        matches: dict[int, list[dict[str, Any]]] = {}
        reasons: list[str | None] = [None] * n_rows
        for rule in self.config.rules:
            pairs: Pairs = shared_pairs(self.index, rule.n, ids, doc, parent)
            hit = flagged(pairs, rule.min_coverage)
            if len(hit) == 0:
                continue
            # best first within a row: coverage desc, then item index
            hit = hit[np.lexsort((pairs.item[hit], -pairs.coverage[hit], pairs.row[hit]))]
            for k in hit:
                row = int(pairs.row[k])
                found = matches.setdefault(row, [])
                if reasons[row] is None:
                    reasons[row] = f"contaminated_{rule.name}"
                found.append({"_item": int(pairs.item[k]), "_pairs": pairs, "_k": int(k),
                              "rule": rule.name, "overlap": float(pairs.coverage[k])})
        if self.paraphrase is not None:
            self._paraphrase(content, parent, reasons, matches)
        return reasons, [self._detail(matches[r]) if r in matches else None
                         for r in range(n_rows)]

    def _paraphrase(self, content: pa.Array, parent: np.ndarray, reasons: list[str | None],
                    matches: dict[int, list[dict[str, Any]]]) -> None:
        texts: dict[int, list[str]] = {}
        for row, text in zip(parent.tolist(), content.to_pylist(), strict=True):
            if reasons[row] is None and text:
                texts.setdefault(row, []).append(text)
        rows = sorted(texts)
        threshold = self.config.paraphrase.threshold
        step = self.config.paraphrase.batch_rows
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            item, cos = self.paraphrase.best(["\n".join(texts[r]) for r in chunk])
            for row, i, c in zip(chunk, item.tolist(), cos.tolist(), strict=True):
                if c >= threshold:
                    reasons[row] = "contaminated_paraphrase"
                    matches[row] = [{"_item": i, "rule": "paraphrase", "overlap": c}]

    def _detail(self, found: list[dict[str, Any]]) -> dict[str, Any]:
        seen: set[int] = set()
        out = []
        for m in found:
            if m["_item"] in seen:
                continue
            seen.add(m["_item"])
            if len(out) < self.config.max_matches_per_row:
                out.append(m)
        listed = []
        for m in out:
            item = m["_item"]
            if "_pairs" in m:
                pairs: Pairs = m["_pairs"]
                start, end = pairs.longest_run(m["_k"])
                span, n = self.index.span_text(item, start, end), pairs.n
            else:
                span, n = "", None
            listed.append(self._match(item, m["rule"], n, m["overlap"], span))
        best = dict(listed[0])
        best["item_excerpt"] = self.items.texts[out[0]["_item"]][:EXCERPT]
        best["matches"] = listed
        best["num_matches"] = len(seen)
        return best

    def __call__(self, batch: pa.RecordBatch) -> BatchResult:
        return detect_batch(batch, self)


def detect_batch(batch: pa.RecordBatch, detector: Detector) -> BatchResult:
    """Kept rows and rejected rows (contaminated_*). A failure propagates to ApplyBatchFn,
    which retries row by row and dead-letters only the failing rows."""
    reasons, details = detector.find(batch)
    return split_by_mask(batch, [r is None for r in reasons], STAGE, reasons, details)


_CACHE: dict[str, Detector] = {}
_LOCK = threading.Lock()


def cached_detector(config_json: str, items: BenchmarkItems,
                    embeddings_json: str | None = None) -> Detector:
    """One Detector per process for the same config and items (DoFn setup calls this)."""
    digest = hashlib.sha256(config_json.encode())
    digest.update(json.dumps([items.benchmarks, items.bench, items.ids, items.texts]).encode())
    digest.update((embeddings_json or "").encode())
    key = digest.hexdigest()
    with _LOCK:
        if key not in _CACHE:
            config = DecontamConfig.model_validate_json(config_json)
            factory = None
            if config.paraphrase.enabled:
                def factory() -> Any:
                    from transforms.embed.config import EmbeddingConfig
                    from transforms.embed.model import Embedder

                    return Embedder(EmbeddingConfig.model_validate_json(embeddings_json)
                                    if embeddings_json else None)
            _CACHE[key] = Detector(config, items, factory)
        return _CACHE[key]
