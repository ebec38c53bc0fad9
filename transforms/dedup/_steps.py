"""Pure steps of dedup, each over small dicts of numpy arrays: features, exact groups, band
entries, near-duplicate verification and clustering in one step (decide_near), SemDeDup per
cluster. The Beam stage uses features, decide_semantic and the keeper rules; the global
single-step functions (partition_pairs, involved_rows, decide_near, SampleFn) are the
single-process reference (local.py) that the keyed stage must match.

Rows are named by row keys (id + source, see exact.row_keys); a previous release's rows by
RELEASE_TAG + id (a released row may come back with the same id). Decisions carry
keys; `untag` turns a key back into the public id for outputs.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from transforms.dedup import clusters, lsh, semantic
from transforms.dedup.config import DedupConfig
from transforms.dedup.exact import (
    exact_groups,
    exact_hashes,
    id_of,
    key_texts,
    quality_scores,
    row_keys,
)
from transforms.dedup.minhash import MinHasher, fmix64
from transforms.dedup.release_index import ReleaseIndex
from transforms.dedup.template import DfTable, in_runs

RELEASE_TAG = "\x00release:"
Decision = tuple[str, str, str, dict[str, Any]]  # (row key, keeper key, reason, detail)


def untag(x: str) -> str:
    """The public record id of a row key (data row or tagged release row)."""
    return id_of(x[len(RELEASE_TAG):] if x.startswith(RELEASE_TAG) else x)


def hasher_for(cfg: DedupConfig) -> MinHasher:
    return MinHasher(num_perm=cfg.num_perm, seed=cfg.minhash_seed, ngram=cfg.ngram,
                     unit=cfg.shingle, char_ngram=cfg.char_ngram,
                     char_max_words=cfg.char_max_words, mask_numbers=cfg.mask_numbers,
                     threads=cfg.minhash_threads)


def index_params(cfg: DedupConfig) -> dict[str, Any]:
    # scheme v3: auto/char shingling, char_ngram, number masking (v1/v2 indexes are refused)
    return {"num_perm": cfg.num_perm, "seed": cfg.minhash_seed, "ngram": cfg.ngram,
            "unit": cfg.shingle, "char_ngram": cfg.char_ngram,
            "char_max_words": cfg.char_max_words, "mask_numbers": cfg.mask_numbers,
            "key": cfg.key, "scheme": "affine32-fmix64-v3"}


def near_settings(cfg: DedupConfig) -> dict[str, Any]:
    """The near-dedup choice shown in the report: shingling, threshold, and the bands × rows
    datasketch's optimiser picks for the FP/FN weights, with its FP and FN areas."""
    if not cfg.near:
        return {}
    bands, rows = lsh.lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
    fp, fn = lsh.lsh_error_areas(cfg.threshold, bands, rows)
    return {"shingle": cfg.shingle, "template_df": cfg.template_df,
            "template_min_docs": cfg.template_min_docs, "ngram": cfg.ngram, "char_ngram": cfg.char_ngram,
            "char_max_words": cfg.char_max_words, "mask_numbers": cfg.mask_numbers,
            "threshold": cfg.threshold, "num_perm": cfg.num_perm, "fp_weight": cfg.fp_weight,
            "fn_weight": cfg.fn_weight, "bands": bands, "rows": rows,
            "false_positive_area": round(fp, 5), "false_negative_area": round(fn, 5)}


def df_table(batch: pa.RecordBatch, cfg: DedupConfig, hasher: MinHasher) -> DfTable:
    """The document-frequency sketch of one batch's shingles (template.py)."""
    h, offsets = hasher.shingle_hashes(key_texts(batch, cfg.key))
    return DfTable.of(h, offsets, cfg.df_sketch_width)


def uses_df(cfg: DedupConfig) -> bool:
    return cfg.near and cfg.template_df > 0


