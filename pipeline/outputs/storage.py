"""Driver-side reads of a run's files through Beam's FileSystems (local paths, gs://, s3://):
streamed checksums and JSONL, Parquet tables, schemas and row counts (footers only, through a
seekable stream), directory listings and tree copies. Writes go through transforms/io/files.py.

Object stores need Beam's options (endpoint, credentials) outside a pipeline: `refinery run`
sets them from the run's options; the other commands call `use_options(beam_args)` first.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from transforms.io.files import (
    arrow_input,
    chunks,
    copy_file,
    exists,
    join,
    list_files,
    open_read,
)


def sha256_files(paths: list[str]) -> str:
    """sha256 of the files' bytes one after another, streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    for path in paths:
        with open_read(path) as f:
            for chunk in chunks(f):
                h.update(chunk)
    return h.hexdigest()


def sha256_prefix(path: str, size: int) -> str:
    """sha256 of the first `size` bytes of one file, streamed."""
    h = hashlib.sha256()
    with open_read(path) as f:
        for chunk in chunks(f, size):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str) -> str:
    """sha256 of one file, streamed."""
    return sha256_files([path])


def read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file (only `columns`, if given): pyarrow's own reader on local disk, a
    seekable stream elsewhere (only the footer and the column chunks asked for are fetched)."""
    with arrow_input(path) as src:
        return pq.read_table(src, columns=columns)


def read_parquet_batches(path: str, columns: list[str] | None = None, batch_size: int = 8192
                         ) -> Iterator[pa.RecordBatch]:
    """A Parquet file's rows in order, `batch_size` at a time (only `columns`, if given):
    pages are decoded as batches are taken, so a reader that stops early decodes little more
    than the rows it took."""
    with arrow_input(path) as src:
        yield from pq.ParquetFile(src).iter_batches(batch_size=batch_size, columns=columns)


def parquet_schema(path: str) -> pa.Schema:
    with arrow_input(path) as src:
        return pq.read_schema(src)


def parquet_rows(path: str) -> int:
    with arrow_input(path) as src:
        return pq.read_metadata(src).num_rows


def read_jsonl(path: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The objects of a JSONL file, streamed (at most `limit`); [] when it does not exist."""
    out: list[dict[str, Any]] = []
    if not exists(path):
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
