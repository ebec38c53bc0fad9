"""Release checks and atomic publishing of a finished run (used by `refinery release` and the
release DAG).

`check_release(out)` reads back what a run wrote and fails loudly unless it is releasable: the
conservation law holds, every shard's sha256 matches (streamed), `datasets` loads every dataset
and split the manifest names with the row counts it states, the decontamination stage found no
benchmark overlap left in the outputs, and the schema equals the previous release's unless a
change is declared. `publish_release(out, releases, version)` copies a checked run into
`<releases>/<version>/` and then updates `LATEST` and `releases.json`. On local disk the copy
goes through a temporary sibling and one rename, and the two files are each written whole and
renamed: a failed publish leaves no version folder. Object stores have no rename: the version
folder is written in place and `release_check.json` is written last; a folder without it is
the leftover of a killed publish, which `clean_partial` and the next publish of that version
remove (readers go by `releases.json` and `LATEST`, which are written after the folder is
complete; a single object's write is atomic). All paths may be local, gs:// or s3://.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from apache_beam.io.filesystems import FileSystems

from pipeline.outputs.layout import INDEX_DIR, WORK, RunLayout
from pipeline.outputs.publish import out_root, published_dir
from pipeline.outputs.storage import (
    copy_tree,
    files_under,
    has_files,
    parquet_rows,
    parquet_schema,
    read_parquet,
    sha256_file,
)
from transforms.io.files import (
    copy_file,
    delete_file,
    delete_tree,
    exists,
    is_local,
    join,
    read_json,
    read_text,
    write_text,
)

VERSION = re.compile(r"^v\d+(\.\d+)*$")  # the normalized form: v1, v2.1
_VERSION_IN = re.compile(r"^[vV]?(\d+(?:\.\d+)*)$")  # accepted: v1, V01, 1, v2.01
INDEX = "releases.json"
LATEST = "LATEST"
CHECK_FILE = "release_check.json"
NOT_COPIED = (WORK, ".staging", ".runs", ".lock")


class ReleaseError(Exception):
    pass


def validate_version(version: str) -> str:
    """The normalized name of a version: names meaning the same number are one version
    (v1, v01, V1, 1 and v1.0 are all `v1`; v2.01 is `v2.1`)."""
    found = _VERSION_IN.fullmatch(version.strip()) if isinstance(version, str) else None
    if not found:
        raise ReleaseError(f"release version {version!r} must look like v1, v2.1 (^v\\d+(\\.\\d+)*$)")
    parts = [int(x) for x in found.group(1).split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return "v" + ".".join(map(str, parts))


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in validate_version(version)[1:].split("."))


def read_manifest(out_dir: str) -> dict[str, Any]:
    path = RunLayout(published_dir(str(out_dir))).manifest
    if not exists(path):
        raise ReleaseError(f"{path} is missing: the run did not finish")
    return read_json(path)


def parquet_layout(manifest: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """dataset → split → its Parquet shard entries (split from the shard file name)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for s in manifest["shards"]:
        if s["format"] != "parquet":
            continue
        split = s["path"].rsplit("/", 1)[-1].split("-0", 1)[0]
        out.setdefault(s["dataset"], {}).setdefault(split, []).append(s)
    return out


def dataset_schemas(out: str, manifest: dict[str, Any]) -> dict[str, str]:
    """dataset → its Arrow schema as text (from the first shard's footer)."""
    schemas = {}
    for dataset, splits in sorted(parquet_layout(manifest).items()):
        first = sorted(s["path"] for shards in splits.values() for s in shards)[0]
        schemas[dataset] = parquet_schema(join(out, first)).remove_metadata().to_string()
    return schemas


def _load_counts(out: str, dataset: str, split: str, shards: list[dict[str, Any]]) -> int:
    """Rows `datasets` loads from the split's shards. `datasets` reads local files: shards on
    an object store are downloaded (streamed) into a temporary directory first."""
    # `datasets` cannot read 0-row files (alone or beside others); pyarrow reads their footers
    empty = sum(parquet_rows(join(out, s["path"])) for s in shards if not s["rows"])
    files = sorted(join(out, s["path"]) for s in shards if s["rows"])
    if not files:
        return empty
    import tempfile

    import datasets

    if is_local(out):
        return empty + len(datasets.load_dataset("parquet", data_files={split: files},
                                                 split=split))
    tmp = tempfile.mkdtemp(prefix="refinery-release-check-")
    try:
        local = [join(tmp, f"{i:05d}.parquet") for i in range(len(files))]
        for src, dst in zip(files, local, strict=True):
            copy_file(src, dst)  # streamed
        return empty + len(datasets.load_dataset("parquet", data_files={split: local},
                                                 split=split))
    finally:
        delete_tree(tmp)


