"""LSH banding over MinHash signatures, as plain numpy.

Reads (n, num_perm) uint32 signatures; writes (n, bands) uint64 band keys, and candidate pairs
of rows that share a band bucket. Bands × rows come from datasketch's own optimisation
(`datasketch.lsh._optimal_param`, minimising weighted false-positive + false-negative area).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from transforms.dedup.minhash import fmix64

# Within one bucket, each member is paired with this many following members (in id order) and
# with the bucket's first member: every pair of a small bucket, bounded work on a huge one.
NEIGHBOURS = 16


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, fp_weight: float = 0.5,
               fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) exactly as datasketch.MinHashLSH chooses them."""
    from datasketch.lsh import _optimal_param

    bands, rows = _optimal_param(threshold, num_perm, fp_weight, fn_weight)
    return int(bands), int(rows)


def lsh_error_areas(threshold: float, bands: int, rows: int) -> tuple[float, float]:
    """(false-positive, false-negative) areas of a bands × rows choice: the integrals of the
    candidate probability below, and of its complement above, the threshold (datasketch's)."""
    from datasketch.lsh import _false_negative_probability, _false_positive_probability

    return (float(_false_positive_probability(threshold, bands, rows)),
            float(_false_negative_probability(threshold, bands, rows)))


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: a hash of each band's `rows` signature values and the band index."""
    n = sig.shape[0]
    if n == 0:
        return np.zeros((0, bands), np.uint64)
    block = sig[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    rng = np.random.RandomState(rows * 1000 + bands)
    mults = rng.randint(1 << 30, 1 << 62, size=rows, dtype=np.int64).astype(np.uint64) | 1
    with np.errstate(over="ignore"):
        acc = (block * mults).sum(axis=2, dtype=np.uint64)
        acc += np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        return fmix64(acc)


def partition_of(keys: np.ndarray, num_partitions: int) -> np.ndarray:
    """Partition of each band key (keys are already mixed)."""
    return (keys % np.uint64(num_partitions)).astype(np.int64)


def bucket_pairs(band: np.ndarray, keys: np.ndarray, node: np.ndarray) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    """Pairs (i, j), i < j, of node numbers sharing a (band, key) bucket; unique, sorted.
    Nodes are small ints whose order is the keeper priority (lower = preferred)."""
    if len(keys) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.lexsort((node, keys, band))
    b, k, v = band[order], keys[order], node[order]
    new_run = np.ones(len(k), bool)
    new_run[1:] = (b[1:] != b[:-1]) | (k[1:] != k[:-1])
    run = np.cumsum(new_run) - 1
    run_first = np.flatnonzero(new_run)
    left, right = [], []
    for off in range(1, NEIGHBOURS + 1):
        same = run[off:] == run[:-off]
        if not same.any():
            break
        left.append(v[:-off][same])
        right.append(v[off:][same])
    firsts = v[run_first[run]]
    star = firsts != v
    left.append(firsts[star])
    right.append(v[star])
    i = np.concatenate(left)
    j = np.concatenate(right)
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    keep = lo != hi
    code = np.unique(lo[keep].astype(np.int64) << 32 | hi[keep].astype(np.int64))
    return code >> 32, code & 0xFFFFFFFF


def candidate_pairs(sig: np.ndarray, bands: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """All candidate pairs of a signature matrix (rows in keeper-priority order)."""
    keys = band_keys(sig, bands, rows)
    n = sig.shape[0]
    band = np.tile(np.arange(bands, dtype=np.int64), n)
    node = np.repeat(np.arange(n, dtype=np.int64), bands)
    return bucket_pairs(band, keys.ravel(), node)


def verify_pairs(sig: np.ndarray, i: np.ndarray, j: np.ndarray, threshold: float,
                 chunk: int = 65536) -> np.ndarray:
    """Estimated Jaccard (fraction of equal slots) of each pair; compare with `threshold`."""
    est = np.empty(len(i), np.float64)
    for s in range(0, len(i), chunk):
        est[s:s + chunk] = (sig[i[s:s + chunk]] == sig[j[s:s + chunk]]).mean(axis=1)
    return est
