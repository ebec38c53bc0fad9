"""DedupStage: exact → MinHash LSH near-duplicate → semantic (SemDeDup) dedup, as one global
decision over the whole input, computed without gathering it anywhere.

Reads Example batches. Per batch it computes small features (row keys and their 64-bit node
hashes, the batch key, scores, exact hashes, MinHash signatures) and emits them keyed by coarse
partitions (`num_partitions`; an element carries many rows). Every later step is a GroupByKey
or CoGroupByKey over such partitions: exact groups by hash; near duplicates by band buckets,
signature joins, connected components and a per-component keeper (near.py, components.py);
SemDeDup per k-means cluster (semdedup.py). Decisions stay a keyed collection (chunks of
rows → keeper); chains (exact → near → semantic keeper) are resolved by joins on the keeper,
and each decision is routed to the batch holding its row and joined with it by batch key.
Side inputs left, all bounded: the k-means centroids, the LSH parameters (in the closures), the
connected-components remainder (at most `cc_max_remainder` edges, else the run fails). A previous
release's features are loaded when the graph is built (as before; bounded by that release).
Writing a release index (`write_index_dir`) gathers the kept rows' features into one file.
Writes MAIN (kept rows, meta.dup_cluster = keeper id for rows that absorbed duplicates),
REJECTED (reason exact_duplicate / near_duplicate / semantic_duplicate, column duplicate_of =
the surviving keeper, or a previous release's row) and REPORT (counts and the largest clusters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from transforms.base import MAIN, METRICS_NAMESPACE, REJECTED, REPORT, RunContext, reject_rows
from transforms.dedup import _steps as st
from transforms.dedup import keyed as kd
from transforms.dedup.components import ConcatChunks, cat, split_by, split_grouped, track
from transforms.dedup.config import DedupConfig
from transforms.dedup.lsh import lsh_params
from transforms.dedup.near import NearDecisions, band_entries, sig_entries
from transforms.dedup.release_index import load_index, save_index
from transforms.dedup.semdedup import SemanticDecisions, kept_rows
from transforms.dedup.template import DfTable

STAGE = "dedup"
_NS = f"{METRICS_NAMESPACE}.{STAGE}"
_ROWS = ("node", "key", "score", "batch")


def keyed_features(f: dict[str, Any], keys: list[str], bkey: int) -> dict[str, Any]:
    """st.features plus node, rank and batch columns."""
    f["key"], f["score"] = np.asarray(keys, dtype=object), f["scores"]
    f["node"], f["rank"] = kd.node_ids(keys), kd.ranks(keys)
    f["batch"] = np.full(len(keys), bkey, np.int64)
    return f


def exact_entries(f: dict[str, Any], P: int) -> Iterable[tuple]:
    part = (st.fmix64(f["hashes"]) % np.uint64(P)).astype(np.int64)
    yield from split_by(part, {"hash": f["hashes"], **{c: f[c] for c in _ROWS}})


def decide_exact(group: Iterable[dict], P: int) -> Iterable[tuple]:
    """Within one partition: every row whose folded key equals a better row's is dropped."""
    from transforms.dedup.clusters import priority_order
    from transforms.dedup.exact import exact_groups

    d = cat(group, "hash", *_ROWS)
    track("exact", d)
    if len(d["node"]) < 2:
        return
    pinned = np.array([k.startswith(st.RELEASE_TAG) for k in d["key"]], bool)
    keeper = exact_groups(d["hash"], priority_order(list(d["key"]), d["score"], pinned))
    rows = [(r, int(keeper[r]), "exact_duplicate", {"release": bool(pinned[keeper[r]])})
            for r in np.flatnonzero(keeper != np.arange(len(keeper))).tolist() if not pinned[r]]
    if rows:
        yield from kd.route(kd.decisions(rows, d), "node", P)


class _DfSum(beam.CombineFn):
    """Sums the batches' document-frequency sketches (a fixed-size table: bounded)."""

    def __init__(self, width: int):
        self.width = width

    def create_accumulator(self) -> DfTable:
        return DfTable.empty(self.width)

    def add_input(self, acc: DfTable, t: DfTable) -> DfTable:
        acc.counts += t.counts  # in place: the accumulator is this combine's own
        acc.docs += t.docs
        return acc

    def merge_accumulators(self, accs: Iterable[DfTable]) -> DfTable:
        out = DfTable.empty(self.width)
        for a in accs:
            out = out.merge(a)
        return out

    def extract_output(self, acc: DfTable) -> DfTable:
        return acc


