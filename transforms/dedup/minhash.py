"""MinHash signatures for a whole batch of texts at once (numpy, no per-document objects).

Reads texts, writes an (n, num_perm) uint32 signature matrix and a mask of documents that had at
least one shingle. Texts are folded (NFKC, lower case, punctuation → space, whitespace runs
collapsed): ASCII texts by byte tables, the rest with pyarrow compute; every word is hashed from
its UTF-8 bytes in one vectorized pass over a prefix sum. Word n-gram shingle hashes are
combined from those; character n-grams (shingles.py) serve `unit="char"`, and `unit="auto"`
gives them to texts of at most `char_max_words` words (one typo breaks many word n-grams of a
short text) while longer texts keep word n-grams; `mask_numbers` reads every number as "0".
Shingle hashes are mixed with the MurmurHash3 finalizer, and permuted with
datasketch's "affine32" scheme (h → a·h + b mod 2³², a odd; a, b drawn from
`numpy.random.RandomState(seed)` exactly as datasketch does), all permutations applied as one
numpy operation per block of shingles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from transforms.dedup.shingles import (
    char_shingles,
    flat_strings,
    fmix64,
    fold_arrow,
    mask_numbers,
    splice_segments,
)
from transforms.dedup.template import drop_shingles

__all__ = ["MinHasher", "estimated_jaccard", "fmix64", "fold_arrow"]

# Shingles per block when applying permutations: a (num_perm, chunk) uint32 block of ~4 MiB.
_CHUNK_SHINGLES = 8192
_EMPTY = np.uint32(0xFFFFFFFF)


# Byte tables for folding ASCII text: lower-case letters; word bytes are [a-z0-9_] and every
# byte >= 0x80 (only non-ASCII texts, already folded, contain those).
_LOWER = np.arange(256, dtype=np.uint64)
_LOWER[ord("A"):ord("Z") + 1] += 32
_WORD_BYTE = np.zeros(256, dtype=bool)
for _lo, _hi in (("a", "z"), ("A", "Z"), ("0", "9"), ("_", "_")):
    _WORD_BYTE[ord(_lo):ord(_hi) + 1] = True
_WORD_BYTE[0x80:] = True
# Bytes of text per slice of `MinHasher.signatures` and of _word_hashes (whose position tables
# take 8 bytes per byte of text).
_CHUNK_BYTES = 1 << 22


def _string_array(texts: pa.Array | pa.ChunkedArray | Sequence[str]) -> pa.Array:
    """`texts` as one string array without nulls."""
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(
        list(texts), pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.fill_null(arr, "")


@lru_cache(maxsize=8)
def _powers(seed: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """(P^k, P^-k) mod 2^64 for k < length, for an odd P drawn from `seed`."""
    rng = np.random.RandomState(seed & 0x7FFFFFFF)
    base = int(rng.randint(1 << 30, 1 << 62, dtype=np.int64)) | 1
    inverse = pow(base, -1, 1 << 64)
    out = []
    for b in (base, inverse):
        powers = np.ones(max(length, 1), dtype=np.uint64)
        step, filled = b, 1
        with np.errstate(over="ignore"):
            while filled < length:  # doubling: powers[f:2f] = powers[:f] * b^f
                n = min(filled, length - filled)
                powers[filled:filled + n] = powers[:n] * np.uint64(step)
                step, filled = step * step % (1 << 64), filled + n
        out.append(powers)
    return out[0], out[1]


def _byte_slices(offsets: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive text ranges [lo, hi) of at most `budget` bytes each (a longer text alone)."""
    n, out, lo = len(offsets) - 1, [], 0
    while lo < n:
        hi = int(np.searchsorted(offsets, offsets[lo] + budget, side="right")) - 1
        hi = min(max(hi, lo + 1), n)
        out.append((lo, hi))
        lo = hi
    return out


