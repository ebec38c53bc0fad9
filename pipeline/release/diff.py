"""What changed between two releases, and why, row by row.

Rows are matched by id per dataset: added, removed, kept; then a removed and an added row with
the same content hash (one to one) are one row that moved (a row inserted above it, a file
renamed): counted as kept and `moved`, not removed and added. Every removed row gets the reason
it is gone and every added row the reason it is new, from the two runs' manifests, shards,
`rejected/` files and dead letters only, read column-wise (ids, content hashes, source file and
row, lineage, reject stage/reason) and joined with polars, so millions of rows take seconds:

removed: now rejected by stage S (reason R; the benchmark, for decontamination; by id, or by
content hash for a row that moved) · now dead-lettered · source file removed · duplicate (its
content is kept under another id) · content changed (its source file and row now hold an added,
rejected or dead-lettered row) · source row removed · synthesized row not made again.
added: synthesized by stage S (parents kept in the examples) · newly passing stage S (it was
rejected with R) · no longer dead-lettered · new source file · duplicate · content changed ·
new source row.

When a reason names a stage whose config differs between the manifests, the change is named
beside it. Text is read only for the example rows (old and new side by side for content
changes). `write_diff_rows` writes every changed row with its reason (Parquet).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from pipeline.release.runs import Run, config_changes

EXAMPLES = 20  # example rows kept per reason (JSON, HTML)
DUPLICATE = "duplicate (same content kept under another id)"
MOVED = "moved (same content, another source position)"


def _stage_reason(prefix: str) -> pl.Expr:
    bench = pl.when(pl.col("benchmark").is_not_null()).then(
        pl.concat_str(pl.lit(" (benchmark "), pl.col("benchmark"), pl.lit(")"))).otherwise(
        pl.lit(""))
    return pl.concat_str(pl.lit(prefix), pl.col("stage"), pl.lit(": "), pl.col("reason"), bench)


REJECTION = ("stage", "reason", "benchmark")


def _beside(rows: pl.DataFrame, other: Run, other_id: str, other_rows: pl.DataFrame | None,
            partners: pl.DataFrame | None) -> pl.DataFrame:
    """`rows` with what the other run says of them: its rejection (stage, reason, benchmark;
    by id, else by content hash: `by_hash`), its dead-letter error (`dl_error`), the id of the
    changed row now at the same source position (`other_id`: a published one only when it is
    one of `partners`, the rows that changed on the other side), whether the other run read the row's file at all
    (`file_there`) and whether its outputs (`other_rows`) hold the same content (`dup`)."""
    pos = other.at(rows).rename({"id": other_id})
    if partners is not None:  # a position now holding a published row that is kept or moved
        stale = (pl.col("fate") == "kept") & ~pl.col(other_id).is_in(partners["id"].implode())
        pos = pos.with_columns(pl.when(stale).then(None).otherwise(pl.col(other_id))
                               .alias(other_id))
    rej = other.rejected
    by_hash = (rej.filter(pl.col("hash").is_not_null()).unique("hash", keep="first",
                                                                maintain_order=True)
               .select("hash", *[pl.col(c).alias(f"{c}_h") for c in REJECTION]))
    mine = rows.select("hash").drop_nulls().unique()
    # hashes of `rows` the other outputs hold: a semi join probes the other side once
    dups = (other_rows.select("hash").join(mine, on="hash", how="semi")["hash"]
            if other_rows is not None else pl.Series([], dtype=pl.Utf8))
    frame = (rows.join(rej.select("id", *REJECTION), on="id", how="left")
             .join(by_hash, on="hash", how="left")
             .with_columns((pl.col("stage").is_null() & pl.col("stage_h").is_not_null())
                           .alias("by_hash"))
             .with_columns([pl.coalesce(c, f"{c}_h").alias(c) for c in REJECTION])
             .drop([f"{c}_h" for c in REJECTION])
             .join(other.deadletter.filter(pl.col("id").is_not_null()).unique("id")
                   .select("id", pl.col("error").alias("dl_error")), on="id", how="left")
             .join(pos, on=["file", "row"], how="left"))
    return frame.with_columns(pl.col("file").is_in(list(other.files)).alias("file_there"),
                              pl.col("hash").is_in(dups.implode()).fill_null(False)
                              .alias("dup"))


def explain_removed(old: pl.DataFrame, new: Run, new_rows: pl.DataFrame | None = None,
                    added: pl.DataFrame | None = None) -> pl.DataFrame:
    """Rows of `old` (already anti-joined: not in the new outputs) with a `why` column.
    `new_rows`: the new outputs of the dataset (for duplicates); `added`: its added rows (a
    row whose position now holds one of them had its content changed)."""
    frame = _beside(old, new, "new_id", new_rows, added)
    why = (pl.when(pl.col("stage").is_not_null() & ~pl.col("by_hash")).then(
               _stage_reason("now rejected by "))
           .when(pl.col("dl_error").is_not_null()).then(pl.lit("now dead-lettered"))
           .when(pl.col("made_by").is_not_null()).then(
               pl.concat_str(pl.lit("synthesized by "), pl.col("made_by"),
                             pl.lit(": not made again")))
           .when(~pl.col("file_there")).then(pl.lit("source file removed"))
           .when(pl.col("dup")).then(pl.lit(DUPLICATE))
           .when(pl.col("stage").is_not_null()).then(_stage_reason("now rejected by "))
           .when(pl.col("fate") == "deadletter").then(pl.lit("now dead-lettered"))
           .when(pl.col("new_id").is_not_null()).then(pl.lit("content changed (new id)"))
           .otherwise(pl.lit("source row removed")))
    return frame.with_columns(why.alias("why"))


def explain_added(new_rows: pl.DataFrame, old: Run, old_rows: pl.DataFrame | None = None,
                  removed: pl.DataFrame | None = None) -> pl.DataFrame:
    """Rows of the new outputs not in the old ones, with a `why` column (`old_rows`,
    `removed`: as in explain_removed, from the old side)."""
    frame = _beside(new_rows, old, "old_id", old_rows, removed)
    why = (pl.when(pl.col("made_by").is_not_null()).then(
               pl.concat_str(pl.lit("synthesized by "), pl.col("made_by")))
           .when(pl.col("stage").is_not_null() & ~pl.col("by_hash")).then(
               _stage_reason("newly passing "))
           .when(pl.col("dl_error").is_not_null()).then(pl.lit("no longer dead-lettered"))
           .when(~pl.col("file_there") & pl.col("file").is_not_null()).then(
               pl.lit("new source file"))
           .when(pl.col("dup")).then(pl.lit(DUPLICATE))
           .when(pl.col("stage").is_not_null()).then(_stage_reason("newly passing "))
           .when(pl.col("old_id").is_not_null()).then(pl.lit("content changed (new id)"))
           .otherwise(pl.lit("new source row")))
    return frame.with_columns(why.alias("why"))


def match_moved(removed: pl.DataFrame, added: pl.DataFrame
                ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(moved, removed, added): a removed and an added row with one content hash are one row
    that moved, paired one to one in source order (the k-th copy with the k-th copy); `moved`
    holds the new row with the old row's id, file and row (`old_id`, `old_file`, `old_row`)."""
    both = (removed.select("hash").drop_nulls().unique()
            .join(added.select("hash"), on="hash", how="semi"))

    def ranked(frame: pl.DataFrame) -> pl.DataFrame:  # only rows of hashes on both sides
        return (frame.join(both, on="hash", how="semi").sort("file", "row", "id")
                .with_columns(pl.int_range(pl.len()).over("hash").alias("_k")))

    old = ranked(removed).select("hash", "_k", pl.col("id").alias("old_id"),
                                 pl.col("file").alias("old_file"), pl.col("row").alias("old_row"))
    moved = ranked(added).join(old, on=["hash", "_k"], how="inner").drop("_k")
    return (moved, removed.join(moved.select(pl.col("old_id").alias("id")), on="id", how="anti"),
            added.join(moved.select("id"), on="id", how="anti"))


