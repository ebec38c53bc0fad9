"""Release checks and atomic publishing of a finished run (used by `refinery release` and the
release DAG).

`check_release(out)` reads back what a run wrote and fails loudly unless it is releasable: the
conservation law holds, every shard's sha256 matches (streamed), `datasets` loads every dataset
and split the manifest names with the row counts it states, the decontamination stage found no
benchmark overlap left in the outputs, and the schema equals the previous release's unless a
change is declared. `publish_release(out, releases, version)` copies a checked run into
`<releases>/<version>/` through a temporary sibling and one rename, then updates `LATEST` and
`releases.json` (each written whole and renamed): a failed publish leaves no version folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.publish import published_dir

VERSION = re.compile(r"^v\d+(\.\d+)*$")
INDEX = "releases.json"
LATEST = "LATEST"
CHECK_FILE = "release_check.json"
INDEX_DIR = "dedup_index"  # a release build's dedup index, read by the next build
NOT_COPIED = ("_work", ".staging", ".runs", ".lock")


class ReleaseError(Exception):
    pass


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        raise ReleaseError(f"release version {version!r} must look like v1, v2.1 (^v\\d+(\\.\\d+)*$)")
    return version


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in validate_version(version)[1:].split("."))


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = published_dir(out_dir) / "manifest.json"
    if not path.exists():
        raise ReleaseError(f"{path} is missing: the run did not finish")
    return json.loads(path.read_text())


def stream_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parquet_layout(manifest: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """dataset → split → its Parquet shard entries (split from the shard file name)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for s in manifest["shards"]:
        if s["format"] != "parquet":
            continue
        split = Path(s["path"]).name.split("-0", 1)[0]
        out.setdefault(s["dataset"], {}).setdefault(split, []).append(s)
    return out


