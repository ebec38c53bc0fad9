"""What changed between two releases: rows added, removed and kept by id, per dataset and per
source, and shifts of the quality-score distribution. Reads only the `id`, `source` and
`meta.quality_score` columns of the shards; writes nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow.compute as pc

from pipeline.publish import published_dir
from pipeline.release import parquet_layout, read_manifest
from pipeline.storage import read_parquet
from transforms.io.files import join


def _rows(out: str, manifest: dict[str, Any], dataset: str) -> dict[str, tuple[str, float | None]]:
    """id → (source dataset, quality score) for one dataset of a run."""
    rows: dict[str, tuple[str, float | None]] = {}
    for shards in parquet_layout(manifest).get(dataset, {}).values():
        for s in shards:
            table = read_parquet(join(out, s["path"]), columns=["id", "source", "meta"])
            ids = table.column("id").to_pylist()
            sources = pc.struct_field(table.column("source").combine_chunks(), "dataset")
            meta = table.column("meta").combine_chunks()
            names = [meta.type.field(i).name for i in range(meta.type.num_fields)]
            scores = (pc.struct_field(meta, "quality_score").to_pylist()
                      if "quality_score" in names else [None] * len(ids))
            for i, src, score in zip(ids, sources.to_pylist(), scores, strict=True):
                rows[i] = (src or "unknown", score)
    return rows


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    arr = np.asarray(values, dtype=float)
    return {"mean": round(float(arr.mean()), 4),
            **{f"p{q}": round(float(np.percentile(arr, q)), 4) for q in (10, 50, 90)}}


def diff_releases(previous_dir: str | None, new_dir: str) -> dict[str, Any]:
    """Per dataset: counts of added / removed / kept ids, the same per source, and the
    quality-score summary before and after. `previous_dir=None` (first release): all added."""
    new_manifest = read_manifest(new_dir)
    old_manifest = read_manifest(previous_dir) if previous_dir else {"shards": []}
    datasets = sorted(set(parquet_layout(new_manifest)) | set(parquet_layout(old_manifest)))
    out: dict[str, Any] = {}
    for dataset in datasets:
        new = _rows(published_dir(new_dir), new_manifest, dataset)
        old = _rows(published_dir(previous_dir), old_manifest, dataset) if previous_dir else {}
        added, removed = set(new) - set(old), set(old) - set(new)
        kept = set(new) & set(old)
        per_source: dict[str, Counter[str]] = {}
        for ids, kind, rows in ((added, "added", new), (removed, "removed", old),
                                (kept, "kept", new)):
            for i in ids:
                per_source.setdefault(rows[i][0], Counter())[kind] += 1
        out[dataset] = {
            "added": len(added), "removed": len(removed), "kept": len(kept),
            "added_ids": sorted(added)[:50], "removed_ids": sorted(removed)[:50],
            "by_source": {s: {k: c.get(k, 0) for k in ("added", "removed", "kept")}
                          for s, c in sorted(per_source.items())},
            "quality_score": {"before": _summary([v[1] for v in old.values() if v[1] is not None]),
                              "after": _summary([v[1] for v in new.values() if v[1] is not None])},
        }
    return {"previous": previous_dir, "datasets": out}


def changelog_markdown(diff: dict[str, Any], version: str, previous: str | None) -> str:
    """The changelog section of a release card."""
    lines = [f"## Changes in {version}" + (f" since {previous}" if previous else " (first release)"),
             "", "| dataset | added | removed | kept |", "|---|---|---|---|"]
    for name, d in diff["datasets"].items():
        lines.append(f"| {name} | {d['added']} | {d['removed']} | {d['kept']} |")
    for name, d in diff["datasets"].items():
        changed = {s: c for s, c in d["by_source"].items() if c["added"] or c["removed"]}
        if changed:
            lines += ["", f"**{name}** by source: " + "; ".join(
                f"{s} +{c['added']} −{c['removed']}" for s, c in changed.items())]
        before, after = d["quality_score"]["before"], d["quality_score"]["after"]
        if before and after:
            lines.append(f"quality score ({name}): mean {before['mean']} → {after['mean']}, "
                         f"median {before['p50']} → {after['p50']}")
    return "\n".join(lines) + "\n"
