"""Writing, reading and deleting whole files through Beam's FileSystems (local paths, gs://, s3://)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems


def write_bytes(path: str, data: bytes) -> None:
    parent = path.rsplit("/", 1)[0]
    if parent and not FileSystems.exists(parent):
        try:
            FileSystems.mkdirs(parent)
        except (BeamIOError, OSError):  # another worker made it in between: fine
            if not FileSystems.exists(parent):
                raise
    with FileSystems.create(path) as f:
        f.write(data)


def write_json(path: str, value: Any) -> None:
    write_bytes(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False,
                                 default=str).encode() + b"\n")


def _is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def read_arrow_batches(path: str) -> list[pa.RecordBatch]:
    """The record batches of an Arrow IPC file: memory-mapped (no copy) when local, read
    whole through FileSystems otherwise."""
    if _is_local(path):
        source: Any = pa.memory_map(path.removeprefix("file://"))
    else:
        with FileSystems.open(path, compression_type="uncompressed") as f:
            source = pa.BufferReader(f.read())
    reader = pa.ipc.open_file(source)
    return [reader.get_batch(i) for i in range(reader.num_record_batches)]


def delete_tree(path: str) -> None:
    """Delete `path` (a directory and everything under it) if it exists."""
    if _is_local(path):
        if FileSystems.exists(path):
            FileSystems.delete([path])
        return
    with contextlib.suppress(BeamIOError):  # object stores: "prefix/" deletes all under it
        FileSystems.delete([path.rstrip("/") + "/"])
