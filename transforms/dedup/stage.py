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


class DedupStage(beam.PTransform):
    """Exact, near (MinHash LSH) and semantic dedup with deterministic keepers."""

    def __init__(self, config: DedupConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.cfg = config
        self.ctx = ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, p = self.cfg, batches.pipeline
        P = cfg.num_partitions
        params = st.index_params(cfg)
        release = load_index(cfg.release_index_dir, params)
        rel_feat = st.release_features(release)
        feats = batches | "Features" >> beam.ParDo(_Features(cfg))
        seed = p | "Seed" >> beam.Create([None])
        decisions = []

        exact = p | "NoExact" >> beam.Create([[]])
        if cfg.exact:
            entries = (feats | "ExactEntries" >> beam.FlatMap(st.exact_entries, P),
                       seed | "ReleaseExact" >> beam.FlatMap(
                           lambda _: st.exact_entries(rel_feat, P) if len(rel_feat["ids"])
                           else []))
            exact = (entries | "FlatExact" >> beam.Flatten()
                     | "GroupExact" >> beam.GroupByKey()
                     | "DecideExact" >> beam.Map(lambda kv: st.decide_exact(kv[1]))
                     | "AllExact" >> beam.CombineGlobally(_concat))
        decisions.append(exact)

        if cfg.near:
            bands, rows = lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
            entries = (feats | "BandEntries" >> beam.FlatMap(st.band_entries, bands, rows, P),
                       seed | "ReleaseBands" >> beam.FlatMap(
                           lambda _: st.band_entries(rel_feat, bands, rows, P)
                           if len(rel_feat["ids"]) else []))
            pairs = (entries | "FlatBands" >> beam.Flatten()
                     | "GroupBands" >> beam.GroupByKey()
                     | "Pairs" >> beam.Map(lambda kv: st.partition_pairs(kv[1]))
                     | "AllPairs" >> beam.CombineGlobally(_concat))
            wanted = pairs | "Wanted" >> beam.Map(lambda ps: {x for pair in ps for x in pair})
            nodes = (feats | "Involved" >> beam.Map(
                lambda f, w: st.involved_rows(f, w), beam.pvalue.AsSingleton(wanted))
                | "AllNodes" >> beam.combiners.ToList())
            near = seed | "DecideNear" >> beam.Map(
                lambda _, ps, ns, ex: st.decide_near(
                    ps, [*ns, st.involved_rows(rel_feat, {x for pr in ps for x in pr})
                         if len(rel_feat["ids"]) else None],
                    {d[0] for d in ex}, cfg.threshold, cfg.verify),
                beam.pvalue.AsSingleton(pairs), beam.pvalue.AsSingleton(nodes),
                beam.pvalue.AsSingleton(exact))
            decisions.append(near)

        emb = None
        if cfg.semantic:
            so_far = ((decisions | "FlatSoFar" >> beam.Flatten()
                       | "AllSoFar" >> beam.CombineGlobally(_concat))
                      | "SoFarSet" >> beam.Map(lambda ds: {d[0]: d[1] for d in ds}))
            emb = batches | "Embed" >> beam.ParDo(_Embed(cfg, self.ctx.embeddings),
                                                  beam.pvalue.AsSingleton(so_far))
            sampler = st.SampleFn(cfg.kmeans_sample)
            rel_emb = None if release.emb is None else {
                "ids": np.array([st.RELEASE_TAG + i for i in release.emb_ids], dtype=object),
                "scores": np.full(len(release.emb_ids), np.inf), "emb": release.emb}
            sample = (emb | "EmbList" >> beam.combiners.ToList()
                      | "Sample" >> beam.Map(sampler.trim))
            seed_val = self.ctx.seed
            cents = sample | "KMeans" >> beam.Map(st.train_centroids, cfg, seed_val)
            cents_si = beam.pvalue.AsSingleton(cents)
            sem = ((emb | "ClusterEntries" >> beam.FlatMap(st.cluster_entries, cents_si, P),
                    cents | "ReleaseClusters" >> beam.FlatMap(
                        lambda c: st.cluster_entries(rel_emb, c, P)))
                   | "FlatClusters" >> beam.Flatten()
                   | "GroupClusters" >> beam.GroupByKey()
                   | "DecideSemantic" >> beam.Map(
                       lambda kv: st.decide_semantic(kv[1], cfg.semantic_eps))
                   | "AllSemantic" >> beam.CombineGlobally(_concat))
            decisions.append(sem)

        all_dec = (decisions | "FlatDecisions" >> beam.Flatten()
                   | "AllDecisions" >> beam.CombineGlobally(_concat))
        resolved = all_dec | "Resolve" >> beam.Map(_resolved_side)
        out = batches | "Apply" >> beam.ParDo(
            _Apply(), beam.pvalue.AsSingleton(resolved)).with_outputs(REJECTED, main=MAIN)
        report = resolved | "Report" >> beam.Map(
            lambda r: build_report({k: v for k, v in r.items() if k != "__keepers__"},
                                   cfg.report_clusters))
        if cfg.write_index_dir:
            self._write_index(feats, emb, resolved, release, params)
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], REPORT: report}

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
