"""Driver-side reads of a run's files through Beam's FileSystems (local paths, gs://, s3://):
streamed checksums and JSONL, Parquet tables, schemas and row counts (footers only, through a
seekable stream), directory listings and tree copies. Writes go through transforms/io/files.py.

Object stores need Beam's options (endpoint, credentials) outside a pipeline: `refinery run`
sets them from the run's options; the other commands call `use_options(beam_args)` first.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.io.files import copy_file, is_local, join, list_files

CHUNK = 1 << 20


@contextlib.contextmanager
def open_read(path: str) -> Iterator[IO[bytes]]:
    """A seekable binary stream of `path`, bytes as stored (no codec guessed from the name)."""
    with FileSystems.open(path, compression_type="uncompressed") as f:
        yield f


def sha256_file(path: str) -> str:
    """sha256 of a file, streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    with open_read(path) as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file (only `columns`, if given): memory-mapped on local disk, read through
    a seekable stream elsewhere (only the column chunks asked for are fetched)."""
    if is_local(path):
        return pq.read_table(path.removeprefix("file://"), columns=columns)
    with open_read(path) as f:
        return pq.read_table(f, columns=columns)


def parquet_schema(path: str) -> pa.Schema:
    with open_read(path) as f:
        return pq.read_schema(f)


def parquet_rows(path: str) -> int:
    with open_read(path) as f:
        return pq.read_metadata(f).num_rows


def read_jsonl(path: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The objects of a JSONL file, streamed (at most `limit`); [] when it does not exist."""
    out: list[dict[str, Any]] = []
    if not FileSystems.exists(path):
        return out
    with open_read(path) as f:
        for line in io.TextIOWrapper(f, encoding="utf-8"):
            if line.strip():
                out.append(json.loads(line))
            if limit is not None and len(out) >= limit:
                break
    return out


def files_under(directory: str) -> list[str]:
    """Every file below `directory`, sorted (recursive; [] when there is none)."""
    return list_files(join(directory, "**"))


def has_files(directory: str) -> bool:
    """Whether `directory` holds any file (object stores have no directories to test)."""
    return bool(files_under(directory))


def copy_tree(src: str, dst: str, skip: tuple[str, ...] = ()) -> list[str]:
    """Copy every file below `src` to the same place below `dst`, leaving out paths whose
    first component is in `skip`; returns the relative paths copied."""
    base = src.rstrip("/") + "/"
    copied = []
    for f in files_under(src):
        rel = f[len(base):]
        if rel.split("/", 1)[0] in skip:
            continue
        copy_file(f, join(dst, rel))
        copied.append(rel)
    return copied