def features(batch: pa.RecordBatch, cfg: DedupConfig, hasher: MinHasher,
             df: DfTable | None = None) -> dict[str, Any]:
    """ids, scores, exact hashes and (when near dedup is on) MinHash signatures of a batch;
    with `df`, shingles common to more than cfg.template_df of the documents left out."""
    texts = key_texts(batch, cfg.key)
    feat: dict[str, Any] = {
        "ids": np.asarray(row_keys(batch), dtype=object),
        "scores": quality_scores(batch, cfg.score_field),
        "hashes": exact_hashes(texts),
    }
    if cfg.near or cfg.write_index_dir:
        drop = None
        if df is not None and cfg.template_df > 0:
            def drop(h: np.ndarray, offsets: np.ndarray) -> np.ndarray:
                return in_runs(df.common(h, cfg.template_df, cfg.template_min_docs), offsets,
                               cfg.template_min_run)
        feat["sigs"], feat["nonempty"] = hasher.signatures(texts, drop)
        feat["tsigs"] = tail_signatures(texts, cfg, drop)
    return feat


_PARAGRAPHS = re.compile(r"\n\s*\n")


def last_paragraphs(texts: Sequence[str]) -> list[str]:
    """The last paragraph of each text of several paragraphs (split at blank lines); ""
    for texts of one paragraph."""
    out = []
    for t in texts:
        parts = [p for p in _PARAGRAPHS.split(t.strip()) if p.strip()]
        out.append(parts[-1] if len(parts) > 1 else "")
    return out


@lru_cache(maxsize=4)
def _tail_hasher(cfg_key: tuple) -> MinHasher:
    num_perm, seed, ngram, unit, char_ngram, char_max_words, mask = cfg_key
    return MinHasher(num_perm=num_perm, seed=seed, ngram=ngram, unit=unit, char_ngram=char_ngram,
                     char_max_words=char_max_words, mask_numbers=mask)


def tail_signatures(texts: Sequence[str], cfg: DedupConfig,
                    drop: Callable[[np.ndarray, np.ndarray], np.ndarray] | None) -> np.ndarray:
    """Last-paragraph MinHash signatures (cfg.last_paragraph_perm slots; all slots empty for
    texts of one paragraph), with the same shingles left out as in the main signature."""
    if cfg.last_paragraph <= 0:
        return np.zeros((len(texts), 0), np.uint32)
    hasher = _tail_hasher((cfg.last_paragraph_perm, cfg.minhash_seed + 1, cfg.ngram,
                           cfg.shingle, cfg.char_ngram, cfg.char_max_words, cfg.mask_numbers))
    return hasher.signatures(last_paragraphs(texts), drop)[0]


def release_features(release: ReleaseIndex, cfg: DedupConfig | None = None) -> dict[str, Any]:
    """A previous release's rows as features; their last paragraphs are unknown (empty)."""
    n = len(release.ids)
    width = cfg.last_paragraph_perm if cfg is not None and cfg.last_paragraph > 0 else 0
    return {"ids": np.array([RELEASE_TAG + i for i in release.ids], dtype=object),
            "scores": np.full(n, np.inf), "hashes": release.hashes,
            "sigs": release.sigs if release.sigs is not None else np.zeros((n, 0), np.uint32),
            "tsigs": np.full((n, width), 0xFFFFFFFF, np.uint32),
            "nonempty": np.ones(n, bool)}


def _split(part: np.ndarray, num_partitions: int, **cols: np.ndarray) -> Iterable[tuple]:
    order = np.argsort(part, kind="stable")
    p_sorted = part[order]
    bounds = np.flatnonzero(np.diff(p_sorted)) + 1
    for sl in np.split(np.arange(len(order)), bounds):
        if len(sl):
            rows = order[sl]
            yield int(p_sorted[sl[0]]), {k: v[rows] for k, v in cols.items()}


def exact_entries(feat: dict[str, Any], num_partitions: int) -> Iterable[tuple]:
    """(partition, {hashes, ids, scores}) for every partition the batch's hashes fall in."""
    part = (fmix64(feat["hashes"]) % np.uint64(num_partitions)).astype(np.int64)
    yield from _split(part, num_partitions, hashes=feat["hashes"], ids=feat["ids"],
                      scores=feat["scores"])


