"""Keyed pieces of the dedup stage: node and batch keys, decision chunks, chain resolution,
snapshot-release carriers and the bounded report (pure functions over numpy columns).

A row is named by its row key (exact.row_keys; a previous release's row by RELEASE_TAG + id)
and, in shuffles, by `node` = a 64-bit hash of that key. Every batch has a `batch` key (a hash
of its row keys; -1 for release rows), so a decision can be routed to the batch holding its
row. A decision chunk is a dict of equal-length columns: node, key, batch (the dropped row),
knode, kkey, kbatch (its keeper), reason and detail.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import numpy as np

from transforms.dedup._steps import RELEASE_TAG, untag
from transforms.dedup.components import cat, part_of, split_by, track
from transforms.dedup.guard import TOP, cluster_guard

DECISION_COLS = ("node", "key", "batch", "knode", "kkey", "kbatch", "reason", "detail")
NO_BATCH = -1
# Members listed per reported cluster (its size and reasons always count all of them).
MAX_LISTED = 10_000


def node_ids(keys: Sequence[str]) -> np.ndarray:
    """int64 hash (blake2b, 8 bytes) of each row key."""
    return np.array([int.from_bytes(hashlib.blake2b(k.encode("utf-8"), digest_size=8).digest(),
                                    "little", signed=True) for k in keys], np.int64)


def batch_key(keys: Sequence[str]) -> int:
    """The key of a batch: a hash of its row keys (equal batches share it, harmlessly)."""
    h = hashlib.blake2b(digest_size=8)
    for k in keys:
        h.update(k.encode("utf-8") + b"\n")
    return int.from_bytes(h.digest(), "little", signed=True) & 0x7FFFFFFFFFFFFFFF


def ranks(keys: Sequence[str]) -> np.ndarray:
    """uint64 preserving the string order of row keys up to the first 63 bits of the id:
    release rows first, then ids (hex) in order. Ties (copies of one id) are broken by node."""
    out = np.empty(len(keys), np.uint64)
    for n, k in enumerate(keys):
        rel = k.startswith(RELEASE_TAG)
        i = k[len(RELEASE_TAG):] if rel else k
        try:
            v = int(i[:16].ljust(16, "0"), 16) >> 1
        except ValueError:
            v = int.from_bytes(i.encode("utf-8")[:8].ljust(8, b"\0"), "big") >> 1
        out[n] = v if rel else v | (1 << 63)
    return out


def decisions(rows: list[tuple], cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A decision chunk from (row index, keeper index, reason, detail) tuples over `cols`
    (node, key, batch arrays of the rows both indices point into)."""
    r = np.array([x[0] for x in rows], np.int64)
    k = np.array([x[1] for x in rows], np.int64)
    obj = np.empty(len(rows), object)
    det = np.empty(len(rows), object)
    obj[:] = [x[2] for x in rows]
    det[:] = [x[3] for x in rows]
    return {"node": cols["node"][r], "key": cols["key"][r], "batch": cols["batch"][r],
            "knode": cols["node"][k], "kkey": cols["key"][k], "kbatch": cols["batch"][k],
            "reason": obj, "detail": det}


def route(chunk: dict[str, np.ndarray], by: str, P: int | None
          ) -> Iterable[tuple[int, dict[str, np.ndarray]]]:
    """Split a chunk by column `by`: its partition (P given) or its value (P None)."""
    if chunk is None or len(chunk[by]) == 0:
        return
    part = part_of(chunk[by], P) if P else chunk[by]
    yield from split_by(part, chunk)


def rewrite(group: dict[str, Iterable], P: int) -> Iterable[tuple[int, dict]]:
    """Chain resolution for one partition: decisions ("d", keyed by keeper) whose keeper was
    itself dropped by a later step ("later", keyed by row) now point at that row's keeper,
    with detail["via"] = the keeper they named. Out: keyed by row node partition."""
    d = cat(group["d"], *DECISION_COLS)
    if len(d["node"]) == 0:
        return
    later = cat(group["later"], *DECISION_COLS)
    track("chains", d, later)
    if len(later["node"]):
        order = np.argsort(later["node"], kind="stable")
        ln = later["node"][order]
        pos = np.minimum(np.searchsorted(ln, d["knode"]), len(ln) - 1)
        hit = np.flatnonzero(ln[pos] == d["knode"])
        src = order[pos[hit]]
        detail = d["detail"].copy()
        for i in hit.tolist():
            dd = dict(detail[i])
            dd["via"] = untag(d["kkey"][i])
            detail[i] = dd
        d["detail"] = detail
        for c in ("knode", "kkey", "kbatch"):
            d[c] = d[c].copy()
            d[c][hit] = later[c][src]
    yield from route(d, "node", P)


