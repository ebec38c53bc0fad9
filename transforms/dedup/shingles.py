"""Shingle hashes of folded texts, vectorized over a whole batch (numpy + pyarrow compute).

Folding (NFKC, lower case, punctuation → space, whitespace runs collapsed), number masking
(every number reads as "0"), character n-gram shingles hashed straight from the folded UTF-8
bytes, and splicing two shingle sets (per text, one or the other) into one. Word shingles live
in minhash.py beside the byte tables they are computed with.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_PUNCT = r"[^\p{L}\p{M}\p{N}_\s]"
# A number: digits, optionally grouped or with decimals ("1,000", "3.5"); masked as one "0".
_NUMBER = r"\p{Nd}+(?:[.,]\p{Nd}+)*"


def fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (a bijection that spreads every input bit); returns a new
    array, computed in place in it."""
    h = h ^ (h >> np.uint64(33))
    tmp = np.empty_like(h)
    for mult in (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)):
        np.multiply(h, mult, out=h)
        np.right_shift(h, np.uint64(33), out=tmp)
        np.bitwise_xor(h, tmp, out=h)
    return h



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



def flat_strings(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
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


def mask_numbers(arr: pa.Array) -> pa.Array:
    """Every number (digit runs, with "," or "." groups) replaced by a single "0"."""
    return pc.replace_substring_regex(arr, _NUMBER, "0")


def segment_index(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat positions start, start+1, ..., start+length-1 of every segment, in order."""
    total = int(lengths.sum())
    return np.repeat(starts, lengths) + (
        np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths))


def char_shingles(folded: pa.Array, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 hashes of every character n-gram, offsets int64[len+1]) of folded texts, with
    whitespace runs collapsed to one space first. A text shorter than n bytes gets one shingle
    of all of it; an empty text none. Grams are over UTF-8 bytes."""
    collapsed = pc.replace_substring_regex(folded, r"\s+", " ")
    off, data = flat_strings(collapsed)
    off = off - off[0]
    lengths = np.diff(off)
    gram_counts = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
    starts = segment_index(off[:-1], gram_counts)
    glen = np.repeat(np.minimum(lengths, n), gram_counts)
    h = hash_segments(data, starts, glen, seed)
    offsets = np.concatenate([[0], np.cumsum(gram_counts)]).astype(np.int64)
    return (h >> np.uint64(32)).astype(np.uint32), offsets


def splice_segments(h: np.ndarray, offsets: np.ndarray, other: np.ndarray,
                    other_offsets: np.ndarray, use_other: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per text, the segment of `h` or (where `use_other`) the next segment of `other`, whose
    texts are exactly the `use_other` ones in order. Returns (hashes, offsets)."""
    counts = np.diff(offsets)
    starts = offsets[:-1].copy()
    counts[use_other] = np.diff(other_offsets)
    starts[use_other] = other_offsets[:-1] + len(h)
    flat = np.concatenate([h, other])[segment_index(starts, counts)]
    return flat, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