def check_release(out_dir: str, previous_dir: str | None = None,
                  allow_schema_change: bool = False) -> dict[str, Any]:
    """Everything a release needs; raises ReleaseError naming the first problem. Reads one
    snapshot: the published run, resolved once (a run publishing meanwhile changes nothing)."""
    out = published_dir(out_dir)
    manifest = read_manifest(out)
    if not manifest["conservation"]["holds"]:
        raise ReleaseError(f"conservation law violated: {manifest['conservation']}")
    for shard in manifest["shards"]:
        path = join(out, shard["path"])
        if not exists(path):
            raise ReleaseError(f"{shard['path']}: listed in the manifest but missing")
        if sha256_file(path) != shard["sha256"]:
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
        before = dataset_schemas(published_dir(previous_dir), read_manifest(previous_dir))
        schema_changes = sorted(d for d in set(before) & set(schemas) if before[d] != schemas[d])
        if schema_changes and not allow_schema_change:
            raise ReleaseError(f"schema of {schema_changes} differs from the previous release; "
                               "declare the change (allow_schema_change) to release it")
    return {"config_hash": manifest["config_hash"], "rows": rows,
            "schema_changes": schema_changes, "checked_at": _now()}


def _contamination_left(out: str, manifest: dict[str, Any]) -> dict[str, int]:
    """Rows of the outputs the configured decontamination would still flag (re-checked)."""
    cfg = (manifest.get("config", {}).get("stages") or {}).get("decontam") or {}
    if not cfg.get("enabled") or not cfg.get("benchmarks"):
        return {}
    from transforms.decontam.recheck import contamination_counter

    try:
        count = contamination_counter(cfg, manifest.get("config", {}).get("embeddings"))
    except Exception as e:
        raise ReleaseError(f"cannot re-check contamination: {e} (benchmark paths are relative "
                           "to the directory the check runs in)") from e
    hits: dict[str, int] = {}
    for dataset, splits in parquet_layout(manifest).items():
        for shards in splits.values():
            for s in shards:
                if s["rows"] == 0:
                    continue
                table = read_parquet(join(out, s["path"]))
                if "messages" not in table.column_names:
                    continue
                for batch in table.to_batches():
                    if n := count(batch):
                        hits[dataset] = hits.get(dataset, 0) + n
    return hits


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_index(releases_dir: str) -> list[dict[str, Any]]:
    path = join(str(releases_dir), INDEX)
    return read_json(path) if exists(path) else []


def latest_version(releases_dir: str) -> str | None:
    path = join(str(releases_dir), LATEST)
    return read_text(path).strip() if exists(path) else None


def present_versions(releases_dir: str) -> list[str]:
    """Listed versions and complete version folders (a publish stopped before listing its
    folder still holds the version), newest last."""
    releases = out_root(str(releases_dir))
    names = {f[len(releases) + 1:].split("/", 1)[0] for f in files_under(releases)
             if "/" in f[len(releases) + 1:]}
    found = {r["version"] for r in read_index(releases)} | {
        n for n in names if VERSION.fullmatch(n) and _complete(join(releases, n))}
    return sorted(found, key=version_key)


def next_version(releases_dir: str, out_dir: str | None = None) -> str:
    """The next major version after every present one; the newest version itself when it
    already holds `out_dir`'s run (a rerun of an interrupted `auto` publish resumes it)."""
    versions = present_versions(releases_dir)
    if not versions:
        return "v1"
    newest = versions[-1]
    if out_dir is not None and _same_run(out_dir, join(out_root(str(releases_dir)), newest)):
        return newest
    return f"v{version_key(newest)[0] + 1}"


def _write_whole(path: str, text: str) -> None:
    """Readers see the old text or the new: on local disk a temporary sibling renamed over
    `path`; on an object store one object write (atomic by itself)."""
    if not is_local(path):
        write_text(path, text)
        return
    tmp = join(path.rsplit("/", 1)[0], f".{path.rsplit('/', 1)[1]}.{uuid.uuid4().hex}.tmp")
    write_text(tmp, text)
    FileSystems.rename([tmp], [path])  # os.rename: replaces `path` atomically


