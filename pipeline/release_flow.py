"""The release flow, step by step, for `refinery release ...` and the release DAG.

build: run a config into a build directory, deduplicating against the previous release's dedup
index (snapshot semantics: rows already released stay, new near-duplicates of them go) and
writing this build's index; check: `pipeline.release.check_release` against the previous
release; diff: rows added / removed / kept against it; publish: card with version and
changelog, then the atomic copy, `LATEST` and `releases.json`. Each step reads what the one
before wrote, so a scheduler can retry any of them alone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pipeline.card import render_card
from pipeline.publish import out_root
from pipeline.release import (
    INDEX_DIR,
    ReleaseError,
    check_release,
    latest_version,
    next_version,
    publish_release,
    read_index,
    read_manifest,
    validate_version,
)
from pipeline.release_diff import changelog_markdown, diff_releases
from pipeline.storage import has_files
from transforms.io.files import exists, join, read_json, write_text

DIFF_FILE = "release_diff.json"


def previous_dir(releases_dir: str) -> str | None:
    latest = latest_version(releases_dir)
    return join(releases_dir, latest) if latest else None


def resolve_version(releases_dir: str, version: str, out_dir: str | None = None) -> str:
    """'auto' → the next major version after the newest release (or the newest itself when it
    holds `out_dir`'s run: a publish resumed); anything else validated and normalized."""
    return next_version(releases_dir, out_dir) if version == "auto" \
        else validate_version(version)


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
    result = diff_releases(previous_dir(releases_dir), out_dir)
    write_text(join(out_dir, DIFF_FILE), json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def publish(out_dir: str, releases_dir: str, version: str, check_result: dict[str, Any]
            ) -> str:
    """Card with version and changelog, then the atomic publish. `check_result` is the
    check step's output (a scheduler passes it along; it is not checked twice)."""
    version = resolve_version(releases_dir, version, out_dir)
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
                                  DIFF_FILE: json.dumps(changes, indent=2, sort_keys=True) + "\n"})


def listing(releases_dir: str) -> list[dict[str, Any]]:
    index = read_index(releases_dir)
    latest = latest_version(releases_dir)
    return [{**r, "latest": r["version"] == latest} for r in index]


__all__ = ["ReleaseError", "build", "check", "diff", "listing", "publish", "resolve_version"]