def decide_exact(entries: Iterable[dict[str, Any]]) -> list[Decision]:
    """Within one partition: every row whose folded key equals a better row's is dropped."""
    entries = list(entries)
    if not entries:
        return []
    ids = np.concatenate([e["ids"] for e in entries])
    scores = np.concatenate([e["scores"] for e in entries])
    hashes = np.concatenate([e["hashes"] for e in entries])
    pinned = np.array([i.startswith(RELEASE_TAG) for i in ids], bool)
    order = clusters.priority_order(list(ids), scores, pinned)
    keeper = exact_groups(hashes, order)
    out = []
    for row in np.flatnonzero(keeper != np.arange(len(ids))):
        if not pinned[row]:
            k = ids[keeper[row]]
            out.append((ids[row], k, "exact_duplicate",
                        {"release": bool(pinned[keeper[row]])}))
    return out


def band_entries(feat: dict[str, Any], bands: int, rows: int,
                 num_partitions: int) -> Iterable[tuple]:
    """(partition, {band, key, ids}): many band buckets per element, one element per partition
    per batch."""
    ok = np.flatnonzero(feat["nonempty"])
    if len(ok) == 0:
        return
    keys = lsh.band_keys(feat["sigs"][ok], bands, rows)
    band = np.tile(np.arange(bands, dtype=np.int16), len(ok))
    ids = np.repeat(feat["ids"][ok], bands)
    flat = keys.ravel()
    yield from _split(lsh.partition_of(flat, num_partitions), num_partitions,
                      band=band, key=flat, ids=ids)


