"""DedupStage: exact → MinHash LSH near-duplicate → semantic (SemDeDup) dedup, as one global
decision over the whole input.

Reads Example batches. Per batch it computes small features (ids, scores, exact hashes,
signatures); exact hashes and LSH band buckets are shuffled in `num_partitions` coarse
partitions (an element carries many buckets); candidate pairs are verified and clustered by
union-find in one global step; SemDeDup runs per k-means cluster (clusters grouped into the same
partitions). The dropped ids then go as a side input to a filter over the original batches.
Writes MAIN (kept rows, with meta.dup_cluster = keeper id for rows that absorbed duplicates),
REJECTED (reason exact_duplicate / near_duplicate / semantic_duplicate, column duplicate_of =
the surviving keeper, or a previous release's row) and REPORT (counts and clusters).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from transforms.base import MAIN, METRICS_NAMESPACE, REJECTED, REPORT, RunContext, reject_rows
from transforms.dedup import _steps as st
from transforms.dedup.config import DedupConfig
from transforms.dedup.lsh import lsh_params
from transforms.dedup.release_index import load_index, save_index

STAGE = "dedup"
_NS = f"{METRICS_NAMESPACE}.{STAGE}"


def resolve(decisions: Iterable[st.Decision]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """id → (final surviving keeper, reason, detail); chains (a → b → c) end at c."""
    direct = {}
    for row, keeper, reason, detail in decisions:
        direct.setdefault(row, (keeper, reason, detail))
    out = {}
    for row, (keeper, reason, detail) in direct.items():
        seen = {row}
        final = keeper
        while final in direct and final not in seen:
            seen.add(final)
            final = direct[final][0]
        d = dict(detail)
        if final != keeper:
            d["via"] = st.untag(keeper)
        out[row] = (final, reason, d)
    return out


def build_report(resolved: dict[str, tuple[str, str, dict[str, Any]]], limit: int
                 ) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    members: dict[str, list[str]] = defaultdict(list)
    for row, (keeper, reason, _) in resolved.items():
        counts[reason] += 1
        members[st.untag(keeper)].append(row)
    listed = sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:limit]
    return {"stage": STAGE, "dropped": dict(sorted(counts.items())),
            "num_clusters": len(members),
            "clusters": [{"keeper": k, "members": [k, *sorted(st.untag(x) for x in m)],
                          "size": len(m) + 1,
                          "reasons": {r: sum(resolved[x][1] == r for x in m)
                                      for r in sorted({resolved[x][1] for x in m})}}
                         for k, m in listed]}


class _Features(beam.DoFn):
    def __init__(self, cfg: DedupConfig):
        self._cfg = cfg

    def setup(self) -> None:
        self._hasher = st.hasher_for(self._cfg)

    def process(self, batch: pa.RecordBatch) -> Iterable[dict[str, Any]]:
        if batch.num_rows:
            beam.metrics.Metrics.counter(_NS, "rows_in").inc(batch.num_rows)
            yield st.features(batch, self._cfg, self._hasher)


class _Embed(beam.DoFn):
    """Embeddings of the rows that survived exact and near dedup."""

    def __init__(self, cfg: DedupConfig, emb_cfg: Any):
        self._cfg, self._emb_cfg = cfg, emb_cfg

    def setup(self) -> None:
        from transforms.embed.model import Embedder

        self._embedder = Embedder(self._emb_cfg)

    def process(self, batch: pa.RecordBatch, dropped: dict) -> Iterable[dict[str, Any]]:
        from transforms.dedup.exact import key_texts, quality_scores, row_keys

        ids = np.asarray(row_keys(batch), dtype=object)
        keep = np.array([i not in dropped for i in ids], bool)
        if not keep.any():
            return
        texts = [t for t, k in zip(key_texts(batch, self._cfg.key), keep, strict=True) if k]
        emb = self._embedder.encode(texts)
        yield {"ids": ids[keep], "scores": quality_scores(batch, self._cfg.score_field)[keep],
               "emb": emb}


class _Apply(beam.DoFn):
    """Splits each original batch by the resolved decisions."""

    def process(self, batch: pa.RecordBatch, resolved: dict) -> Iterable[Any]:
        from schemas.records import with_meta
        from transforms.dedup.exact import row_keys

        ids = row_keys(batch)
        keepers = resolved.get("__keepers__", set())
        drop = np.array([i in resolved for i in ids], bool)
        kept = batch.filter(pa.array(~drop))
        if kept.num_rows:
            cl = [st.untag(k) if k in keepers else None
                  for k, d in zip(ids, drop, strict=True) if not d]
            beam.metrics.Metrics.counter(_NS, "rows_out").inc(kept.num_rows)
            yield with_meta(kept, dup_cluster=pa.array(cl, pa.string()))
        if drop.any():
            rows = np.flatnonzero(drop)
            dropped = batch.take(pa.array(rows))
            info = [resolved[ids[r]] for r in rows]
            for _, reason, _ in info:
                beam.metrics.Metrics.counter(_NS, f"dropped_{reason}").inc()
            yield beam.pvalue.TaggedOutput(REJECTED, reject_rows(
                dropped, STAGE, [x[1] for x in info], [x[2] for x in info],
                duplicate_of=pa.array([st.untag(x[0]) for x in info], pa.string())))


def _concat(lists: Iterable[list]) -> list:
    return [x for part in lists for x in part]


def _resolved_side(decisions: list[st.Decision]) -> dict:
    res: dict[Any, Any] = dict(resolve(decisions))
    res["__keepers__"] = {k for k, _, _ in res.values()}
    return res


class ExactDecisions(beam.PTransform):
    """Step 1 of 4: exact duplicates. Exact-key hashes of the batches (and of a previous
    release) are grouped in coarse partitions; each group keeps its best row. Features → one
    list of decisions."""

    def __init__(self, cfg: DedupConfig, release_features: dict[str, Any],
                 label: str | None = None):
        super().__init__(label)
        self.cfg, self.rel = cfg, release_features

    def expand(self, feats: beam.PCollection) -> beam.PCollection:
        P, rel = self.cfg.num_partitions, self.rel
        if not self.cfg.exact:
            return feats.pipeline | "NoExact" >> beam.Create([[]])
        entries = (feats | "ExactEntries" >> beam.FlatMap(st.exact_entries, P),
                   feats.pipeline | "Seed" >> beam.Create([None])
                   | "ReleaseExact" >> beam.FlatMap(
                       lambda _: st.exact_entries(rel, P) if len(rel["ids"]) else []))
        return (entries | "FlatExact" >> beam.Flatten()
                | "GroupExact" >> beam.GroupByKey()
                | "DecideExact" >> beam.Map(lambda kv: st.decide_exact(kv[1]))
                | "AllExact" >> beam.CombineGlobally(_concat))


class NearDecisions(beam.PTransform):
    """Step 2 of 4: MinHash LSH near-duplicates. Band buckets give candidate pairs; the rows
    involved are gathered, pairs verified and clustered in one global step (rows already
    dropped as exact duplicates left out). (features, exact decisions) → one decision list."""

    def __init__(self, cfg: DedupConfig, release_features: dict[str, Any],
                 label: str | None = None):
        super().__init__(label)
        self.cfg, self.rel = cfg, release_features

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        feats, exact = inputs
        cfg, rel, P = self.cfg, self.rel, self.cfg.num_partitions
        bands, rows = lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
        seed = feats.pipeline | "Seed" >> beam.Create([None])
        entries = (feats | "BandEntries" >> beam.FlatMap(st.band_entries, bands, rows, P),
                   seed | "ReleaseBands" >> beam.FlatMap(
                       lambda _: st.band_entries(rel, bands, rows, P) if len(rel["ids"]) else []))
        pairs = (entries | "FlatBands" >> beam.Flatten()
                 | "GroupBands" >> beam.GroupByKey()
                 | "Pairs" >> beam.Map(lambda kv: st.partition_pairs(kv[1]))
                 | "AllPairs" >> beam.CombineGlobally(_concat))
        wanted = pairs | "Wanted" >> beam.Map(lambda ps: {x for pair in ps for x in pair})
        nodes = (feats | "Involved" >> beam.Map(
            lambda f, w: st.involved_rows(f, w), beam.pvalue.AsSingleton(wanted))
            | "AllNodes" >> beam.combiners.ToList())
        return seed | "DecideNear" >> beam.Map(
            lambda _, ps, ns, ex: st.decide_near(
                ps, [*ns, st.involved_rows(rel, {x for pr in ps for x in pr})
                     if len(rel["ids"]) else None],
                {d[0] for d in ex}, cfg.threshold, cfg.verify),
            beam.pvalue.AsSingleton(pairs), beam.pvalue.AsSingleton(nodes),
            beam.pvalue.AsSingleton(exact))


class SemanticDecisions(beam.PTransform):
    """Step 3 of 4: SemDeDup. Rows that survived steps 1-2 are embedded, k-means clusters them
    (and a previous release's embeddings), and each cluster drops rows within `semantic_eps` of
    a better one. (batches, *decision lists so far) → {"decisions": list, "embeddings": per batch}."""

    def __init__(self, cfg: DedupConfig, ctx: RunContext, release: Any, label: str | None = None):
        super().__init__(label)
        self.cfg, self.ctx, self.release = cfg, ctx, release

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> dict[str, beam.PCollection]:
        batches, *decisions = inputs
        cfg, release, P = self.cfg, self.release, self.cfg.num_partitions
        so_far = (decisions | "FlatSoFar" >> beam.Flatten()
                  | "AllSoFar" >> beam.CombineGlobally(_concat)
                  | "SoFarSet" >> beam.Map(lambda ds: {d[0]: d[1] for d in ds}))
        emb = batches | "Embed" >> beam.ParDo(_Embed(cfg, self.ctx.embeddings),
                                              beam.pvalue.AsSingleton(so_far))
        rel_emb = None if release.emb is None else {
            "ids": np.array([st.RELEASE_TAG + i for i in release.emb_ids], dtype=object),
            "scores": np.full(len(release.emb_ids), np.inf), "emb": release.emb}
        sample = (emb | "EmbList" >> beam.combiners.ToList()
                  | "Sample" >> beam.Map(st.SampleFn(cfg.kmeans_sample).trim))
        cents = sample | "KMeans" >> beam.Map(st.train_centroids, cfg, self.ctx.seed)
        cents_si = beam.pvalue.AsSingleton(cents)
        sem = ((emb | "ClusterEntries" >> beam.FlatMap(st.cluster_entries, cents_si, P),
                cents | "ReleaseClusters" >> beam.FlatMap(
                    lambda c: st.cluster_entries(rel_emb, c, P)))
               | "FlatClusters" >> beam.Flatten()
               | "GroupClusters" >> beam.GroupByKey()
               | "DecideSemantic" >> beam.Map(
                   lambda kv: st.decide_semantic(kv[1], cfg.semantic_eps))
               | "AllSemantic" >> beam.CombineGlobally(_concat))
        return {"decisions": sem, "embeddings": emb}


class ApplyDecisions(beam.PTransform):
    """Step 4 of 4: resolve the decisions (chains end at their final keeper), split each
    original batch into kept rows (meta.dup_cluster) and rejected ones (duplicate_of), and
    build the report. (batches, *decision lists) → {MAIN, REJECTED, REPORT, "resolved"}."""

    def __init__(self, cfg: DedupConfig, label: str | None = None):
        super().__init__(label)
        self.cfg = cfg

    def expand(self, inputs: tuple[beam.PCollection, ...]) -> dict[str, beam.PCollection]:
        batches, *decisions = inputs
        limit = self.cfg.report_clusters
        resolved = (decisions | "FlatDecisions" >> beam.Flatten()
                    | "AllDecisions" >> beam.CombineGlobally(_concat)
                    | "Resolve" >> beam.Map(_resolved_side))
        out = batches | "Apply" >> beam.ParDo(
            _Apply(), beam.pvalue.AsSingleton(resolved)).with_outputs(REJECTED, main=MAIN)
        report = resolved | "Report" >> beam.Map(
            lambda r: build_report({k: v for k, v in r.items() if k != "__keepers__"}, limit))
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], REPORT: report, "resolved": resolved}


class DedupStage(beam.PTransform):
    """Exact, near (MinHash LSH) and semantic dedup with deterministic keepers: features, then
    ExactDecisions → NearDecisions → SemanticDecisions → ApplyDecisions (see the module doc).
    Rejects exact_duplicate / near_duplicate / semantic_duplicate (column duplicate_of)."""

    def __init__(self, config: DedupConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.cfg = config
        self.ctx = ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg = self.cfg
        params = st.index_params(cfg)
        release = load_index(cfg.release_index_dir, params)
        rel_feat = st.release_features(release)
        feats = batches | "Features" >> beam.ParDo(_Features(cfg))
        exact = feats | "Exact" >> ExactDecisions(cfg, rel_feat)
        decisions = [exact]
        if cfg.near:
            decisions.append((feats, exact) | "Near" >> NearDecisions(cfg, rel_feat))
        emb = None
        if cfg.semantic:
            sem = (batches, *decisions) | "Semantic" >> SemanticDecisions(cfg, self.ctx, release)
            decisions.append(sem["decisions"])
            emb = sem["embeddings"]
        out = (batches, *decisions) | "Decide" >> ApplyDecisions(cfg)
        if cfg.write_index_dir:
            self._write_index(feats, emb, out["resolved"], release, params)
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], REPORT: out[REPORT]}

    def _write_index(self, feats: Any, emb: Any, resolved: Any, release: Any,
                     params: dict[str, Any]) -> None:
        cfg = self.cfg

        def kept(parts: list, res: dict) -> list[dict[str, Any]]:
            out = []
            for f in parts:
                m = np.array([i not in res for i in f["ids"]], bool)
                out.append({k: v[m] for k, v in f.items()})
            return out

        fl = feats | "IndexList" >> beam.combiners.ToList()
        el = (emb if emb is not None else fl.pipeline | "NoEmb" >> beam.Create([])) \
            | "IndexEmb" >> beam.combiners.ToList()

        def write(_: Any, fs: list, es: list, res: dict) -> str:
            fs, es = kept(fs, res), (kept(es, res) if emb is not None else None)
            ids = [st.untag(i) for f in fs for i in f["ids"]] + list(release.ids)
            hashes = np.concatenate([f["hashes"] for f in fs] + [release.hashes])
            sigs = np.concatenate([f["sigs"] for f in fs] + (
                [release.sigs] if release.sigs is not None else []) or
                [np.zeros((0, cfg.num_perm), np.uint32)])
            e_ids, e = None, None
            if es is not None:
                e_ids = [st.untag(i) for x in es for i in x["ids"]] + list(release.emb_ids)
                parts = [x["emb"] for x in es] + ([release.emb] if release.emb is not None
                                                  else [])
                e = np.concatenate(parts) if parts else None
            save_index(cfg.write_index_dir, ids, hashes, sigs, params, e_ids, e,
                       getattr(self.ctx.embeddings, "model", None))
            return cfg.write_index_dir

        _ = fl.pipeline | "IndexSeed" >> beam.Create([None]) | "WriteIndex" >> beam.Map(
            write, beam.pvalue.AsSingleton(fl), beam.pvalue.AsSingleton(el),
            beam.pvalue.AsSingleton(resolved))
