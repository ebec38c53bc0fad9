"""One run as the release diff reads it: its published rows per dataset, `rejected/` and dead
letter, read column-wise (ids, content hashes, source file and row, lineage, reject stage and
reason) into polars frames, and what changed between two runs' configs."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from pipeline.outputs.layout import RunLayout
from pipeline.outputs.publish import published_dir
from pipeline.outputs.storage import files_under, parquet_schema, read_jsonl, read_parquet
from pipeline.release.check import parquet_layout, read_manifest
from transforms.io.files import join

COLUMNS = {"id": "id", "content_hash": "hash", "source.dataset": "dataset",
           "source.file": "file", "source.row": "row", "meta.lineage.stage": "made_by",
           "meta.quality_score": "quality"}
TYPES = {"id": pl.Utf8, "hash": pl.Utf8, "dataset": pl.Utf8, "file": pl.Utf8, "row": pl.Int64,
         "made_by": pl.Utf8, "quality": pl.Float64}
# files written before rows had a content_hash column: their ids were the content hashes
_LEGACY_HASH = pl.coalesce("hash", "id").alias("hash")
PARENTS = {"id": "id", "meta.lineage.parent_ids": "parents"}  # read for the examples only


def _fields(schema: Any, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for f in schema:
        names.add(prefix + f.name)
        if hasattr(f.type, "num_fields") and f.type.num_fields and not hasattr(
                f.type, "value_type"):
            names |= _fields([f.type.field(i) for i in range(f.type.num_fields)],
                             prefix + f.name + ".")
    return names


def _read(path: str, wanted: dict[str, str], types: dict[str, Any]) -> pl.DataFrame:
    """The `wanted` (nested) columns of one Parquet file, renamed; missing ones as nulls."""
    have = _fields(parquet_schema(path))
    cols = [c for c in wanted if c in have]
    table = read_parquet(path, columns=cols)  # nested columns come back under their leaf name
    leaf = {c.rsplit(".", 1)[-1]: wanted[c] for c in cols}
    frame = pl.from_arrow(table.rename_columns([leaf[n] for n in table.column_names]))
    assert isinstance(frame, pl.DataFrame)
    missing = [pl.lit(None, dtype=types[wanted[c]]).alias(wanted[c]) for c in wanted
               if c not in have]
    return frame.with_columns(missing).select(
        [pl.col(n).cast(types[n]) for n in wanted.values()])


def _published(out: str, manifest: dict[str, Any], dataset: str) -> pl.DataFrame:
    frames = []
    for shards in parquet_layout(manifest).get(dataset, {}).values():
        for s in shards:
            frame = _read(join(out, s["path"]), COLUMNS, TYPES)
            frames.append(frame.with_columns(_LEGACY_HASH, pl.lit(s["path"]).alias("shard")))
    if not frames:
        return pl.DataFrame(schema={**TYPES, "shard": pl.Utf8})
    return pl.concat(frames)


def _rejected(out: str, manifest: dict[str, Any]) -> pl.DataFrame:
    """Every rejected row of a run: id, content hash, source position, stage, reason,
    benchmark."""
    wanted = {"id": "id", "content_hash": "hash", "source.file": "file", "source.row": "row",
              "reject_stage": "stage", "reject_reason": "reason", "reject_detail": "detail"}
    types = {"id": pl.Utf8, "hash": pl.Utf8, "file": pl.Utf8, "row": pl.Int64,
             "stage": pl.Utf8, "reason": pl.Utf8, "detail": pl.Utf8}
    frames = [_read(join(out, f["path"]), wanted, types)
              for f in manifest.get("rejected_files", []) if f.get("rows")]
    if not frames:
        return pl.DataFrame(schema={**types, "benchmark": pl.Utf8}).drop("detail")
    frame = pl.concat(frames).with_columns(_LEGACY_HASH)
    bench = pl.col("detail").str.json_path_match("$.benchmark")
    return frame.with_columns(bench.alias("benchmark")).drop("detail").unique("id", keep="first")


def _deadletter(out: str) -> pl.DataFrame:
    rows = [{"id": r.get("record_id"), "file": r.get("file"), "row": r.get("row"),
             "error": str(r.get("error"))[:200]}
            for path in files_under(RunLayout(out).deadletter_dir) if path.endswith(".jsonl")
            for r in read_jsonl(path)]
    return pl.DataFrame(rows, schema={"id": pl.Utf8, "file": pl.Utf8, "row": pl.Int64,
                                      "error": pl.Utf8})


def _flat(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}.{key}").items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if all("name" in v for v in value):  # named entries (benchmarks, sources): by name
            return {f"{prefix}[{v['name']}]": json.dumps(v, sort_keys=True) for v in value}
        return {k: v for i, sub in enumerate(value)
                for k, v in _flat(sub, f"{prefix}[{i}]").items()}
    return {prefix: json.dumps(value, sort_keys=True)}


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    """stage → its config keys that differ ('key: old → new', '+ key', '- key')."""
    out: dict[str, list[str]] = {}
    old_stages = (old.get("config") or {}).get("stages") or {}
    new_stages = (new.get("config") or {}).get("stages") or {}
    for stage in sorted(set(old_stages) | set(new_stages)):
        a, b = _flat(old_stages.get(stage), stage), _flat(new_stages.get(stage), stage)
        lines = [f"+ {k}" for k in sorted(set(b) - set(a))]
        lines += [f"- {k}" for k in sorted(set(a) - set(b))]
        lines += [f"{k}: {a[k]} → {b[k]}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
        if lines:
            out[stage] = lines
    return out


class Run:
    """One run's column-wise view: published rows per dataset, rejected, dead letter."""

    def __init__(self, out_dir: str | None) -> None:
        self.out = published_dir(out_dir) if out_dir else None
        self.manifest = read_manifest(out_dir) if out_dir else {"shards": []}
        self.rejected = (_rejected(self.out, self.manifest) if self.out else
                         _rejected("", {}))
        self.deadletter = _deadletter(self.out) if self.out else _deadletter("/nonexistent")
        self.files = {i["path"] for i in self.manifest.get("inputs", [])}
        self._rows: dict[str, pl.DataFrame] = {}
        self._positions: pl.DataFrame | None = None

    def rows(self, dataset: str) -> pl.DataFrame:
        if dataset not in self._rows:
            self._rows[dataset] = (_published(self.out, self.manifest, dataset) if self.out
                                   else pl.DataFrame(schema={**TYPES, "shard": pl.Utf8}))
        return self._rows[dataset]

    def datasets(self) -> set[str]:
        return set(parquet_layout(self.manifest))

    def at(self, keys: pl.DataFrame) -> pl.DataFrame:
        """positions() of the (file, row) pairs in `keys` only, one row each (kept first):
        a semi join hashes the few keys, not the whole run."""
        found = self.positions().join(keys.select("file", "row").unique(),
                                      on=["file", "row"], how="semi")
        return found.unique(["file", "row"], keep="first", maintain_order=True)

    def parents(self, rows: pl.DataFrame) -> dict[str, list[str]]:
        """id → parent ids, read from the shards of `rows` (id, shard) only."""
        out: dict[str, list[str]] = {}
        for shard, ids in rows.group_by("shard").agg("id").iter_rows():
            table = _read(join(self.out, shard), PARENTS,
                          {"id": pl.Utf8, "parents": pl.List(pl.Utf8)})
            hit = table.filter(pl.col("id").is_in(ids))
            out.update(dict(zip(hit["id"].to_list(), hit["parents"].to_list(), strict=True)))
        return out

    def positions(self) -> pl.DataFrame:
        """(file, row) → the id found there and where it ended (kept / rejected / deadletter),
        for source rows only (synthesized rows have no source position)."""
        if self._positions is None:
            parts = [self.rows(d).filter(pl.col("made_by").is_null())
                     .select("file", "row", "id", pl.lit("kept").alias("fate"))
                     for d in sorted(self.datasets())]
            parts.append(self.rejected.select("file", "row", "id", pl.lit("rejected").alias("fate")))
            parts.append(self.deadletter.select("file", "row", "id",
                                                pl.lit("deadletter").alias("fate")))
            self._positions = pl.concat(parts).filter(pl.col("file").is_not_null())
            self.files |= set(self._positions["file"].unique().to_list())
        return self._positions