def carriers(group: Iterable[dict], P: int) -> Iterable[tuple[int, dict]]:
    """Snapshot releases, per released row: among the rows that are exact duplicates of it
    (same dedup key text), the one with the smallest row key stays (its decision is dropped);
    the others keep theirs. Matched by content, not id: a released row whose id changed
    (it moved in its file) is still the row the release carries."""
    d = cat(group, *DECISION_COLS)
    track("carriers", d)
    if len(d["node"]) == 0:
        return
    best: dict[str, tuple[str, int]] = {}
    for n, (k, kk) in enumerate(zip(d["key"], d["kkey"], strict=True)):
        released = untag(kk)
        if released not in best or k < best[released][0]:
            best[released] = (k, n)
    keep = np.ones(len(d["key"]), bool)
    keep[[n for _, n in best.values()]] = False
    yield from route({c: v[keep] for c, v in d.items()}, "node", P)


def is_carrier_candidate(d: dict[str, np.ndarray]) -> np.ndarray:
    """Decisions that make a row an exact duplicate of a released row."""
    return np.array([kk.startswith(RELEASE_TAG) and r == "exact_duplicate"
                     for kk, r in zip(d["kkey"], d["reason"], strict=True)], bool)


def cluster_summaries(group: Iterable[dict]) -> Iterable[dict[str, Any]]:
    """Per keeper id of one partition: its size, member ids and reasons (for the report)."""
    d = cat(group, *DECISION_COLS)
    track("clusters", d)
    members: dict[str, list[tuple[str, str]]] = {}
    for k, kk, r in zip(d["key"], d["kkey"], d["reason"], strict=True):
        members.setdefault(untag(kk), []).append((untag(k), r))
    for keeper, m in members.items():
        reasons: dict[str, int] = {}
        for _, r in m:
            reasons[r] = reasons.get(r, 0) + 1
        listed = sorted(x for x, _ in m)[:MAX_LISTED]
        yield {"keeper": keeper, "members": [keeper, *listed], "size": len(m) + 1,
               "reasons": dict(sorted(reasons.items()))}


class ReportFn(beam.CombineFn):
    """Bounded report: counts per reason, number of clusters, the `limit` largest clusters
    (ties: smaller keeper id)."""

    def __init__(self, limit: int, stage: str, near: dict[str, Any], warn_size: int = 0):
        self.limit, self.stage, self.near, self.warn_size = limit, stage, near, warn_size

    def create_accumulator(self) -> tuple[dict[str, int], int, list]:
        return {}, 0, []

    def add_input(self, acc: tuple, cl: dict[str, Any]) -> tuple:
        counts, n, top = acc
        for r, c in cl["reasons"].items():
            counts[r] = counts.get(r, 0) + c
        top.append((-cl["size"], cl["keeper"], cl))
        if len(top) > 2 * self.limit + 16:
            top = heapq.nsmallest(max(self.limit, TOP), top, key=lambda t: t[:2])
        return counts, n + 1, top

    def merge_accumulators(self, accs: Iterable[tuple]) -> tuple:
        counts: dict[str, int] = {}
        n, top = 0, []
        for c, k, t in accs:
            for r, v in c.items():
                counts[r] = counts.get(r, 0) + v
            n += k
            top += t
        return counts, n, heapq.nsmallest(max(self.limit, TOP), top, key=lambda t: t[:2])

    def extract_output(self, acc: tuple) -> dict[str, Any]:
        counts, n, top = acc
        best = heapq.nsmallest(max(self.limit, TOP), top, key=lambda t: t[:2])
        clusters = [t[2] for t in best]
        return {"stage": self.stage, "near": self.near, "dropped": dict(sorted(counts.items())),
                "num_clusters": n, "clusters": clusters[:self.limit],
                "guard": cluster_guard(clusters, self.warn_size, self.stage)}