class _Features(beam.DoFn):
    """Batch → keyed feature chunks: "exact", "bands", "sigs" (and "index"); with a
    document-frequency side input, template shingles left out of the signatures."""

    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def setup(self) -> None:
        self._hasher = st.hasher_for(self._cfg)

    def process(self, batch: pa.RecordBatch, df: DfTable | None = None) -> Iterable[Any]:
        from transforms.dedup.exact import row_keys

        if not batch.num_rows:
            return
        cfg = self._cfg
        beam.metrics.Metrics.counter(_NS, "rows_in").inc(batch.num_rows)
        keys = row_keys(batch)
        bkey = kd.batch_key(keys)
        f = keyed_features(st.features(batch, cfg, self._hasher, df), keys, bkey)
        yield from _feature_outputs(f, cfg)
        if cfg.write_index_dir:
            yield beam.pvalue.TaggedOutput("index", (bkey, {
                "node": f["node"], "key": f["key"], "hashes": f["hashes"], "sigs": f["sigs"]}))


def _feature_outputs(f: dict[str, Any], cfg: DedupConfig) -> Iterable[Any]:
    P = cfg.num_partitions
    if cfg.exact:
        for kv in exact_entries(f, P):
            yield beam.pvalue.TaggedOutput("exact", kv)
    if cfg.near:
        bands, rows = lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
        for kv in band_entries(f, bands, rows, P):
            yield beam.pvalue.TaggedOutput("bands", kv)
        for kv in sig_entries(f, P):
            yield beam.pvalue.TaggedOutput("sigs", kv)


def _release_outputs(rel: dict[str, Any], cfg: DedupConfig) -> Iterable[Any]:
    if len(rel["ids"]):
        keys = list(rel["ids"])
        yield from _feature_outputs(keyed_features(dict(rel), keys, kd.NO_BATCH), cfg)


class _Apply(beam.DoFn):
    """(batch key, {"batches", "decisions", "keepers"}) → kept rows (MAIN, meta.dup_cluster)
    and rejected rows (duplicate_of = the final keeper)."""

    def process(self, kv: tuple[int, dict[str, Iterable]]) -> Iterable[Any]:
        from schemas.records import with_meta
        from transforms.dedup.exact import row_keys

        d = cat(kv[1]["decisions"], *kd.DECISION_COLS)
        keepers = cat(kv[1]["keepers"], "knode")["knode"]
        track("apply", d, {"knode": keepers})
        for batch in kv[1]["batches"]:
            if not batch.num_rows:
                continue
            ids = row_keys(batch)
            beam.metrics.Metrics.distribution("refinery.dedup.groups", "apply_batch_bytes"
                                              ).update(batch.nbytes)
            nodes = kd.node_ids(ids)
            drop = np.isin(nodes, d["node"])
            kept = batch.filter(pa.array(~drop))
            if kept.num_rows:
                is_keeper = np.isin(nodes[~drop], keepers)
                cl = [st.untag(k) if flag else None for k, flag in
                      zip(np.asarray(ids, dtype=object)[~drop], is_keeper, strict=True)]
                beam.metrics.Metrics.counter(_NS, "rows_out").inc(kept.num_rows)
                yield with_meta(kept, dup_cluster=pa.array(cl, pa.string()))
            if drop.any():
                rows = np.flatnonzero(drop)
                order = np.argsort(d["node"], kind="stable")
                at = order[np.searchsorted(d["node"][order], nodes[rows])]
                reasons = d["reason"][at].tolist()
                for reason in reasons:
                    beam.metrics.Metrics.counter(_NS, f"dropped_{reason}").inc()
                yield beam.pvalue.TaggedOutput(REJECTED, reject_rows(
                    batch.take(pa.array(rows)), STAGE, reasons, d["detail"][at].tolist(),
                    duplicate_of=pa.array([st.untag(k) for k in d["kkey"][at]], pa.string())))


def _by_keeper_id(kv: tuple[int, dict], P: int) -> Iterable[tuple]:
    d = kv[1]
    d = dict(d, kid=kd.node_ids([st.untag(k) for k in d["kkey"]]))
    yield from kd.route(d, "kid", P)


def _carrier_split(kv: tuple[int, dict], P: int) -> Iterable[Any]:
    d = kv[1]
    cand = kd.is_carrier_candidate(d)
    if cand.any():
        c = {k: v[cand] for k, v in d.items()}
        c["id_node"] = kd.node_ids([st.untag(k) for k in c["kkey"]])  # by released row
        for part in kd.route(c, "id_node", P):
            yield beam.pvalue.TaggedOutput("carriers", part)
    if (~cand).any():
        yield (kv[0], {k: v[~cand] for k, v in d.items()})


