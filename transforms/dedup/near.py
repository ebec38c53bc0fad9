"""Step 2 of the dedup stage: MinHash LSH near duplicates, all by keyed joins.

1. Band buckets (grouped in coarse partitions of band keys) give candidate pairs, exactly as
   before: each bucket member with its next NEIGHBOURS members and the bucket's first, members
   ordered by (release first, id).
2. Verification joins each pair with both rows' signatures without broadcasting them: the
   pair goes to its smaller node's partition, which holds that node's signature (and knows if
   the exact step dropped it) and ships it to the larger node's partition; there the pair's
   estimated Jaccard is computed. Pairs of two release rows, or with an exact-dropped row,
   are left out. The row info (key, score, batch, last-paragraph signature) of every node
   travels in the same shuffle (a larger node's with its signature, a node that is only ever
   the smaller one's beside its first pair, whose signature it reuses), and verification
   passes it on: the member signatures cross one shuffle before the components, not two.
3. Connected components of the verified pairs (components.py: large-star / small-star
   rounds over keyed edges): candidates only.
4. The component label joins each member's row info (passed on by verification); per
   component, members in priority order (release first, highest score, smallest row key:
   clusters.priority_order), clusters.star_keepers keeps the best member and removes only
   the members whose own estimated Jaccard with it reaches the threshold, then repeats with
   the best member left: a row is never removed through a chain of neighbours. Each
   near_duplicate decision carries that Jaccard with its keeper.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np

from transforms.dedup import clusters, lsh
from transforms.dedup._steps import RELEASE_TAG
from transforms.dedup.components import (
    ConcatChunks,
    ConnectedComponents,
    canonical,
    cat,
    part_of,
    split_by,
    split_grouped,
    track,
)
from transforms.dedup.keyed import decisions, route

INFO = ("node", "key", "score", "batch")
MEMBER = (*INFO, "sig", "tsig")


def band_entries(f: dict[str, Any], bands: int, rows: int, P: int) -> Iterable[tuple]:
    """(band-key partition, {band, bkey, node, rank}) of the rows with a signature."""
    ok = np.flatnonzero(f["nonempty"])
    if len(ok) == 0 or f["sigs"].shape[1] == 0:
        return
    keys = lsh.band_keys(f["sigs"][ok], bands, rows).ravel()
    cols = {"band": np.tile(np.arange(bands, dtype=np.int16), len(ok)), "bkey": keys,
            "node": np.repeat(f["node"][ok], bands), "rank": np.repeat(f["rank"][ok], bands)}
    yield from split_by(lsh.partition_of(keys, P), cols)


def sig_entries(f: dict[str, Any], P: int) -> Iterable[tuple]:
    """(node partition, {node, sig, tsig, key, score, batch}) of the rows with a signature
    (tsig: the last-paragraph signature)."""
    ok = np.flatnonzero(f["nonempty"])
    if len(ok) == 0 or f["sigs"].shape[1] == 0:
        return
    cols = {c: f[c][ok] for c in INFO}
    cols["sig"], cols["tsig"] = f["sigs"][ok], f["tsigs"][ok]
    yield from split_by(part_of(cols["node"], P), cols)


def bucket_edges(group: Iterable[dict], P: int) -> Iterable[tuple]:
    """Candidate pairs of one band partition, routed to both ends: (node partition,
    {hi, lo, end}) with end 0 at lo's partition and 1 at hi's."""
    d = cat(group, "band", "bkey", "node", "rank")
    track("bands", d)
    if len(d["node"]) < 2:
        return
    uniq, first, inv = np.unique(d["node"], return_index=True, return_inverse=True)
    order = np.lexsort((uniq, d["rank"][first]))  # local numbers in (release, id) order
    local = np.empty(len(uniq), np.int64)
    local[order] = np.arange(len(uniq))
    i, j = lsh.bucket_pairs(d["band"].astype(np.int64), d["bkey"], local[inv])
    inv_order = uniq[order]
    hi, lo = canonical(inv_order[i], inv_order[j])
    n = len(hi)
    at = np.r_[lo, hi]
    yield from split_by(part_of(at, P), {"hi": np.r_[hi, hi], "lo": np.r_[lo, lo],
                                         "end": np.r_[np.zeros(n, np.int8), np.ones(n, np.int8)]})


class UniqueEdgesFn(ConcatChunks):
    """The set of (hi, lo, end) edge copies of one partition. Lifted before the shuffle, so a
    pair found in many bands crosses it about once per bundle instead of once per band."""

    def __init__(self):
        super().__init__(("hi", "lo", "end"))

    def compact(self, acc: list[dict]) -> list[dict]:
        if len(acc) < 2:
            return acc
        d = cat(acc, "hi", "lo", "end")
        u = np.unique(np.stack([d["hi"], d["lo"], d["end"].astype(np.int64)], 1), axis=0)
        return [{"hi": u[:, 0].copy(), "lo": u[:, 1].copy(), "end": u[:, 2].astype(np.int8)}]


def _lookup(table: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in sorted `table`, found) of each x."""
    if len(table) == 0:
        return np.zeros(len(x), np.int64), np.zeros(len(x), bool)
    pos = np.minimum(np.searchsorted(table, x), len(table) - 1)
    return pos, table[pos] == x