def _stage_of(why: str) -> str | None:
    for prefix in ("now rejected by ", "newly passing "):
        if why.startswith(prefix):
            return why[len(prefix):].split(":", 1)[0]
    return None


def _examples(frame: pl.DataFrame, n: int, other: str, run: Run
              ) -> dict[str, list[dict[str, Any]]]:
    """Up to `n` rows per reason (smallest ids), synthesized ones with their parents."""
    out: dict[str, list[dict[str, Any]]] = {}
    keep = ["id", "file", "row", "made_by", "shard", other, "dl_error", "reason", "old_file",
            "old_row"]
    picked = (frame.sort("id").group_by("why", maintain_order=True).head(n)
              .select(["why", *[c for c in keep if c in frame.columns]]))
    made = picked.filter(pl.col("made_by").is_not_null())
    parents = run.parents(made) if made.height and run.out else {}
    for r in picked.to_dicts():
        if r["made_by"]:
            r["parents"] = parents.get(r["id"], [])
        out.setdefault(r.pop("why"), []).append(r)
    return out


def _summary(values: pl.Series) -> dict[str, float] | None:
    arr = values.drop_nulls().to_numpy()
    if not len(arr):
        return None
    qs = np.percentile(arr, (10, 50, 90))  # one sort for the three
    return {"mean": round(float(arr.mean()), 4),
            **{f"p{q}": round(float(v), 4) for q, v in zip((10, 50, 90), qs, strict=True)}}


