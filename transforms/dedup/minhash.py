"""MinHash signatures for a whole batch of texts at once (numpy, no per-document objects).

Reads texts, writes an (n, num_perm) uint32 signature matrix and a mask of documents that had at
least one shingle. Texts are folded (NFKC, lower case, punctuation → space, whitespace runs
collapsed) with pyarrow compute, split into words, and every word is hashed from its UTF-8 bytes
in one vectorized pass. Word n-gram (or character n-gram) shingle hashes are combined from those,
mixed with the MurmurHash3 finalizer, and permuted with datasketch's "affine32" scheme
(h → a·h + b mod 2³², a odd; a, b drawn from `numpy.random.RandomState(seed)` exactly as
datasketch does), all permutations applied as one numpy operation per chunk of shingles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_PUNCT = r"[^\p{L}\p{M}\p{N}_\s]"
# Shingles per block when applying permutations: a (num_perm, chunk) uint32 block of ~4 MiB.
_CHUNK_SHINGLES = 8192
_EMPTY = np.uint32(0xFFFFFFFF)


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (a bijection that spreads every input bit)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def fold_arrow(texts: pa.Array | Sequence[str]) -> pa.Array:
    """Vectorized folding close to schemas.text.fold_text: NFKC, lower case, punctuation removed,
    whitespace trimmed (runs are handled by the split)."""
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(list(texts),
                                                                               pa.string())
    arr = pc.fill_null(arr, "")
    arr = pc.utf8_normalize(arr, form="NFKC")
    arr = pc.utf8_lower(arr)
    arr = pc.replace_substring_regex(arr, _PUNCT, " ")
    return pc.utf8_trim_whitespace(arr)


def _flat_strings(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64[n+1], data uint8) of a string array (no copies beyond int64 widening)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string()) if arr.type == pa.string() else arr
    bufs = arr.buffers()
    n = len(arr)
    offsets = np.frombuffer(bufs[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    data = (np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None
            else np.zeros(0, np.uint8))
    return offsets, data


def hash_segments(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                  seed: int) -> np.ndarray:
    """A 64-bit hash of each byte segment data[start:start+length], vectorized:
    polynomial Σ byte·P^pos mod 2⁶⁴ plus the length, then fmix64."""
    nz = lengths > 0
    if not nz.all():
        out = np.zeros(len(starts), np.uint64)
        out[nz] = hash_segments(data, starts[nz], lengths[nz], seed)
        return out
    if len(starts) == 0:
        return np.zeros(0, np.uint64)
    total = int(lengths.sum())
    pos = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    idx = np.repeat(starts, lengths) + pos
    rng = np.random.RandomState(seed & 0x7FFFFFFF)
    base = np.uint64(rng.randint(1 << 30, 1 << 62, dtype=np.int64)) | np.uint64(1)
    maxlen = int(lengths.max())
    powers = np.ones(maxlen, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(1, maxlen):  # small: the longest token / gram in the batch
            powers[i] = powers[i - 1] * base
        terms = (data[idx].astype(np.uint64) + np.uint64(1)) * powers[pos]
    sums = np.add.reduceat(terms, np.cumsum(lengths) - lengths) if total else terms
    return fmix64(sums + lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))


@dataclass(frozen=True)
class MinHasher:
    """Batch MinHash: `signatures(texts)` → (uint32[n, num_perm], nonempty bool[n])."""

    num_perm: int = 128
    seed: int = 1
    ngram: int = 5
    unit: str = "word"  # "word" or "char"
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
        arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(
            list(texts), pa.string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = pc.fill_null(arr, "")
        if self.unit == "char":
            return self._char_shingles(fold_arrow(arr))
        return self._word_shingles(arr)

    def _word_shingles(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Split raw text on whitespace, fold each distinct token once (a token may fold to zero
        or several words), hash each distinct folded word once, expand back to documents."""
        tokens = pc.utf8_split_whitespace(arr)
        tok_counts = np.diff(tokens.offsets.to_numpy()).astype(np.int64)
        enc = pc.dictionary_encode(tokens.flatten())
        tok_idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        folded = fold_arrow(enc.dictionary)
        words_of_tok = pc.utf8_split_whitespace(folded)
        w_off, data = _flat_strings(words_of_tok.flatten())
        w_len = np.diff(w_off)
        word_hash = hash_segments(data, w_off[:-1], w_len, self.seed)
        list_off = words_of_tok.offsets.to_numpy().astype(np.int64)
        tok_start = list_off[:-1] - list_off[0]
        # a token that folds to nothing ("=", "--") splits into one empty string: no words
        per_tok = np.where(pc.utf8_length(folded).to_numpy(zero_copy_only=False) == 0, 0,
                           np.diff(list_off))
        # expand every token occurrence to the hashes of its folded words
        occ_n = per_tok[tok_idx]
        total = int(occ_n.sum())
        rel = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(occ_n) - occ_n, occ_n)
        wh = word_hash[np.repeat(tok_start[tok_idx], occ_n) + rel]
        # words per document = sum over its tokens
        cum = np.concatenate([[0], np.cumsum(occ_n)])
        doc_tok_end = np.cumsum(tok_counts)
        counts = cum[doc_tok_end] - cum[doc_tok_end - tok_counts]
        return self._combine(wh, counts.astype(np.int64))

    def _char_shingles(self, folded: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        collapsed = pc.replace_substring_regex(folded, r"\s+", " ")
        off, data = _flat_strings(collapsed)
        off = off - off[0]
        lengths = np.diff(off)
        n = self.ngram
        # one gram per start position that leaves n bytes; texts shorter than n: one gram
        gram_counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
        starts = np.repeat(off[:-1], gram_counts) + (
            np.arange(int(gram_counts.sum())) - np.repeat(np.cumsum(gram_counts) - gram_counts,
                                                          gram_counts))
        glen = np.repeat(np.minimum(lengths, n), gram_counts)
        h = hash_segments(data, starts, glen, self.seed)
        offsets = np.concatenate([[0], np.cumsum(gram_counts)]).astype(np.int64)
        return (h >> np.uint64(32)).astype(np.uint32), offsets

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
        with np.errstate(over="ignore"):
            for j in range(n):
                acc += padded[j:j + total] * mults[j]
        starts = np.cumsum(counts) - counts
        pos_in_doc = np.arange(total, dtype=np.int64) - np.repeat(starts, counts)
        doc_len = np.repeat(counts, counts)
        valid = pos_in_doc <= doc_len - n
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
        i = 0
        while i < len(docs):
            # a run of whole documents with about _CHUNK_SHINGLES shingles (at least one doc)
            lo = offsets[docs[i]]
            j = int(np.searchsorted(offsets[docs + 1], lo + _CHUNK_SHINGLES, side="right"))
            j = max(j, i + 1)
            chunk_docs = docs[i:j]
            hi = offsets[chunk_docs[-1] + 1]
            block = np.multiply(a, h[None, lo:hi])
            block += b
            sig_t[:, chunk_docs] = np.minimum.reduceat(block, offsets[chunk_docs] - lo, axis=1)
            i = j
        return np.ascontiguousarray(sig_t.T), nonempty

    def signatures(self, texts: pa.Array | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        n = len(texts)
        if self.threads > 1 and n >= 2048:
            from concurrent.futures import ThreadPoolExecutor

            bounds = np.linspace(0, n, self.threads + 1).astype(int)
            with ThreadPoolExecutor(self.threads) as pool:
                parts = list(pool.map(lambda se: self._signatures(texts[se[0]:se[1]]),
                                      zip(bounds[:-1], bounds[1:], strict=True)))
            return (np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]))
        return self._signatures(texts)

    def _signatures(self, texts: pa.Array | Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        h, offsets = self.shingle_hashes(texts)
        return self.signatures_from_hashes(h, offsets)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise fraction of equal slots of two (m, num_perm) signature matrices."""
    return (sig_a == sig_b).mean(axis=-1)