def dataset_schemas(out: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """dataset → its Arrow schema as text (from the first shard's footer)."""
    import pyarrow.parquet as pq

    schemas = {}
    for dataset, splits in sorted(parquet_layout(manifest).items()):
        first = sorted(s["path"] for shards in splits.values() for s in shards)[0]
        schemas[dataset] = pq.read_schema(out / first).remove_metadata().to_string()
    return schemas


def _load_counts(out: Path, dataset: str, split: str, shards: list[dict[str, Any]]) -> int:
    expected = sum(s["rows"] for s in shards)
    if expected == 0:  # `datasets` cannot build from 0-row files; pyarrow reads them
        import pyarrow.parquet as pq

        return sum(pq.read_metadata(out / s["path"]).num_rows for s in shards)
    import datasets

    files = sorted(str(out / s["path"]) for s in shards)
    return len(datasets.load_dataset("parquet", data_files={split: files}, split=split))


def check_release(out_dir: str, previous_dir: str | None = None,
                  allow_schema_change: bool = False) -> dict[str, Any]:
    """Everything a release needs; raises ReleaseError naming the first problem. Reads one
    snapshot: the published run, resolved once (a run publishing meanwhile changes nothing)."""
    out = published_dir(out_dir)
    manifest = read_manifest(out)
    if not manifest["conservation"]["holds"]:
        raise ReleaseError(f"conservation law violated: {manifest['conservation']}")
    for shard in manifest["shards"]:
        path = out / shard["path"]
        if not path.exists():
            raise ReleaseError(f"{shard['path']}: listed in the manifest but missing")
        if stream_sha256(path) != shard["sha256"]:
            raise ReleaseError(f"{shard['path']}: sha256 differs from the manifest")
    rows: dict[str, dict[str, int]] = {}
    for dataset, splits in sorted(parquet_layout(manifest).items()):
        for split, shards in sorted(splits.items()):
            loaded, expected = _load_counts(out, dataset, split, shards), sum(
                s["rows"] for s in shards)
            if loaded != expected:
                raise ReleaseError(f"{dataset}/{split}: loaded {loaded} rows, manifest says "
                                   f"{expected}")
            rows.setdefault(dataset, {})[split] = loaded
    contamination = _contamination_left(out, manifest)
    if contamination:
        raise ReleaseError(f"benchmark contamination left in the outputs: {contamination}")
    schemas = dataset_schemas(out, manifest)
    schema_changes = []
    if previous_dir is not None:
        before = dataset_schemas(Path(previous_dir), read_manifest(previous_dir))
        schema_changes = sorted(d for d in set(before) & set(schemas) if before[d] != schemas[d])
        if schema_changes and not allow_schema_change:
            raise ReleaseError(f"schema of {schema_changes} differs from the previous release; "
                               "declare the change (allow_schema_change) to release it")
    return {"config_hash": manifest["config_hash"], "rows": rows,
            "schema_changes": schema_changes, "checked_at": _now()}


def _contamination_left(out: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """Rows of the outputs the configured decontamination would still flag (re-checked)."""
    cfg = (manifest.get("config", {}).get("stages") or {}).get("decontam") or {}
    if not cfg.get("enabled") or not cfg.get("benchmarks"):
        return {}
    import pyarrow.parquet as pq

    from transforms.decontam.benchmarks import load_benchmarks
    from transforms.decontam.config import DecontamConfig
    from transforms.decontam.detect import cached_detector

    config = DecontamConfig.model_validate(cfg)
    try:
        items = load_benchmarks(config.benchmarks)
    except Exception as e:
        raise ReleaseError(f"cannot re-check contamination: {e} (benchmark paths are relative "
                           "to the directory the check runs in)") from e
    embeddings = manifest.get("config", {}).get("embeddings")
    detector = cached_detector(config.model_dump_json(), items,
                               json.dumps(embeddings) if embeddings else None)
    hits: dict[str, int] = {}
    for dataset, splits in parquet_layout(manifest).items():
        for shards in splits.values():
            for s in shards:
                if s["rows"] == 0:
                    continue
                table = pq.read_table(out / s["path"])
                if "messages" not in table.column_names:
                    continue
                for batch in table.to_batches():
                    reasons, _ = detector.find(batch)
                    n = sum(r is not None for r in reasons)
                    if n:
                        hits[dataset] = hits.get(dataset, 0) + n
    return hits


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_index(releases_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(releases_dir) / INDEX
    return json.loads(path.read_text()) if path.exists() else []


def latest_version(releases_dir: str | Path) -> str | None:
    path = Path(releases_dir) / LATEST
    return path.read_text().strip() if path.exists() else None


def next_version(releases_dir: str | Path) -> str:
    versions = [r["version"] for r in read_index(releases_dir)]
    if not versions:
        return "v1"
    return f"v{version_key(max(versions, key=version_key))[0] + 1}"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _copy(src: Path, dst: Path) -> None:
    """Copy the published run of `src` and its dedup index, if any (the step a fault test
    breaks halfway)."""
    shutil.copytree(published_dir(src), dst, ignore=shutil.ignore_patterns(*NOT_COPIED))
    if (src / INDEX_DIR).is_dir():
        shutil.copytree(src / INDEX_DIR, dst / INDEX_DIR)


def publish_release(out_dir: str, releases_dir: str, version: str,
                    check: dict[str, Any] | None = None, files: dict[str, str] | None = None
                    ) -> str:
    """Copy a checked run to `<releases>/<version>/` atomically; `check` is check_release's
    result (checked here when not given); `files` are extra files (card, changelog) written
    into the release. Returns the release path."""
    validate_version(version)
    releases = Path(releases_dir).resolve()
    target = releases / version
    if target.parent != releases:
        raise ReleaseError(f"{target} is outside {releases}")
    if target.exists():
        raise ReleaseError(f"{target} exists: releases are immutable")
    check = check or check_release(out_dir)
    manifest = read_manifest(out_dir)
    if check.get("config_hash") != manifest["config_hash"]:
        raise ReleaseError("the check result belongs to another run (config hash differs)")
    releases.mkdir(parents=True, exist_ok=True)
    tmp = releases / f".tmp-{version}-{uuid.uuid4().hex}"
    try:
        _copy(Path(out_dir), tmp)
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
        (tmp / CHECK_FILE).write_text(json.dumps(check, indent=2, sort_keys=True) + "\n")
        os.rename(tmp, target)  # one step: the version folder appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    index = [r for r in read_index(releases) if r["version"] != version]
    index.append({"version": version, "published_at": _now(),
                  "config_hash": manifest["config_hash"], "rows": check["rows"],
                  "previous": latest_version(releases)})
    index.sort(key=lambda r: version_key(r["version"]))
    _write_atomic(releases / INDEX, json.dumps(index, indent=2) + "\n")
    newest = max(index, key=lambda r: version_key(r["version"]))["version"]
    _write_atomic(releases / LATEST, newest + "\n")
    return str(target)


def clean_partial(releases_dir: str) -> list[str]:
    """Remove temporary folders left by publishes killed before their rename."""
    removed = []
    for p in Path(releases_dir).glob(".tmp-*"):
        shutil.rmtree(p, ignore_errors=True)
        removed.append(str(p))
    return removed