def _counts(frame: pl.DataFrame, col: str) -> dict[str, int]:
    if frame.is_empty():
        return {}
    grouped = frame.group_by(col).len().sort(["len", col], descending=[True, False])
    return {str(k): int(v) for k, v in grouped.iter_rows()}


def diff_runs(old: Run, new: Run, examples: int = EXAMPLES
              ) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
    """The explained diff (JSON-able) and, per dataset, every changed row with its reason."""
    changes = config_changes(old.manifest, new.manifest)
    result: dict[str, Any] = {}
    frames: dict[str, pl.DataFrame] = {}
    for dataset in sorted(old.datasets() | new.datasets()):
        a, b = old.rows(dataset), new.rows(dataset)
        # two anti joins; kept = the new rows less the added ones (no third join); rows of
        # one content hash among the removed and the added moved (kept)
        moved, gone, new_ = match_moved(a.join(b.select("id"), on="id", how="anti"),
                                        b.join(a.select("id"), on="id", how="anti"))
        removed = explain_removed(gone, new, b, new_)
        added = explain_added(new_, old, a, gone)
        kept_n = b.height - added.height
        by_source: dict[str, dict[str, int]] = {}
        for kind, frame in (("added", added), ("removed", removed), ("kept", b)):
            for src, n in _counts(frame.with_columns(pl.col("dataset").fill_null("unknown")),
                                  "dataset").items():
                by_source.setdefault(src, {"added": 0, "removed": 0, "kept": 0})[kind] = n
        for counts in by_source.values():
            counts["kept"] -= counts["added"]
        reasons = {"removed": _counts(removed, "why"), "added": _counts(added, "why")}
        if moved.height:
            reasons["kept"] = {MOVED: moved.height}
        result[dataset] = {
            "added": added.height, "removed": removed.height, "kept": kept_n,
            "moved": moved.height,
            "added_ids": sorted(added["id"].head(50_000).to_list())[:50],
            "removed_ids": sorted(removed["id"].head(50_000).to_list())[:50],
            "by_source": dict(sorted(by_source.items())),
            "reasons": reasons,
            "config_change": {why: changes[s] for kind in reasons for why in reasons[kind]
                              if (s := _stage_of(why)) in changes},
            "examples": {"removed": _examples(removed, examples, "new_id", old),
                         "added": _examples(added, examples, "old_id", new),
                         "kept": _examples(moved.with_columns(pl.lit(MOVED).alias("why")),
                                           examples, "old_id", new) if moved.height else {}},
            "quality_score": {"before": _summary(a["quality"]), "after": _summary(b["quality"])},
        }
        frames[dataset] = pl.concat([
            removed.select(pl.lit("removed").alias("change"), "id", "file", "row", "why",
                           pl.col("new_id").alias("other_id")),
            added.select(pl.lit("added").alias("change"), "id", "file", "row", "why",
                         pl.col("old_id").alias("other_id")),
            moved.select(pl.lit("moved").alias("change"), "id", "file", "row",
                         pl.lit(MOVED).alias("why"), pl.col("old_id").alias("other_id"))])
    return {"previous": None, "config_changes": changes, "datasets": result}, frames


