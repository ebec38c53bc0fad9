"""Writing, reading and deleting whole files through Beam's FileSystems (local paths, gs://, s3://)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems


def write_bytes(path: str, data: bytes) -> None:
    if not data and FileSystems.get_scheme(path) == "s3":
        return _put_empty_s3(path)  # see there
    parent = path.rsplit("/", 1)[0]
    if parent and _is_local(path) and not FileSystems.exists(parent):  # stores: no dirs
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


def is_local(path: str) -> bool:
    """True for plain paths and file:// URLs (the local disk), False for gs://, s3://, …"""
    return _is_local(path)


def join(base: str, *parts: str) -> str:
    """`base/part/...` for any filesystem (a trailing slash on `base` is dropped)."""
    return FileSystems.join(base.rstrip("/") or base, *parts)


def exists(path: str) -> bool:
    return FileSystems.exists(path)


def read_bytes(path: str) -> bytes:
    """A whole file, uncompressed as stored (no codec guessed from the name)."""
    with FileSystems.open(path, compression_type="uncompressed") as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path))


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def list_files(pattern: str) -> list[str]:
    """Sorted paths matching a glob (`dir/*.parquet`, `dir/**`); [] when none match."""
    try:
        result = FileSystems.match([pattern])[0]
    except BeamIOError:
        return []
    return sorted(m.path for m in result.metadata_list)


def copy_file(src: str, dst: str) -> None:
    """Copy one file (across filesystems too: read whole, write whole)."""
    if FileSystems.get_scheme(src) == FileSystems.get_scheme(dst):
        parent = dst.rsplit("/", 1)[0]
        if _is_local(dst) and parent and not FileSystems.exists(parent):
            FileSystems.mkdirs(parent)
        FileSystems.copy([src], [dst])
    else:
        write_bytes(dst, read_bytes(src))


def delete_file(path: str) -> None:
    """Delete one file if it exists."""
    if FileSystems.exists(path):
        FileSystems.delete([path])


def use_options(beam_args: list[str] | None = None) -> None:
    """Give Beam's FileSystems the pipeline options it needs outside a pipeline (object-store
    credentials and endpoints: `--s3_endpoint_url`, `--s3_region_name`, GCS project, …).
    Inside a pipeline Beam does this itself; driver-side commands call this first."""
    from apache_beam.options.pipeline_options import PipelineOptions

    FileSystems.set_options(PipelineOptions(beam_args or []))


def _put_empty_s3(path: str) -> None:
    """A zero-byte object on S3. Beam's S3 writer always completes a multipart upload, with no
    part for empty data, which S3 (and moto) reject as MalformedXML; so one PutObject through
    Beam's own S3 client, configured from the same options (endpoint, region, credentials)."""
    from apache_beam.io.aws.clients.s3 import boto3_client
    from apache_beam.options.pipeline_options import PipelineOptions

    options = FileSystems._pipeline_options or PipelineOptions([])  # set by use_options/Pipeline
    bucket, key = path.removeprefix("s3://").split("/", 1)
    boto3_client.Client(options).client.put_object(Bucket=bucket, Key=key, Body=b"")