def ship(group: dict[str, Iterable], P: int) -> Iterable[tuple]:
    """Join at a node partition: candidate pairs × signatures × exact drops, all to the hi
    partitions: for pairs whose lo is here and alive, {hi, lo, sig, pin}; for alive his here,
    their row info and signatures once ({node, ..., pin}); for alive nodes here that are
    only ever lo, their row info without the signature ({lnode, ...}), sent to the partition
    of their first pair's hi, whose pair brings the signature. So the signatures of the
    members cross one shuffle, together with the pairs (verify passes them on)."""
    s = cat(group["sigs"], *MEMBER)
    e = UniqueEdgesFn().extract_output(list(group["edges"]))
    track("sig_join", s, e)
    if len(e["hi"]) == 0 or len(s["node"]) == 0:
        return
    dead = cat(group["dropped"], "node")["node"]
    uniq, first = np.unique(s["node"], return_index=True)
    s = {c: v[first] for c, v in s.items()}
    alive = ~np.isin(uniq, dead)
    pin = np.array([k.startswith(RELEASE_TAG) for k in s["key"]], bool)
    at_lo = e["end"] == 0
    here = np.where(at_lo, e["lo"], e["hi"])
    pos, found = _lookup(uniq, here)
    ok = found & alive[pos]
    lo_ok = ok & at_lo
    if lo_ok.any():
        yield from split_by(part_of(e["hi"][lo_ok], P),
                            {"hi": e["hi"][lo_ok], "lo": e["lo"][lo_ok],
                             "sig": s["sig"][pos[lo_ok]], "pin": pin[pos[lo_ok]]})
    hi_rows = np.unique(pos[ok & ~at_lo])
    if len(hi_rows):
        yield from split_by(part_of(uniq[hi_rows], P), {
            **{c: s[c][hi_rows] for c in MEMBER}, "pin": pin[hi_rows]})
    lo_rows, at = np.unique(pos[lo_ok], return_index=True)  # at: each one's first pair
    lo_only = ~np.isin(lo_rows, hi_rows)
    if lo_only.any():
        rows, via = lo_rows[lo_only], e["hi"][lo_ok][at[lo_only]]
        yield from split_by(part_of(via, P), {
            "lnode": uniq[rows], **{c: s[c][rows] for c in INFO if c != "node"},
            "tsig": s["tsig"][rows]})


def verify(group: Iterable[dict], threshold: float, check: bool) -> Iterable[Any]:
    """At a hi partition: estimated Jaccard of each shipped pair against hi's signature;
    pairs of two release rows left out; with `check`, only pairs reaching the threshold.
    Tagged "info": row info and signature of every node shipped here (the his, and the
    lo-only nodes with the signature their pair brought), for the keeper check."""
    parts = list(group)
    pairs = cat([p for p in parts if "hi" in p], "hi", "lo", "sig", "pin")
    his = cat([p for p in parts if "node" in p], *MEMBER, "pin")
    los = cat([p for p in parts if "lnode" in p], "lnode", *INFO[1:], "tsig")
    track("verify", pairs, his, los)
    info = [his] if len(his["node"]) else []
    if len(los["lnode"]):
        lo_pairs, lfirst = np.unique(pairs["lo"], return_index=True)
        lpos, lfound = _lookup(lo_pairs, los["lnode"])
        assert lfound.all(), "a lo-only node came without its pair"
        info.append({**los, "node": los["lnode"], "sig": pairs["sig"][lfirst[lpos]]})
    if info:
        yield beam.pvalue.TaggedOutput("info", cat(info, *MEMBER))
    if len(pairs["hi"]) == 0 or len(his["node"]) == 0:
        return
    uniq, first = np.unique(his["node"], return_index=True)
    pos, found = _lookup(uniq, pairs["hi"])
    ok = found & ~(pairs["pin"] & his["pin"][first][pos])
    sig_hi = his["sig"][first][pos[ok]]
    hi, lo, sig_lo = pairs["hi"][ok], pairs["lo"][ok], pairs["sig"][ok]
    est = (sig_lo == sig_hi).mean(axis=1) if len(hi) else np.zeros(0)
    if check:
        keep = est >= threshold
        hi, lo, est = hi[keep], lo[keep], est[keep]
    if len(hi):
        code, idx = np.unique(np.stack([hi, lo], 1), axis=0, return_index=True)
        yield {"hi": code[:, 0].copy(), "lo": code[:, 1].copy(), "est": est[idx]}


def label_members(group: dict[str, Iterable], P: int) -> Iterable[tuple]:
    """At a node partition: each labelled node's row info and signature, routed to its
    label's partition."""
    lab = cat(group["labels"], "node", "label")
    if len(lab["node"]) == 0:
        return
    info = cat(group["info"], *MEMBER)
    track("label_join", lab, info)
    node, first = np.unique(lab["node"], return_index=True)
    label = lab["label"][first]
    uniq, ifirst = np.unique(info["node"], return_index=True)
    pos, found = _lookup(uniq, node)
    cols = {c: info[c][ifirst][pos[found]] for c in MEMBER}
    cols["label"] = label[found]
    yield from split_by(part_of(cols["label"], P), cols)