def partition_pairs(entries: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """Candidate id pairs from the band buckets of one partition."""
    entries = list(entries)
    if not entries:
        return []
    ids = np.concatenate([e["ids"] for e in entries])
    uniq, node = np.unique(ids.astype(str), return_inverse=True)
    i, j = lsh.bucket_pairs(np.concatenate([e["band"] for e in entries]).astype(np.int64),
                            np.concatenate([e["key"] for e in entries]), node.astype(np.int64))
    return list(zip(uniq[i].tolist(), uniq[j].tolist(), strict=True))


def involved_rows(feat: dict[str, Any], wanted: set[str]) -> dict[str, Any] | None:
    """The rows of a batch (ids, scores, signatures) that appear in some candidate pair."""
    mask = np.array([i in wanted for i in feat["ids"]], bool)
    if not mask.any():
        return None
    return {"ids": feat["ids"][mask], "scores": feat["scores"][mask], "sigs": feat["sigs"][mask],
            "tsigs": feat["tsigs"][mask]}


def decide_near(pairs: list[tuple[str, str]], nodes: list[dict[str, Any]],
                dropped_before: set[str], threshold: float, verify: bool,
                tail_threshold: float = 0.0) -> list[Decision]:
    """Verify candidate pairs, union-find the rest (candidates), then per component
    clusters.star_keepers: a row goes only when it is itself similar enough to its keeper."""
    nodes = [n for n in nodes if n is not None]
    if not pairs or not nodes:
        return []
    ids = np.concatenate([n["ids"] for n in nodes])
    scores = np.concatenate([n["scores"] for n in nodes])
    sigs = np.concatenate([n["sigs"] for n in nodes])
    tsigs = _tails([n.get("tsigs") for n in nodes], [len(n["ids"]) for n in nodes])
    alive = np.array([i not in dropped_before for i in ids], bool)
    ids, scores, sigs, tsigs = ids[alive], scores[alive], sigs[alive], tsigs[alive]
    if len(ids) < 2:
        return []
    pinned = np.array([i.startswith(RELEASE_TAG) for i in ids], bool)
    order = clusters.priority_order(list(ids), scores, pinned)
    ids, sigs, pinned, tsigs = ids[order], sigs[order], pinned[order], tsigs[order]
    pos = {v: k for k, v in enumerate(ids.tolist())}
    pi = np.array([pos.get(a, -1) for a, _ in pairs], np.int64)
    pj = np.array([pos.get(b, -1) for _, b in pairs], np.int64)
    ok = (pi >= 0) & (pj >= 0) & ~(pinned[np.maximum(pi, 0)] & pinned[np.maximum(pj, 0)])
    pi, pj = pi[ok], pj[ok]
    est = lsh.verify_pairs(sigs, pi, pj, threshold)
    if verify:
        pi, pj, est = pi[est >= threshold], pj[est >= threshold], est[est >= threshold]
    roots = clusters.components(len(ids), pi, pj)
    out = []
    for members in clusters.cluster_lists(roots).values():
        m = np.array(members)  # ascending = priority order
        keeper, sim = clusters.star_keepers(sigs[m], pinned[m], threshold, tsigs[m],
                                            tail_threshold)
        for r in np.flatnonzero(keeper != np.arange(len(m))).tolist():
            k = int(m[keeper[r]])
            out.append((ids[m[r]], ids[k], "near_duplicate",
                        {"release": bool(pinned[k]), "jaccard": round(float(sim[r]), 4)}))
    return out


def _tails(parts: list[np.ndarray | None], sizes: list[int]) -> np.ndarray:
    """Last-paragraph signatures of several pieces stacked; pieces without them (a previous
    release's rows) get empty ones (their last paragraphs are not checked)."""
    width = max((p.shape[1] for p in parts if p is not None), default=0)
    return np.concatenate([p if p is not None and p.shape[1] == width
                           else np.full((s, width), 0xFFFFFFFF, np.uint32)
                           for p, s in zip(parts, sizes, strict=True)])


class SampleFn:
    """Keeps the `limit` rows with the smallest id hash: a deterministic k-means sample."""

    def __init__(self, limit: int):
        self.limit = limit

    def trim(self, parts: list[dict[str, Any]]) -> dict[str, Any] | None:
        parts = [p for p in parts if p is not None and len(p["ids"])]
        if not parts:
            return None
        ids = np.concatenate([p["ids"] for p in parts])
        emb = np.concatenate([p["emb"] for p in parts])
        h = exact_hashes([str(i) for i in ids])
        order = np.lexsort((ids.astype(str), h))[: self.limit]
        return {"ids": ids[order], "emb": emb[order]}


def train_centroids(sample: dict[str, Any] | None, cfg: DedupConfig, seed: int) -> np.ndarray:
    if sample is None:
        return np.zeros((1, 1), np.float32)
    order = np.argsort(sample["ids"].astype(str), kind="stable")
    emb = sample["emb"][order]
    k = semantic.auto_clusters(len(emb), cfg.semantic_clusters)
    return semantic.kmeans_centroids(emb, k, seed, cfg.kmeans_iters)


def cluster_entries(feat: dict[str, Any] | None, centroids: np.ndarray,
                    num_partitions: int) -> Iterable[tuple]:
    """(partition, {cluster, ids, scores, emb}) with partition = cluster % num_partitions."""
    if feat is None or len(feat["ids"]) == 0 or centroids.shape[1] != feat["emb"].shape[1]:
        return
    cl = semantic.assign_clusters(feat["emb"], centroids)
    yield from _split(cl % num_partitions, num_partitions, cluster=cl, ids=feat["ids"],
                      scores=feat["scores"], emb=feat["emb"])


def decide_semantic(entries: Iterable[dict[str, Any]], eps: float) -> list[Decision]:
    """SemDeDup inside every k-means cluster of one partition."""
    entries = list(entries)
    if not entries:
        return []
    cl = np.concatenate([e["cluster"] for e in entries])
    ids = np.concatenate([e["ids"] for e in entries])
    scores = np.concatenate([e["scores"] for e in entries])
    emb = np.concatenate([e["emb"] for e in entries])
    groups: dict[int, list[int]] = defaultdict(list)
    for r, c in enumerate(cl.tolist()):
        groups[c].append(r)
    out = []
    for c in sorted(groups):
        rows = np.array(groups[c])
        pinned = np.array([i.startswith(RELEASE_TAG) for i in ids[rows]], bool)
        order = rows[clusters.priority_order(list(ids[rows]), scores[rows], pinned)]
        pin_o = np.array([i.startswith(RELEASE_TAG) for i in ids[order]], bool)
        keeper, sim = semantic.dedup_cluster(emb[order], eps, pin_o)
        for r in np.flatnonzero(keeper != np.arange(len(order))):
            k = order[keeper[r]]
            out.append((ids[order[r]], ids[k], "semantic_duplicate",
                        {"release": bool(pin_o[keeper[r]]), "cosine": round(float(sim[r]), 4),
                         "cluster": int(c)}))
    return out