def _copy(src: str, dst: str) -> None:
    """Copy the published run of `src` and its dedup index, if any (the step a fault test
    breaks halfway)."""
    copy_tree(published_dir(src), dst, skip=NOT_COPIED)
    if has_files(join(src, INDEX_DIR)):
        copy_tree(join(src, INDEX_DIR), join(dst, INDEX_DIR))


def _complete(folder: str) -> bool:
    """A version folder is complete once its check file (written last) is there."""
    return exists(join(folder, CHECK_FILE)) if not is_local(folder) else exists(folder)


def publish_release(out_dir: str, releases_dir: str, version: str,
                    check: dict[str, Any] | None = None, files: dict[str, str] | None = None
                    ) -> str:
    """Copy a checked run to `<releases>/<version>/` (see the module docstring); `check` is
    check_release's result (checked here when not given); `files` are extra files (card,
    changelog) written into the release. Returns the release path."""
    version = validate_version(version)
    releases = out_root(releases_dir)
    target = join(releases, version)
    clean_partial(releases)
    check = check or check_release(out_dir)
    manifest = read_manifest(out_dir)
    if check.get("config_hash") != manifest["config_hash"]:
        raise ReleaseError("the check result belongs to another run (config hash differs)")
    if _complete(target):
        if not _same_run(out_dir, target):
            raise ReleaseError(f"{target} exists and holds another run: releases are immutable")
        _list(releases, version, manifest, check)  # a publish stopped after its copy: resumed
        return target
    # local: build a temporary sibling, rename it; object stores: write in place, check last
    if is_local(releases):
        tmp = join(releases, f".tmp-{version}-{uuid.uuid4().hex}")
    else:
        tmp = target
        delete_tree(target)  # a killed publish's leftovers (no check file: not a release)
    try:
        _copy(out_dir, tmp)
        for name, text in (files or {}).items():
            write_text(join(tmp, name), text)
        write_text(join(tmp, CHECK_FILE), json.dumps(check, indent=2, sort_keys=True) + "\n")
        if tmp != target:
            FileSystems.rename([tmp], [target])  # one step: complete or not at all
    except BaseException:
        delete_tree(tmp)
        raise
    _list(releases, version, manifest, check)
    return target


def _same_run(out_dir: str, target: str) -> bool:
    """Whether the complete version folder `target` is a copy of `out_dir`'s published run
    (its manifest, byte for byte)."""
    mine = RunLayout(published_dir(out_dir)).manifest
    theirs = RunLayout(target).manifest
    return exists(theirs) and sha256_file(theirs) == sha256_file(mine)


def _list(releases: str, version: str, manifest: dict[str, Any], check: dict[str, Any]) -> None:
    """Add `version` to releases.json (kept as it is when listed already) and point LATEST at
    the newest version; each file written whole, so rerunning after any failure repairs."""
    index = read_index(releases)
    if not any(r["version"] == version for r in index):
        index.append({"version": version, "published_at": _now(),
                      "config_hash": manifest["config_hash"], "rows": check["rows"],
                      "previous": latest_version(releases)})
        index.sort(key=lambda r: version_key(r["version"]))
        _write_whole(join(releases, INDEX), json.dumps(index, indent=2) + "\n")
    newest = max(index, key=lambda r: version_key(r["version"]))["version"]
    if latest_version(releases) != newest:
        _write_whole(join(releases, LATEST), newest + "\n")


def clean_partial(releases_dir: str) -> list[str]:
    """Remove what publishes killed before their end left: temporary folders and half-written
    index files (local disk), version folders without their check file (object stores).
    Publishes into one releases folder run one at a time (the release DAG's order)."""
    releases = out_root(releases_dir)
    names = [f[len(releases) + 1:] for f in files_under(releases)]
    tops = sorted({n.split("/", 1)[0] for n in names if "/" in n})
    removed = []
    for name in tops:
        folder = join(releases, name)
        if name.startswith(".tmp-") or (not is_local(releases) and VERSION.fullmatch(name)
                                         and not exists(join(folder, CHECK_FILE))):
            delete_tree(folder)
            removed.append(folder)
    for name in names:
        if "/" not in name and name.startswith((f".{INDEX}.", f".{LATEST}.")) and \
                name.endswith(".tmp"):
            delete_file(join(releases, name))
            removed.append(join(releases, name))
    return removed
