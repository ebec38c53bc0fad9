"""Release checks and publishing for a finished run (called by the release DAG).

`check_release(out)` reads back what a run wrote and fails loudly unless it is releasable:
the conservation law holds, every shard's sha256 matches, and `datasets` loads each dataset.
`publish_release(out, releases, version)` copies a checked run to `<releases>/<version>/`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from pipeline.publish import published_dir

VERSION = r"[A-Za-z0-9][A-Za-z0-9._-]*"


class ReleaseError(Exception):
    pass


def check_release(out_dir: str) -> dict[str, Any]:
    out = published_dir(out_dir)  # one snapshot, even if a run publishes meanwhile
    manifest_path = out / "manifest.json"
    if not manifest_path.exists():
        raise ReleaseError(f"{manifest_path} is missing: the run did not finish")
    manifest = json.loads(manifest_path.read_text())
    if not manifest["conservation"]["holds"]:
        raise ReleaseError(f"conservation law violated: {manifest['conservation']}")
    for shard in manifest["shards"]:
        data = (out / shard["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != shard["sha256"]:
            raise ReleaseError(f"{shard['path']}: sha256 differs from the manifest")
    import datasets

    split = manifest.get("config", {}).get("emit", {}).get("split", "train")
    rows = {}
    for name in sorted({s["dataset"] for s in manifest["shards"] if s["format"] == "parquet"}):
        parquet = [s for s in manifest["shards"] if s["dataset"] == name and s["format"] == "parquet"]
        expected = sum(s["rows"] for s in parquet)
        if expected == 0:  # `datasets` cannot load a 0-row shard: read its schema instead
            import pyarrow.parquet as pq

            found = sum(pq.ParquetFile(out / s["path"]).metadata.num_rows for s in parquet)
        else:
            found = len(datasets.load_dataset("parquet", data_dir=str(out / name), split=split))
        if found != expected:
            raise ReleaseError(f"{name}: datasets loaded {found} rows, manifest says {expected}")
        rows[name] = found
    return {"config_hash": manifest["config_hash"], "rows": rows}


def publish_release(out_dir: str, releases_dir: str, version: str) -> str:
    if not re.fullmatch(VERSION, version) or ".." in version:
        raise ReleaseError(f"release version {version!r}: use letters, digits, '.', '_' and '-' "
                           "(no path separators)")
    check_release(out_dir)
    root = Path(releases_dir).resolve()
    target = root / version
    if target.parent != root:
        raise ReleaseError(f"release version {version!r} would publish outside {root}")
    if target.exists():
        raise ReleaseError(f"{target} exists: releases are immutable")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(published_dir(out_dir), tmp,
                    ignore=shutil.ignore_patterns("_work", ".staging", ".runs", "current"))
    tmp.rename(target)  # complete or absent, never half-copied
    return str(target)
