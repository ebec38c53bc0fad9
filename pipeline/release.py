"""Release checks and publishing for a finished run (called by the release DAG).

`check_release(out)` reads back what a run wrote and fails loudly unless it is releasable:
the conservation law holds, every shard's sha256 matches, and `datasets` loads each dataset.
`publish_release(out, releases, version)` copies a checked run to `<releases>/<version>/`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any


class ReleaseError(Exception):
    pass


def check_release(out_dir: str) -> dict[str, Any]:
    out = Path(out_dir)
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

    rows = {}
    for name in sorted({s["dataset"] for s in manifest["shards"] if s["format"] == "parquet"}):
        ds = datasets.load_dataset("parquet", data_dir=str(out / name), split="train")
        expected = sum(s["rows"] for s in manifest["shards"]
                       if s["dataset"] == name and s["format"] == "parquet")
        if len(ds) != expected:
            raise ReleaseError(f"{name}: datasets loaded {len(ds)} rows, manifest says {expected}")
        rows[name] = len(ds)
    return {"config_hash": manifest["config_hash"], "rows": rows}


def publish_release(out_dir: str, releases_dir: str, version: str) -> str:
    check_release(out_dir)
    target = Path(releases_dir) / version
    if target.exists():
        raise ReleaseError(f"{target} exists: releases are immutable")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(out_dir, target, ignore=shutil.ignore_patterns("_work", ".staging"))
    return str(target)