class ApplyDecisions(beam.PTransform):
    """Step 4 of 4: resolve chains (an exact duplicate of a row that a later step dropped
    points at that row's keeper), keep one copy of re-read released rows (snapshot releases),
    route decisions to their rows' batches and split each batch by a join on its batch key,
    and build the bounded report. ({"batches": keyed by batch key, "exact", "near",
    "semantic"}) → {MAIN, REJECTED, REPORT, "decisions"}."""

    def __init__(self, cfg: DedupConfig, label: str | None = None):
        super().__init__(label)
        self.cfg = cfg

    def _rewrite(self, name: str, d: Any, later: list) -> Any:
        P = self.cfg.num_partitions
        if d is None or not later:
            return d
        later_p = later[0] if len(later) == 1 else (
            later | f"FlatLater{name}" >> beam.Flatten())
        by_keeper = d | f"ByKeeper{name}" >> beam.FlatMap(lambda kv: kd.route(kv[1], "knode", P))
        return ({"d": by_keeper, "later": later_p} | f"JoinChain{name}" >> beam.CoGroupByKey()
                | f"Chain{name}" >> beam.FlatMap(lambda kv: kd.rewrite(kv[1], P)))

    def expand(self, inputs: dict[str, Any]) -> dict[str, beam.PCollection]:
        cfg, P = self.cfg, self.cfg.num_partitions
        exact, near, sem = inputs.get("exact"), inputs.get("near"), inputs.get("semantic")
        near = self._rewrite("Near", near, [x for x in (sem,) if x is not None])
        exact = self._rewrite("Exact", exact, [x for x in (near, sem) if x is not None])
        parts = [x for x in (exact, near, sem) if x is not None]
        final = (parts or [inputs["batches"].pipeline | "NoDecisions" >> beam.Create([])]
                 ) | "FlatDecisions" >> beam.Flatten()
        if cfg.release_keep_same_ids:
            split = final | "Carriers" >> beam.FlatMap(_carrier_split, P).with_outputs(
                "carriers", main="rest")
            kept = (split["carriers"] | "GroupCarriers" >> beam.GroupByKey()
                    | "KeepCarrier" >> beam.FlatMap(lambda kv: kd.carriers(kv[1], P)))
            final = (split["rest"], kept) | "FlatFinal" >> beam.Flatten()
        # split by batch, decision chunks get small: merged per batch before the join
        by_batch = (final | "ToBatches" >> beam.FlatMap(lambda kv: kd.route(kv[1], "batch", None))
                    | "MergeByBatch" >> beam.CombinePerKey(ConcatChunks(kd.DECISION_COLS)))
        keepers = (final | "Keepers" >> beam.FlatMap(lambda kv: kd.route(
            {"knode": kv[1]["knode"], "kbatch": kv[1]["kbatch"]}, "kbatch", None))
            | "MergeKeepers" >> beam.CombinePerKey(ConcatChunks(("knode", "kbatch"))))
        joined = split_grouped({"batches": [inputs["batches"]], "decisions": [by_batch],
                                "keepers": [keepers]}, cfg.shuffle_parts, "JoinBatches")
        applied = [j | f"Apply{i}" >> beam.ParDo(_Apply()).with_outputs(REJECTED, main=MAIN)
                   for i, j in enumerate(joined)]
        out = {tag: [a[tag] for a in applied] | f"Flat{tag.title()}" >> beam.Flatten()
               for tag in (MAIN, REJECTED)}
        report = (final | "ByKeeperId" >> beam.FlatMap(_by_keeper_id, P)
                  | "GroupClusters" >> beam.CombinePerKey(ConcatChunks(kd.DECISION_COLS))
                  | "Clusters" >> beam.FlatMap(lambda kv: kd.cluster_summaries([kv[1]]))
                  | "Report" >> beam.CombineGlobally(kd.ReportFn(
                      cfg.report_clusters, STAGE, st.near_settings(cfg), cfg.warn_cluster_size)))
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], REPORT: report, "decisions": by_batch}


