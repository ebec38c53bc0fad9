"""The exact + near decisions of DedupStage computed in one process, without Beam: the same
pure steps chained directly. Used by tests (as the reference the runners must match) and by
bench/dedup.py. Reads Example batches; returns id → (keeper id, reason, detail) of dropped rows
(inputs with one row per id)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from transforms.dedup import _steps as st
from transforms.dedup.config import DedupConfig
from transforms.dedup.lsh import lsh_params
from transforms.dedup.template import DfTable


def resolve(decisions: Sequence[st.Decision]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """id → (final surviving keeper, reason, detail); chains (a → b → c) end at c."""
    direct: dict[str, tuple[str, str, dict[str, Any]]] = {}
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


def dedup_local(batches: Sequence[pa.RecordBatch], cfg: DedupConfig
                ) -> dict[str, tuple[str, str, dict[str, Any]]]:
    hasher = st.hasher_for(cfg)
    batches = [b for b in batches if b.num_rows]
    df = None
    if st.uses_df(cfg):
        df = DfTable.empty(cfg.df_sketch_width)
        for b in batches:
            df = df.merge(st.df_table(b, cfg, hasher))
    feats = [st.features(b, cfg, hasher, df) for b in batches]
    P = cfg.num_partitions
    exact: list[st.Decision] = []
    if cfg.exact:
        groups: dict[int, list] = defaultdict(list)
        for f in feats:
            for p, e in st.exact_entries(f, P):
                groups[p].append(e)
        for p in sorted(groups):
            exact += st.decide_exact(groups[p])
    near: list[st.Decision] = []
    if cfg.near:
        bands, rows = lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
        bgroups: dict[int, list] = defaultdict(list)
        for f in feats:
            for p, e in st.band_entries(f, bands, rows, P):
                bgroups[p].append(e)
        pairs = [x for p in sorted(bgroups) for x in st.partition_pairs(bgroups[p])]
        wanted = {x for pair in pairs for x in pair}
        nodes = [st.involved_rows(f, wanted) for f in feats]
        near = st.decide_near(pairs, nodes, {d[0] for d in exact}, cfg.threshold, cfg.verify,
                              cfg.last_paragraph)
    return {st.untag(k): (st.untag(v[0]), v[1], v[2]) for k, v in resolve(exact + near).items()}
