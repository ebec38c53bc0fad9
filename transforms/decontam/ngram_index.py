"""Index of hashed token n-grams of benchmark items, built with numpy.

Tokens get dense ids from the benchmark vocabulary (pyarrow hash lookup; a token the benchmarks
never use gets id 0, so an n-gram holding one can match nothing and is skipped). An n-gram's hash
is a polynomial of its ids mod 2^64 followed by a splitmix64 finalizer. The index keeps the
sorted unique hashes, and per hash a CSR list of (item, position) postings; a bitmap over the top
hash bits rejects most misses before the binary search.

Very large benchmark sets: the arrays are a few bytes per n-gram (about 20 MB per million), so a
single worker holds hundreds of thousands of items. Beyond that, shard by the top bits of the
hash: key each training n-gram by `hash >> (64 - k)`, co-group with the index shard of the same
key, and merge the (row, item, position) postings per row before applying the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.decontam.benchmarks import BenchmarkItems
from transforms.decontam.tokens import NUMBER_TOKEN, tokenize_array

_MULT = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _finalize(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


def window_hashes(ids: np.ndarray, doc: np.ndarray, n: int,
                  number_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the n-token windows that lie inside one text, hold no unknown token (id 0) and
    are not numbers only; and each window's start in the flat token array."""
    total = len(ids)
    w = total - n + 1
    if w <= 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    valid = doc[:w] == doc[n - 1:]
    unknown = np.concatenate(([0], np.cumsum(ids == 0)))
    valid &= (unknown[n:] - unknown[:w]) == 0
    if number_id:
        numbers = np.concatenate(([0], np.cumsum(ids == number_id)))
        valid &= (numbers[n:] - numbers[:w]) < n
    starts = np.flatnonzero(valid)
    if len(starts) == 0:
        return np.zeros(0, np.uint64), starts
    dense = len(starts) * 2 > w
    with np.errstate(over="ignore"):
        h = np.zeros(w if dense else len(starts), np.uint64)
        for k in range(n):
            h = h * _MULT + (ids[k:k + w] if dense else ids[starts + k])
        h = _finalize(h)
    return (h[starts] if dense else h), starts


@dataclass
class Vocab:
    """Benchmark tokens → dense ids 1..V (0 = a token no benchmark item uses)."""

    values: pa.Array

    def lookup(self, tokens: pa.Array) -> np.ndarray:
        idx = pc.index_in(tokens, value_set=self.values)
        return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(np.int64) \
            .astype(np.uint64) + np.uint64(1)

    def number_id(self) -> int:
        return int(self.lookup(pa.array([NUMBER_TOKEN]))[0])

    def strings(self, ids: np.ndarray) -> list[str]:
        return self.values.take(pa.array(ids.astype(np.int64) - 1)).to_pylist()


@dataclass
class NgramIndex:
    """Sorted unique n-gram hashes with CSR postings of (item, position of the n-gram)."""

    n: int
    keys: np.ndarray
    offsets: np.ndarray
    item: np.ndarray
    pos: np.ndarray
    dropped_common: int = 0
    _bitmap: np.ndarray = field(default_factory=lambda: np.zeros(1, bool), repr=False)
    _shift: np.uint64 = np.uint64(63)

    @classmethod
    def build(cls, n: int, hashes: np.ndarray, item: np.ndarray, pos: np.ndarray,
              max_item_share: int | None) -> NgramIndex:
        order = np.lexsort((pos, item, hashes))
        hashes, item, pos = hashes[order], item[order], pos[order]
        keys, first = np.unique(hashes, return_index=True)
        offsets = np.append(first, len(hashes)).astype(np.int64)
        dropped = 0
        if max_item_share is not None and len(keys):
            # distinct items per key: postings are sorted by (key, item)
            new_item = np.ones(len(item), bool)
            new_item[1:] = (item[1:] != item[:-1]) | (hashes[1:] != hashes[:-1])
            per_key = np.add.reduceat(new_item, first) if len(first) else np.zeros(0, np.int64)
            common = per_key > max_item_share
            dropped = int(common.sum())
            if dropped:
                keep_post = np.repeat(~common, np.diff(offsets))
                keys = keys[~common]
                counts = np.diff(offsets)[~common]
                offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
                item, pos = item[keep_post], pos[keep_post]
        bits = int(min(27, max(10, np.ceil(np.log2(max(len(keys), 1))) + 3)))
        shift = np.uint64(64 - bits)
        bitmap = np.zeros(1 << bits, bool)
        bitmap[(keys >> shift).astype(np.int64)] = True
        return cls(n, keys, offsets, item.astype(np.int32), pos.astype(np.int32), dropped,
                   bitmap, shift)

    def find(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indices into `hashes` found in the index, their key indices)."""
        if len(self.keys) == 0 or len(hashes) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        cand = np.flatnonzero(self._bitmap[(hashes >> self._shift).astype(np.int64)])
        if len(cand) == 0:
            return cand, cand
        q = hashes[cand]
        at = np.searchsorted(self.keys, q)
        at[at == len(self.keys)] = 0
        hit = self.keys[at] == q
        return cand[hit], at[hit]


@dataclass
class BenchmarkIndex:
    """Everything the rules need about the benchmark items, for one or more n."""

    items: BenchmarkItems
    vocab: Vocab
    mask_numbers: bool
    token_ids: np.ndarray  # flat token ids of all items
    item_start: np.ndarray  # item i's tokens are token_ids[item_start[i]:item_start[i + 1]]
    item_len: np.ndarray
    number_id: int
    by_n: dict[int, NgramIndex]

    @classmethod
    def build(cls, items: BenchmarkItems, ns: list[int], mask_numbers: bool,
              max_item_share: int | None) -> BenchmarkIndex:
        tokens, doc = tokenize_array(pa.array(items.texts, pa.string()), mask_numbers)
        vocab = Vocab(pc.unique(tokens).sort())
        ids = vocab.lookup(tokens)
        item_len = np.bincount(doc, minlength=len(items)).astype(np.int64)
        item_start = np.concatenate(([0], np.cumsum(item_len))).astype(np.int64)
        number_id = vocab.number_id() if mask_numbers else 0
        by_n = {}
        for n in sorted(set(ns)):
            hashes, starts = window_hashes(ids, doc, n, number_id)
            item = doc[starts]
            by_n[n] = NgramIndex.build(n, hashes, item, starts - item_start[item],
                                       max_item_share)
        return cls(items, vocab, mask_numbers, ids, item_start, item_len, number_id, by_n)

    def encode(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of `texts` (flat) and each token's text index."""
        tokens, doc = tokenize_array(texts, self.mask_numbers)
        return self.vocab.lookup(tokens), doc

    def span_text(self, item: int, start: int, end: int) -> str:
        """Normalized tokens [start, end) of one item, joined with spaces."""
        base = int(self.item_start[item])
        return " ".join(self.vocab.strings(self.token_ids[base + start:base + end]))

    def stats(self) -> dict[str, object]:
        return {"items": len(self.items), "vocab": len(self.vocab.values),
                "ngrams": {str(n): int(len(ix.keys)) for n, ix in self.by_n.items()},
                "ngrams_dropped_common": {str(n): ix.dropped_common
                                          for n, ix in self.by_n.items()}}