def choose_keepers(group: Iterable[dict], threshold: float, P: int,
                   tail_threshold: float = 0.0) -> Iterable[tuple]:
    """Per component, members in priority order: clusters.star_keepers (no chains).
    Out: decisions keyed by the dropped row's node partition."""
    d = cat(group, *MEMBER, "label")
    track("components", d)
    if len(d["node"]) < 2:
        return
    pinned = np.array([k.startswith(RELEASE_TAG) for k in d["key"]], bool)
    prio = np.empty(len(d["node"]), np.int64)
    prio[clusters.priority_order(list(d["key"]), d["score"], pinned)] = np.arange(len(prio))
    order = np.lexsort((prio, d["label"]))
    lab = d["label"][order]
    bounds = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1], True])
    rows = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        m = order[a:b]
        keeper, sim = clusters.star_keepers(d["sig"][m], pinned[m], threshold, d["tsig"][m],
                                            tail_threshold)
        for r in np.flatnonzero(keeper != np.arange(len(m))).tolist():
            k = m[keeper[r]]
            rows.append((int(m[r]), int(k), "near_duplicate",
                         {"release": bool(pinned[k]), "jaccard": round(float(sim[r]), 4)}))
    if rows:
        yield from route(decisions(rows, d), "node", P)


def _pieces(x: beam.PCollection | tuple | list) -> list[beam.PCollection]:
    return list(x) if isinstance(x, (tuple, list)) else [x]


class NearDecisions(beam.PTransform):
    """Step 2 of 4: MinHash LSH near duplicates by keyed joins (see the module doc).
    ({"bands": pieces, "sigs": pieces, "dropped"}) → decision chunks keyed by row node
    partition. Band and signature entries come in pieces (this run's rows, a previous
    release's), split where they are made (split_grouped)."""

    def __init__(self, bands: int, rows: int, threshold: float, verify: bool, P: int,
                 rounds: int, max_remainder: int, parts: int = 1, label: str | None = None,
                 tail_threshold: float = 0.0):
        super().__init__(label)
        self.tail_threshold = tail_threshold
        self.bands, self.rows, self.threshold, self.verify = bands, rows, threshold, verify
        self.P, self.rounds, self.max_remainder, self.parts = P, rounds, max_remainder, parts

    def expand(self, inputs: dict[str, beam.PCollection]) -> beam.PCollection:
        P, S = self.P, self.parts
        pairs = [g | f"Pairs{i}" >> beam.FlatMap(lambda kv: bucket_edges(kv[1], P))
                 for i, g in enumerate(split_grouped(_pieces(inputs["bands"]), S, "GroupBands"))]
        # made unique per piece where they are found (a Flatten first would hold them all
        # as found); ship drops the copies a pair found in several pieces still has
        edges = [g | f"UniqueEdges{i}" >> beam.CombinePerKey(UniqueEdgesFn())
                 for i, g in enumerate(pairs)]
        joined = split_grouped({"sigs": _pieces(inputs["sigs"]), "edges": edges,
                                "dropped": [inputs["dropped"]]}, S, "JoinSigs")
        shipped = [j | f"Ship{i}" >> beam.FlatMap(lambda kv: ship(kv[1], P))
                   for i, j in enumerate(joined)]
        checked = [g | f"Verify{i}" >> beam.FlatMap(lambda kv: verify(
                       kv[1], self.threshold, self.verify)).with_outputs("info", main="edges")
                   for i, g in enumerate(split_grouped(shipped, S, "GroupPairs"))]
        verified = [x["edges"] for x in checked] | "FlatVerified" >> beam.Flatten()
        # the verified graph is small (two int64 per pair): fewer partitions for its rounds
        labels = (verified | "KeyEdges" >> beam.Map(lambda e: (0, e))
                  | "Components" >> ConnectedComponents(max(1, P // 4), self.rounds,
                                                        self.max_remainder, P))
        # keyed where verification makes it (a Flatten first would hold it twice at once)
        info = [x["info"] | f"KeyInfo{i}" >> beam.FlatMap(lambda c: route(c, "node", P))
                for i, x in enumerate(checked)]
        # members carry their signatures to the keeper check: both shuffles split, as above
        members = [j | f"Members{i}" >> beam.FlatMap(lambda kv: label_members(kv[1], P))
                   for i, j in enumerate(split_grouped({"labels": [labels], "info": info}, S,
                                                       "JoinLabels"))]
        return ([g | f"Keepers{i}" >> beam.FlatMap(lambda kv: choose_keepers(
                    kv[1], self.threshold, P, self.tail_threshold))
                 for i, g in enumerate(split_grouped(members, S, "GroupComponents"))]
                | "FlatKeepers" >> beam.Flatten())