class DedupStage(beam.PTransform):
    """Exact, near (MinHash LSH) and semantic dedup with deterministic keepers: features, then
    exact → NearDecisions → SemanticDecisions → ApplyDecisions (see the module doc).
    Rejects exact_duplicate / near_duplicate / semantic_duplicate (column duplicate_of)."""

    def __init__(self, config: DedupConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.cfg = config
        self.ctx = ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, P = self.cfg, self.cfg.num_partitions
        params = st.index_params(cfg)
        release = load_index(cfg.release_index_dir, params)
        rel = st.release_features(release, cfg)
        tags = ["exact", "bands", "sigs", "index"]
        side = {}
        if st.uses_df(cfg):
            df = (batches | "ShingleDf" >> beam.Map(
                      lambda b: st.df_table(b, cfg, st.hasher_for(cfg)))
                  | "SumDf" >> beam.CombineGlobally(_DfSum(cfg.df_sketch_width)))
            side["df"] = beam.pvalue.AsSingleton(df)
        feats = batches | "Features" >> beam.ParDo(_Features(cfg), **side).with_outputs(*tags)
        rfeats = (batches.pipeline | "Seed" >> beam.Create([None])
                  | "ReleaseFeatures" >> beam.FlatMap(lambda _: _release_outputs(rel, cfg))
                  .with_outputs(*tags[:3]))

        def both(tag: str) -> beam.PCollection:
            return (feats[tag], rfeats[tag]) | f"Flat{tag.title()}" >> beam.Flatten()

        decided: dict[str, Any] = {}
        if cfg.exact:
            decided["exact"] = (both("exact") | "GroupExact" >> beam.GroupByKey()
                                | "DecideExact" >> beam.FlatMap(
                                    lambda kv: decide_exact(kv[1], P)))
        if cfg.near:
            dropped = (decided["exact"] if "exact" in decided
                       else batches.pipeline | "NoExact" >> beam.Create([]))
            bands, rows = lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
            decided["near"] = ({"bands": (feats["bands"], rfeats["bands"]),
                                "sigs": (feats["sigs"], rfeats["sigs"]),
                                "dropped": dropped} | "Near" >> NearDecisions(
                bands, rows, cfg.threshold, cfg.verify, P, cfg.cc_rounds, cfg.cc_max_remainder,
                cfg.shuffle_parts, tail_threshold=cfg.last_paragraph))
        keyed_batches = batches | "KeyBatches" >> beam.Map(
            lambda b: (kd.batch_key(_row_keys(b)), b))
        emb = None
        if cfg.semantic:
            so_far = ([decided[k] for k in ("exact", "near") if k in decided]
                      or [batches.pipeline | "NoSoFar" >> beam.Create([])])
            so_far_b = (so_far | "FlatSoFar" >> beam.Flatten()
                        | "SoFarToBatches" >> beam.FlatMap(
                            lambda kv: kd.route(kv[1], "batch", None)))
            sem = ({"batches": keyed_batches, "so_far": so_far_b}
                   | "Semantic" >> SemanticDecisions(cfg, self.ctx.embeddings, self.ctx.seed,
                                                     release))
            decided["semantic"] = sem["decisions"]
            emb = sem["embeddings"]
        out = {"batches": keyed_batches, **decided} | "Decide" >> ApplyDecisions(cfg)
        if cfg.write_index_dir:
            self._write_index(feats["index"], emb, out["decisions"], release, params)
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], REPORT: out[REPORT]}

    def _write_index(self, index: Any, emb: Any, decisions: Any, release: Any,
                     params: dict[str, Any]) -> None:
        """The one gather left: the kept rows' features into one index file (only when
        `write_index_dir` is set; the index format is a single file)."""
        cfg, model = self.cfg, getattr(self.ctx.embeddings, "model", None)
        inputs = {"f": index, "d": decisions}
        if emb is not None:
            inputs["e"] = emb | "KeyEmb" >> beam.FlatMap(lambda c: kd.route(c, "batch", None))

        def kept(kv: tuple[int, dict]) -> Iterable[tuple[str, dict]]:
            dropped = cat(kv[1]["d"], "node")["node"]
            for tag in ("f", "e"):
                for c in kv[1].get(tag, []):
                    yield tag, kept_rows(c, dropped)

        parts = (inputs | "JoinIndex" >> beam.CoGroupByKey() | "KeptIndex" >> beam.FlatMap(kept)
                 | "IndexList" >> beam.combiners.ToList())

        def write(items: list) -> str:
            fs = [c for t, c in items if t == "f"]
            es = [c for t, c in items if t == "e"] if emb is not None else None
            ids = [st.untag(i) for f in fs for i in f["key"]] + list(release.ids)
            hashes = np.concatenate([f["hashes"] for f in fs] + [release.hashes])
            sigs = np.concatenate([f["sigs"] for f in fs] + (
                [release.sigs] if release.sigs is not None else []) or
                [np.zeros((0, cfg.num_perm), np.uint32)])
            e_ids, e = None, None
            if es is not None:
                e_ids = [st.untag(i) for x in es for i in x["key"]] + list(release.emb_ids)
                arrs = [x["emb"] for x in es] + ([release.emb] if release.emb is not None
                                                 else [])
                e = np.concatenate(arrs) if arrs else None
            save_index(cfg.write_index_dir, ids, hashes, sigs, params, e_ids, e, model)
            return cfg.write_index_dir

        _ = parts | "WriteIndex" >> beam.Map(write)


def _row_keys(batch: pa.RecordBatch) -> list[str]:
    from transforms.dedup.exact import row_keys

    return row_keys(batch)