def _word_hashes(data: np.ndarray, offsets: np.ndarray, seed: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of every word in order, words per text) for the texts at `offsets` in
    `data`. A word is a maximal run of word bytes inside one text; its hash is the polynomial
    Σ lower(byte)+1 · P^pos read off one prefix sum (scaled by P^-start), plus its length,
    then fmix64."""
    first, last = int(offsets[0]), int(offsets[-1])
    rel = offsets - first
    size = last - first
    if size == 0:
        return np.zeros(0, np.uint64), np.zeros(len(offsets) - 1, np.int64)
    chunk = data[first:last]
    word = np.take(_WORD_BYTE, chunk)
    before = np.empty(size, dtype=bool)
    before[0] = False
    before[1:] = word[:-1]
    after = np.empty(size, dtype=bool)
    after[-1] = False
    after[:-1] = word[1:]
    inner = rel[1:-1]
    before[inner[inner < size]] = False  # a word never runs across two texts
    after[inner[inner > 0] - 1] = False
    starts = np.flatnonzero(word & ~before)
    ends = np.flatnonzero(word & ~after) + 1
    powers, inverses = _powers(seed, 1 << max(22, size.bit_length()))  # few sizes: cached
    prefix = np.zeros(size + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum((_LOWER[chunk] + np.uint64(1)) * powers[:size], out=prefix[1:])
        h = (prefix[ends] - prefix[starts]) * inverses[starts]
        h += (ends - starts).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    counts = np.diff(np.searchsorted(starts, rel))
    return fmix64(h), counts.astype(np.int64)


@dataclass(frozen=True)
class MinHasher:
    """Batch MinHash: `signatures(texts)` → (uint32[n, num_perm], nonempty bool[n])."""

    num_perm: int = 128
    seed: int = 1
    ngram: int = 5  # words per word shingle
    unit: str = "word"  # "word", "char" or "auto" (char shingles for texts of few words)
    char_ngram: int = 5  # characters per char shingle
    char_max_words: int = 0  # "auto": texts of at most this many words get char shingles
    mask_numbers: bool = False  # every number reads as "0" (a changed number stays a duplicate)
    threads: int = 1  # > 1: contiguous slices of the texts in threads (numpy/arrow drop the GIL)
    a: np.ndarray = field(init=False, repr=False, compare=False)
    b: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        gen = np.random.RandomState(self.seed)  # datasketch affine32 permutation draw
        a = gen.randint(0, 1 << 31, self.num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        b = gen.randint(0, 1 << 32, self.num_perm, dtype=np.uint32)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    def shingle_hashes(self, texts: pa.Array | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(uint32 shingle hashes, offsets int64[n+1]) for the folded texts."""
        arr = _string_array(texts)
        if self.mask_numbers:
            arr = mask_numbers(arr)
        if self.unit == "char":
            return char_shingles(fold_arrow(arr), self.char_ngram, self.seed)
        h, offsets, words = self._word_shingles(arr)
        if self.unit == "word":
            return h, offsets
        if self.unit != "auto":
            raise ValueError(f"unknown shingle unit {self.unit!r}; expected word, char or auto")
        short = (words > 0) & (words <= self.char_max_words)
        if not short.any():
            return h, offsets
        ch, ch_off = char_shingles(fold_arrow(arr.filter(pa.array(short))), self.char_ngram,
                                   self.seed)
        return splice_segments(h, offsets, ch, ch_off, short)

    def _word_shingles(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(shingle hashes, offsets, words per text). Words of the folded texts, hashed straight from the UTF-8 bytes. ASCII texts are
        folded by byte tables (a word = a run of [a-z0-9_] after lower-casing); the others go
        through fold_arrow and have their words re-joined by single spaces first. Texts are
        taken in slices of about _CHUNK_BYTES bytes to bound memory."""
        ascii_mask = pc.fill_null(pc.string_is_ascii(arr), True)
        if not pc.all(ascii_mask).as_py():
            folded = fold_arrow(arr.filter(pc.invert(ascii_mask)))
            joined = pc.binary_join(pc.utf8_split_whitespace(folded), " ")
            arr = pc.replace_with_mask(arr, pc.invert(ascii_mask), joined)
        offsets, data = flat_strings(arr)
        hashes, counts = [], []
        for lo, hi in _byte_slices(offsets, _CHUNK_BYTES):
            wh, cnt = _word_hashes(data, offsets[lo:hi + 1], self.seed)
            hashes.append(wh)
            counts.append(cnt)
        words = np.concatenate(counts) if counts else np.zeros(len(arr), np.int64)
        wh = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        return (*self._combine(wh, words), words)

    def _combine(self, wh: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Word hashes (grouped by doc, counts per doc) → word n-gram shingle hashes: one
        window sum over the flat array (contiguous slices), windows crossing documents dropped;
        a document shorter than n words gets one shingle of all its words."""
        n = self.ngram
        rng = np.random.RandomState((self.seed + 7919) & 0x7FFFFFFF)
        mults = rng.randint(1 << 30, 1 << 62, size=n, dtype=np.int64).astype(np.uint64) | 1
        total = len(wh)
        padded = np.concatenate([wh, np.zeros(n, np.uint64)])
        acc = np.zeros(total, np.uint64)
        tmp = np.empty(total, np.uint64)
        with np.errstate(over="ignore"):
            for j in range(n):
                np.multiply(padded[j:j + total], mults[j], out=tmp)
                acc += tmp
        ends = np.cumsum(counts)
        starts = ends - counts
        # a window is valid unless it starts in the last n-1 words of its document
        valid = np.ones(total, bool)
        for k in range(1, n):
            valid[(ends - k)[counts >= k]] = False
        short = np.flatnonzero((counts > 0) & (counts < n))
        if len(short):  # redo the windows of short docs without their neighbours' words
            first = starts[short]
            fix = np.zeros(len(short), np.uint64)
            with np.errstate(over="ignore"):
                for j in range(n - 1):
                    inside = j < counts[short]
                    fix += np.where(inside, padded[first + j] * mults[j], np.uint64(0))
            acc[first] = fix
            valid[first] = True
        shingle_counts = np.where(counts >= n, counts - n + 1, (counts > 0).astype(np.int64))
        h = fmix64(acc[valid])
        offsets = np.concatenate([[0], np.cumsum(shingle_counts)]).astype(np.int64)
        return (h >> np.uint64(32)).astype(np.uint32), offsets

    def signatures_from_hashes(self, h: np.ndarray,
                               offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply all permutations to a cache-sized block of shingles at once (a (num_perm,
        chunk) uint32 block) and take each document's minimum with one reduceat."""
        n_docs = len(offsets) - 1
        sig_t = np.full((self.num_perm, n_docs), _EMPTY, dtype=np.uint32)
        nonempty = np.diff(offsets) > 0
        docs = np.flatnonzero(nonempty)
        a, b = self.a[:, None], self.b[:, None]
        buf = np.empty((self.num_perm, _CHUNK_SHINGLES), dtype=np.uint32)  # reused per block
        i = 0
        while i < len(docs):
            # a run of whole documents with about _CHUNK_SHINGLES shingles (at least one doc)
            lo = offsets[docs[i]]
            j = int(np.searchsorted(offsets[docs + 1], lo + _CHUNK_SHINGLES, side="right"))
            j = max(j, i + 1)
            chunk_docs = docs[i:j]
            hi = offsets[chunk_docs[-1] + 1]
            if hi - lo > buf.shape[1]:  # one document longer than a block
                buf = np.empty((self.num_perm, hi - lo), dtype=np.uint32)
            block = buf[:, :hi - lo]
            np.multiply(a, h[None, lo:hi], out=block)
            np.add(block, b, out=block)
            sig_t[:, chunk_docs] = np.minimum.reduceat(block, offsets[chunk_docs] - lo, axis=1)
            i = j
        return np.ascontiguousarray(sig_t.T), nonempty

    def signatures(self, texts: pa.Array | Sequence[str],
                   drop: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Signatures of consecutive slices of at most _CHUNK_BYTES of text each, so every
        temporary array stays small (reused by the allocator instead of freshly mapped); with
        threads > 1 the text is cut into equal slices, a multiple of `threads` of them, spread
        over a thread pool (numpy and pyarrow release the GIL). `drop` ((shingle hashes,
        offsets) → mask)
        leaves shingles out (template.py); a text left without any is empty."""
        arr = _string_array(texts)
        offsets = flat_strings(arr)[0]
        budget = _CHUNK_BYTES
        if self.threads > 1:  # equal slices, a multiple of `threads` of them
            total = int(offsets[-1] - offsets[0])
            pieces = self.threads * -(-total // (self.threads * _CHUNK_BYTES))
            budget = max(1 << 16, -(-total // max(pieces, 1)))
        slices = _byte_slices(offsets, budget)
        sig = np.full((len(arr), self.num_perm), _EMPTY, dtype=np.uint32)
        nonempty = np.zeros(len(arr), dtype=bool)

        def one(bounds: tuple[int, int]) -> None:
            lo, hi = bounds
            h, offsets = self.shingle_hashes(arr[lo:hi])
            if drop is not None:
                h, offsets = drop_shingles(h, offsets, drop(h, offsets))
            sig[lo:hi], nonempty[lo:hi] = self.signatures_from_hashes(h, offsets)

        if self.threads > 1 and len(slices) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(one, slices))
        else:
            for bounds in slices:
                one(bounds)
        return sig, nonempty


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise fraction of equal slots of two (m, num_perm) signature matrices."""
    return (sig_a == sig_b).mean(axis=-1)
