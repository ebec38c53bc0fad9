"""Connected components over keyed edges, without gathering the graph: large-star / small-star
rounds (Kiveris et al., "Connected Components in MapReduce and Beyond", 2014).

Nodes are int64 (hashes of row keys); an edge is stored once as (hi, lo) with hi > lo. Every
step is a GroupByKey over coarse node partitions (node mod P) followed by a vectorized pure
function over the partition's edges, so no element holds more than one partition's edges.
A component ends as a star: every member points at the component's smallest node (its label).

A Beam graph is static, so `rounds` (large-star + small-star) are unrolled. Afterwards a check
finds the nodes that are not yet in a star (a node with two parents, or a parent that is itself
a child); only the edges touching them are combined into one bounded element (at most
`max_remainder` edges, else the run fails loudly and asks for more rounds), finished by
union-find, and broadcast as a bounded side input (node → label) that relabels the stars they
hang off. With enough rounds the remainder is empty; long paths need about log2(length) rounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np

from transforms.dedup import clusters

Chunk = dict[str, np.ndarray]
_EMPTY = np.zeros(0, np.int64)


def track(step: str, *chunks: Chunk) -> None:
    """Beam distributions of the rows and bytes one grouped element holds at `step`
    (numeric bytes; an object column counts its pointers): the largest element seen."""
    rows = sum(len(next(iter(c.values()))) for c in chunks if c)
    size = sum(v.nbytes for c in chunks if c for v in c.values())
    beam.metrics.Metrics.distribution("refinery.dedup.groups", f"{step}_rows").update(rows)
    beam.metrics.Metrics.distribution("refinery.dedup.groups", f"{step}_bytes").update(size)


def part_of(nodes: np.ndarray, num_partitions: int) -> np.ndarray:
    """Coarse partition of int64 nodes (already hashes)."""
    return (nodes.view(np.uint64) % np.uint64(num_partitions)).astype(np.int64)


def split_by(part: np.ndarray, cols: dict[str, np.ndarray]) -> Iterable[tuple[int, Chunk]]:
    """(partition, rows of `cols` in it) for every partition present, in partition order."""
    if len(part) == 0:
        return
    order = np.argsort(part, kind="stable")
    ps = part[order]
    bounds = np.flatnonzero(np.diff(ps)) + 1
    for rows in np.split(order, bounds):
        yield int(part[rows[0]]), {k: v[rows] for k, v in cols.items()}


def cat(chunks: Iterable[Chunk], *names: str) -> Chunk:
    """Concatenate the columns `names` of chunks (empty int64 columns when there are none)."""
    chunks = [c for c in chunks if c is not None]
    return {n: (np.concatenate([c[n] for c in chunks]) if chunks else _EMPTY) for n in names}


def _mod(kv: tuple[int, Any], n: int) -> int:
    return kv[0] % n


def split_grouped(inputs: list[beam.PCollection] | dict[str, list[beam.PCollection]],
                  parts: int, name: str) -> list[beam.PCollection]:
    """GroupByKey (a list of pieces to flatten) or CoGroupByKey (tag → pieces) as `parts`
    separate shuffles over disjoint keys (int key mod parts); the groups are the same as one
    shuffle's. Each piece is split where it is made and part i of every piece is flattened and
    grouped on its own, so no step handles a whole input: the local runner holds a stage's
    input several times over while handing it to its workers. Other runners just run more,
    smaller shuffles."""
    one = isinstance(inputs, list)
    tagged = {"": inputs} if one else inputs
    split = {t: [pc | f"{name}Split{t.title()}{k}" >> beam.Partition(_mod, parts)
                 for k, pc in enumerate(pieces)] for t, pieces in tagged.items()}
    out = []
    for i in range(parts):
        part = {t: [s[i] for s in pieces] for t, pieces in split.items()}
        part = {t: p[0] if len(p) == 1 else p | f"{name}Flat{t.title()}{i}" >> beam.Flatten()
                for t, p in part.items()}
        grouped = (part[""] | f"{name}{i}" >> beam.GroupByKey() if one
                   else part | f"{name}{i}" >> beam.CoGroupByKey())
        out.append(grouped)
    return out


class ConcatChunks(beam.CombineFn):
    """The chunks of one key concatenated into one. Lifted before the shuffle: the small
    chunks a split by key leaves behind (a few rows each, mostly pickling overhead) cross it
    as about one chunk per key and bundle. `compact` is the hook to also reduce rows."""

    def __init__(self, names: tuple[str, ...]):
        self.names = names

    def create_accumulator(self) -> list[Chunk]:
        return []

    def add_input(self, acc: list[Chunk], chunk: Chunk) -> list[Chunk]:
        acc.append(chunk)
        if len(acc) > 64 or sum(len(c[self.names[0]]) for c in acc) > 1 << 16:
            acc = self.compact(acc)
        return acc

    def merge_accumulators(self, accs: Iterable[list[Chunk]]) -> list[Chunk]:
        return self.compact([c for a in accs for c in a])

    def compact(self, acc: list[Chunk]) -> list[Chunk]:
        return [cat(acc, *self.names)] if len(acc) > 1 else acc

    def extract_output(self, acc: list[Chunk]) -> Chunk:
        return self.compact(acc)[0] if acc else cat([], *self.names)


def canonical(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges as (hi, lo), hi > lo, self loops dropped, sorted."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    keep = hi != lo
    if not keep.all():
        hi, lo = hi[keep], lo[keep]
    if len(hi) == 0:
        return _EMPTY, _EMPTY
    pairs = np.unique(np.stack([hi, lo], axis=1), axis=0)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start index, length) of each run of equal values in sorted `keys`."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, np.diff(np.r_[starts, len(keys)])


def large_star(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Directed adjacency (u → v, both directions present for every edge u holds): each node
    u links every larger neighbour to the smallest of u and its neighbours."""
    if len(u) == 0:
        return _EMPTY, _EMPTY
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    starts, counts = _runs(u)
    m = np.minimum(np.minimum.reduceat(v, starts), u[starts])
    m_row = np.repeat(m, counts)
    bigger = v > u
    return canonical(v[bigger], m_row[bigger])