def diff_releases(previous_dir: str | None, new_dir: str, examples: int = EXAMPLES
                  ) -> dict[str, Any]:
    """Per dataset: added / removed / kept counts, per source, the quality-score summary before
    and after, and every added and removed row's reason (counts and examples).
    `previous_dir=None` (first release): all added."""
    result, _ = diff_runs(Run(previous_dir), Run(new_dir), examples)
    return {**result, "previous": previous_dir}


def diff_summary(diff: dict[str, Any], examples: int = 3) -> str:
    """The terminal summary: counts per dataset, then per reason with the config change that
    caused it and a few example ids."""
    lines = [f"diff against {diff.get('previous') or '(no previous release)'}"]
    for name, d in diff["datasets"].items():
        moved = f" ({d['moved']} moved)" if d.get("moved") else ""
        lines.append(f"{name}: +{d['added']} added, −{d['removed']} removed, {d['kept']} kept"
                     + moved)
        for kind, sign in (("removed", "−"), ("added", "+"), ("kept", "=")):
            for why, n in d.get("reasons", {}).get(kind, {}).items():
                ids = [e["id"][:12] for e in d["examples"][kind].get(why, [])[:examples]]
                lines.append(f"  {sign}{n:<6} {why}" + (f"  e.g. {', '.join(ids)}" if ids else ""))
                for change in d.get("config_change", {}).get(why, []):
                    lines.append(f"           config change: {change}")
    return "\n".join(lines)


def changelog_markdown(diff: dict[str, Any], version: str, previous: str | None) -> str:
    """The changelog section of a release card: counts per dataset, per source, per reason."""
    lines = [f"## Changes in {version}" + (f" since {previous}" if previous else " (first release)"),
             "", "| dataset | added | removed | kept |", "|---|---|---|---|"]
    for name, d in diff["datasets"].items():
        moved = f" ({d['moved']} moved)" if d.get("moved") else ""
        lines.append(f"| {name} | {d['added']} | {d['removed']} | {d['kept']}{moved} |")
    for name, d in diff["datasets"].items():
        changed = {s: c for s, c in d["by_source"].items() if c["added"] or c["removed"]}
        if changed:
            lines += ["", f"**{name}** by source: " + "; ".join(
                f"{s} +{c['added']} −{c['removed']}" for s, c in changed.items())]
        rows = [(kind, why, n) for kind in ("removed", "added", "kept")
                for why, n in d.get("reasons", {}).get(kind, {}).items()]
        if rows:
            lines += ["", f"**{name}** why rows changed:", "", "| change | reason | rows | "
                      "config change |", "|---|---|---|---|"]
            lines += [f"| {kind} | {why} | {n} | "
                      f"{'; '.join(d.get('config_change', {}).get(why, [])) or ''} |"
                      for kind, why, n in rows]
        before, after = d["quality_score"]["before"], d["quality_score"]["after"]
        if before and after:
            lines.append(f"\nquality score ({name}): mean {before['mean']} → {after['mean']}, "
                         f"median {before['p50']} → {after['p50']}")
    return "\n".join(lines) + "\n"
