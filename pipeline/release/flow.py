"""The release flow, step by step, for `refinery release ...` and the release DAG.

build: run a config into a build directory, deduplicating against the previous release's dedup
index (snapshot semantics: rows already released stay, new near-duplicates of them go) and
writing this build's index; check: `pipeline.release.check.check_release` against the previous
release; diff: rows added / removed / kept against it; publish: card with version and
changelog, then the atomic copy, `LATEST` and `releases.json`. Each step reads what the one
before wrote, so a scheduler can retry any of them alone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pipeline.outputs.layout import DIFF_FILE, DIFF_PAGE, DIFF_ROWS, INDEX_DIR
from pipeline.outputs.publish import out_root
from pipeline.outputs.storage import has_files
from pipeline.release.check import (
    ReleaseError,
    check_release,
    latest_version,
    next_version,
    publish_release,
    read_index,
    read_manifest,
    validate_version,
)
from pipeline.release.diff import changelog_markdown, diff_releases, diff_runs
from pipeline.release.html import diff_page
from pipeline.release.runs import Run
from pipeline.report.card import render_card
from transforms.io.files import exists, join, read_json, read_text, write_text


def previous_dir(releases_dir: str) -> str | None:
    latest = latest_version(releases_dir)
    return join(releases_dir, latest) if latest else None


def resolve_version(releases_dir: str, version: str, out_dir: str | None = None,
                    force: bool = False) -> str:
    """'auto' → the next major version after the newest release (or the newest itself when it
    holds `out_dir`'s run: a publish resumed); anything else validated and normalized. With
    `force` (the same build published again on purpose) a finished publish of that run, the
    newest version and LATEST, is not resumed: the build gets the next version."""
    if version != "auto":
        return validate_version(version)
    resumed = next_version(releases_dir, out_dir)
    if force and out_dir is not None and resumed == latest_version(releases_dir):
        return next_version(releases_dir)
    return resumed


def build_overrides(out_dir: str, releases_dir: str, dedup_enabled: bool) -> list[str]:
    """--set overrides of a release build: index written with the build, previous index read."""
    if not dedup_enabled:
        return []
    sets = [f"stages.dedup.write_index_dir={join(out_root(out_dir), INDEX_DIR)}"]
    prev = previous_dir(releases_dir)
    if prev and has_files(join(prev, INDEX_DIR)):
        sets += [f"stages.dedup.release_index_dir={join(out_root(prev), INDEX_DIR)}",
                 "stages.dedup.release_keep_same_ids=true"]
    return sets


def build(config: str, out_dir: str, releases_dir: str, overrides: list[str] | None = None,
          beam_args: list[str] | None = None) -> dict[str, Any]:
    """Run `config` into `out_dir` as a release build; returns the run's conservation line."""
    from pipeline.config import load_config
    from pipeline.run import run_config

    cfg = load_config(config, list(overrides or []), out=out_dir)
    sets = build_overrides(out_dir, releases_dir, cfg.stages.dedup.enabled)
    if sets:
        cfg = load_config(config, [*(overrides or []), *sets], out=out_dir)
    result = run_config(cfg, beam_args or [])
    return {"out_dir": result.out_dir, "conservation": result.manifest["conservation"]}


def check(out_dir: str, releases_dir: str, allow_schema_change: bool = False) -> dict[str, Any]:
    return check_release(out_dir, previous_dir(releases_dir), allow_schema_change)


def diff(out_dir: str, releases_dir: str) -> dict[str, Any]:
    """The explained diff against the latest release: JSON, HTML page and every changed row
    (Parquet) written into the build directory; returns the JSON."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    from transforms.io.files import write_bytes

    prev = previous_dir(releases_dir)
    old, new = Run(prev), Run(out_dir)
    result, frames = diff_runs(old, new)
    result["previous"] = prev
    write_text(join(out_dir, DIFF_FILE), json.dumps(result, indent=2, sort_keys=True) + "\n")
    title = f"Release diff: {new.manifest.get('name', out_dir)} against {prev or 'nothing'}"
    write_text(join(out_dir, DIFF_PAGE), diff_page(old, new, result, title))
    if frames:
        rows = pl.concat([f.with_columns(pl.lit(d).alias("dataset")) for d, f in frames.items()])
        buf = pa.BufferOutputStream()
        pq.write_table(rows.to_arrow(), buf)
        write_bytes(join(out_dir, DIFF_ROWS), buf.getvalue().to_pybytes())
    return result


def refuse_unchanged(out_dir: str, releases_dir: str) -> None:
    """Raise ReleaseError when the build's shards are byte for byte the latest release's
    (publishing it again would make an identical version)."""
    prev = previous_dir(releases_dir)
    if prev is None:
        return

    def shards(manifest: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((s["path"], s["sha256"]) for s in manifest["shards"])

    if shards(read_manifest(out_dir)) == shards(read_manifest(prev)):
        raise ReleaseError(f"nothing changed since {latest_version(releases_dir)}: the build's "
                           "shards equal the latest release's (--force publishes it anyway)")


def publish(out_dir: str, releases_dir: str, version: str, check_result: dict[str, Any],
            force: bool = False) -> str:
    """Card with version and changelog, then the atomic publish. `check_result` is the
    check step's output (a scheduler passes it along; it is not checked twice); `force`:
    see resolve_version."""
    version = resolve_version(releases_dir, version, out_dir, force)
    previous = latest_version(releases_dir)
    diff_path = join(out_dir, DIFF_FILE)
    changes = (read_json(diff_path) if exists(diff_path)
               else diff_releases(previous_dir(releases_dir), out_dir))
    manifest = read_manifest(out_dir)
    split = (manifest.get("config", {}).get("emit") or {}).get("split", "train")
    card = render_card(manifest, split, release={
        "version": version, "previous": previous,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "changelog": changelog_markdown(changes, version, previous)})
    return publish_release(out_dir, releases_dir, version, check_result,
                           files={"README.md": card,
                                  "CHANGELOG.md": changelog_markdown(changes, version, previous),
                                  DIFF_FILE: json.dumps(changes, indent=2, sort_keys=True) + "\n",
                                  **_diff_page(out_dir)})


def _diff_page(out_dir: str) -> dict[str, str]:
    path = join(out_dir, DIFF_PAGE)
    return {DIFF_PAGE: read_text(path)} if exists(path) else {}


def listing(releases_dir: str) -> list[dict[str, Any]]:
    index = read_index(releases_dir)
    latest = latest_version(releases_dir)
    return [{**r, "latest": r["version"] == latest} for r in index]


__all__ = ["ReleaseError", "build", "check", "diff", "listing", "publish", "refuse_unchanged",
           "resolve_version"]