def small_star(hi: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges grouped by their larger end: each node u links itself and its smaller
    neighbours to the smallest of them."""
    if len(hi) == 0:
        return _EMPTY, _EMPTY
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    starts, counts = _runs(hi)
    m = np.minimum.reduceat(lo, starts)
    m_row = np.repeat(m, counts)
    return canonical(np.r_[hi[starts], lo], np.r_[m, m_row])


def unsettled(child: np.ndarray, parent: np.ndarray, node_is_parent: np.ndarray,
              nodes: np.ndarray) -> np.ndarray:
    """Of `nodes`, those not yet settled in a star: with two or more parents, or with a parent
    while being a parent themselves. `child`/`parent` are the edges whose hi end is in
    `nodes`; `node_is_parent` marks the nodes that appear as some edge's lo end."""
    n_parents = np.zeros(len(nodes), np.int64)
    if len(child):
        idx = np.searchsorted(nodes, child)
        np.add.at(n_parents, idx, 1)
    return nodes[(n_parents > 1) | ((n_parents > 0) & node_is_parent)]


def finish(hi: np.ndarray, lo: np.ndarray) -> dict[int, int]:
    """node → label (smallest node of its component) by union-find, for a bounded edge set."""
    if len(hi) == 0:
        return {}
    nodes, inv = np.unique(np.r_[hi, lo], return_inverse=True)
    roots = clusters.components(len(nodes), inv[: len(hi)], inv[len(hi):])
    return dict(zip(nodes.tolist(), nodes[roots].tolist(), strict=True))


def local_components(hi: np.ndarray, lo: np.ndarray, rounds: int
                     ) -> tuple[np.ndarray, np.ndarray, int]:
    """The rounds without Beam (one partition): (hi, lo) after `rounds` large-star +
    small-star rounds, and the number of rounds that changed anything."""
    hi, lo = canonical(hi, lo)
    changed = 0
    for _ in range(rounds):
        h2, l2 = large_star(np.r_[hi, lo], np.r_[lo, hi])
        h2, l2 = small_star(h2, l2)
        if np.array_equal(h2, hi) and np.array_equal(l2, lo):
            break
        hi, lo, changed = h2, l2, changed + 1
    return hi, lo, changed


# ---- Beam shell -------------------------------------------------------------------------

def _canonical_chunk(kv: tuple[Any, Chunk]) -> tuple[Any, Chunk]:
    hi, lo = canonical(kv[1]["hi"], kv[1]["lo"])
    return kv[0], {"hi": hi, "lo": lo}


def _route_both(kv: tuple[int, Chunk], P: int) -> Iterable[tuple[int, Chunk]]:
    e = kv[1]
    u, v = np.r_[e["hi"], e["lo"]], np.r_[e["lo"], e["hi"]]
    yield from split_by(part_of(u, P), {"u": u, "v": v})


def _route_hi(kv: tuple[int, Chunk], P: int) -> Iterable[tuple[int, Chunk]]:
    e = kv[1]
    yield from split_by(part_of(e["hi"], P), {"hi": e["hi"], "lo": e["lo"]})


def _large(kv: tuple[int, Iterable[Chunk]], P: int) -> Iterable[tuple[int, Chunk]]:
    d = cat(kv[1], "u", "v")
    track("cc_large", d)
    hi, lo = large_star(d["u"], d["v"])
    yield from split_by(part_of(hi, P), {"hi": hi, "lo": lo})


def _small(kv: tuple[int, Iterable[Chunk]], P: int) -> Iterable[tuple[int, Chunk]]:
    d = cat(kv[1], "hi", "lo")
    track("cc_small", d)
    hi, lo = small_star(d["hi"], d["lo"])
    yield from split_by(np.zeros(len(hi), np.int64), {"hi": hi, "lo": lo})


def _roles(kv: tuple[int, Chunk], P: int) -> Iterable[tuple[int, Chunk]]:
    """Each edge to its child's partition (role 0) and to its parent's (role 1)."""
    e = kv[1]
    n = len(e["hi"])
    node = np.r_[e["hi"], e["lo"]]
    role = np.r_[np.zeros(n, np.int8), np.ones(n, np.int8)]
    yield from split_by(part_of(node, P), {"hi": np.r_[e["hi"], e["hi"]],
                                            "lo": np.r_[e["lo"], e["lo"]], "role": role})


class _Check(beam.DoFn):
    """Per node partition: star edges go on (tagged "stars"); edges touching an unsettled
    node go to the remainder (main output)."""

    def process(self, kv: tuple[int, Iterable[Chunk]]) -> Iterable[Any]:
        d = cat(kv[1], "hi", "lo", "role")
        track("cc_check", d)
        as_child = d["role"] == 0
        ch, pa_ = canonical(d["hi"][as_child], d["lo"][as_child])
        parents = np.unique(d["lo"][~as_child])
        nodes = np.unique(np.r_[ch, parents])
        bad = unsettled(ch, pa_, np.isin(nodes, parents), nodes)
        touch = np.isin(d["hi"], bad) & as_child | np.isin(d["lo"], bad) & ~as_child
        if touch.any():
            yield {"hi": d["hi"][touch], "lo": d["lo"][touch]}
        ok = ~np.isin(ch, bad)
        if ok.any():
            yield beam.pvalue.TaggedOutput("stars", {"hi": ch[ok], "lo": pa_[ok]})


class RemainderFn(beam.CombineFn):
    """Unique unsettled edges, failing loudly past `limit` (the bound of the one gather)."""

    def __init__(self, limit: int, rounds: int):
        self.limit, self.rounds = limit, rounds

    def create_accumulator(self) -> Chunk:
        return {"hi": _EMPTY, "lo": _EMPTY}

    def add_input(self, acc: Chunk, e: Chunk) -> Chunk:
        return self.merge_accumulators([acc, e])

    def merge_accumulators(self, accs: Iterable[Chunk]) -> Chunk:
        d = cat(accs, "hi", "lo")
        hi, lo = canonical(d["hi"], d["lo"])
        if len(hi) > self.limit:
            raise RuntimeError(
                f"connected components: {len(hi)} edges still not in stars after "
                f"{self.rounds} rounds (limit {self.limit}); raise dedup cc_rounds")
        return {"hi": hi, "lo": lo}

    def extract_output(self, acc: Chunk) -> dict[int, int]:
        track("cc_remainder", acc)
        return finish(acc["hi"], acc["lo"])


def _labels(e: Chunk, fix: dict[int, int], P: int) -> Iterable[tuple[int, Chunk]]:
    """(node partition, {node, label}) for both ends of star edges, relabelled by `fix`."""
    lab = np.array([fix.get(x, x) for x in e["lo"].tolist()], np.int64)
    node = np.r_[e["hi"], e["lo"]]
    yield from split_by(part_of(node, P), {"node": node, "label": np.r_[lab, lab]})


def _remainder_labels(fix: dict[int, int], P: int) -> Iterable[tuple[int, Chunk]]:
    if fix:
        node = np.fromiter(fix.keys(), np.int64, len(fix))
        lab = np.fromiter(fix.values(), np.int64, len(fix))
        yield from split_by(part_of(node, P), {"node": node, "label": lab})


class ConnectedComponents(beam.PTransform):
    """(any key, {hi, lo} int64 edges) → (node partition among `out_partitions`, {node,
    label}) for every node of every edge (duplicates possible; all copies of a node carry
    the same label)."""

    def __init__(self, num_partitions: int, rounds: int, max_remainder: int,
                 out_partitions: int | None = None, label: str | None = None):
        super().__init__(label)
        self.P, self.rounds, self.max_remainder = num_partitions, rounds, max_remainder
        self.out = out_partitions or num_partitions

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        P = self.P
        edges = edges | "Canonical" >> beam.Map(_canonical_chunk)
        for r in range(self.rounds):
            edges = (edges | f"Both{r}" >> beam.FlatMap(_route_both, P)
                     | f"GroupLarge{r}" >> beam.GroupByKey()
                     | f"Large{r}" >> beam.FlatMap(_large, P)
                     | f"GroupSmall{r}" >> beam.GroupByKey()
                     | f"Small{r}" >> beam.FlatMap(_small, P))
        checked = (edges | "Roles" >> beam.FlatMap(_roles, P)
                   | "GroupRoles" >> beam.GroupByKey()
                   | "Check" >> beam.ParDo(_Check()).with_outputs("stars", main="rest"))
        fix = checked["rest"] | "Remainder" >> beam.CombineGlobally(
            RemainderFn(self.max_remainder, self.rounds))
        fix_si = beam.pvalue.AsSingleton(fix)
        stars = checked["stars"] | "StarLabels" >> beam.FlatMap(_labels, fix_si, self.out)
        rest = fix | "RestLabels" >> beam.FlatMap(_remainder_labels, self.out)
        return (stars, rest) | "AllLabels" >> beam.Flatten()
