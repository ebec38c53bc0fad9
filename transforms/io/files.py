"""Writing, reading and deleting whole files through Beam's FileSystems (local paths, gs://, s3://)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import stat
from collections.abc import Iterator
from typing import IO, Any

import pyarrow as pa
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems

from transforms.io import s3_clients

s3_clients.share()  # one boto3 client per configuration, not one per s3:// call (see there)

CHUNK = 1 << 20  # bytes per read when streaming a file


def write_bytes(path: str, data: bytes | pa.Buffer) -> None:
    """Write `data` as the whole file, stored as given (a `.gz` name is not compressed again,
    so `read_bytes` gives back `data`)."""
    if not data and FileSystems.get_scheme(path) == "s3":
        return _put_empty_s3(path)  # see there
    _make_parent(path)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


def _make_parent(path: str) -> None:
    """Local disk: create the directory `path` goes into (object stores have none)."""
    parent = path.rsplit("/", 1)[0]
    if parent and _is_local(path) and not FileSystems.exists(parent):
        try:
            FileSystems.mkdirs(parent)
        except (BeamIOError, OSError):  # another worker made it in between: fine
            if not FileSystems.exists(parent):
                raise


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
    """Copy one file: by FileSystems.copy within a filesystem (server-side on object stores),
    streamed in 1 MiB chunks across filesystems."""
    if FileSystems.get_scheme(src) == FileSystems.get_scheme(dst):
        _make_parent(dst)
        FileSystems.copy([src], [dst])
    elif size(src) == 0:
        write_bytes(dst, b"")  # S3 needs its own zero-byte write
    else:
        _make_parent(dst)
        with open_read(src) as fin, FileSystems.create(
                dst, compression_type=CompressionTypes.UNCOMPRESSED) as fout:
            for chunk in iter(lambda: fin.read(CHUNK), b""):
                fout.write(chunk)


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


# --- reading inputs: streams, byte ranges, globs, directories ------------------------------

def open_read(path: str) -> IO[bytes]:
    """A seekable binary stream of the file as stored (no codec guessed from the name): the
    local file, or ranged reads of an object (gs://, s3://) as you seek and read."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def read_into(f: IO[bytes], buf: bytearray | memoryview) -> int:
    """Fill `buf` from `f`'s position (less only at the end of the file); the bytes read.
    Big reads into one reused buffer touch no new memory, which on a virtual machine costs
    more than the read itself (bench/README.md, ingest_emit)."""
    view = memoryview(buf)
    done = 0
    while done < len(view):
        got = f.readinto(view[done:])
        if not got:
            break
        done += got
    return done


def chunks(f: IO[bytes], size: int | None = None) -> Iterator[memoryview]:
    """The next `size` bytes of `f` (default: to the end) as CHUNK-sized views of one reused
    buffer; each view is valid until the next is taken."""
    buf = bytearray(CHUNK)
    while size is None or size > 0:
        got = read_into(f, memoryview(buf)[:CHUNK if size is None else min(CHUNK, size)])
        if not got:
            return
        yield memoryview(buf)[:got]
        size = None if size is None else size - got


def read_range(path: str, start: int, length: int) -> bytes:
    """`length` bytes from offset `start` (fewer at the end of the file)."""
    with open_read(path) as f:
        f.seek(start)
        return f.read(length)


def special_kind(path: str) -> str | None:
    """What a local path is when it is neither a regular file nor a directory ('a named pipe',
    'a socket', 'a device'), so it is never opened (a pipe blocks a reader forever); None for
    regular files, directories, paths that do not exist and object-store URLs."""
    if not _is_local(path):
        return None
    try:
        mode = os.stat(path.removeprefix("file://")).st_mode
    except OSError:
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return None


def identity(path: str) -> str:
    """What names one input file: the resolved path on local disk (links, `..`, relative
    paths), the URL elsewhere."""
    return os.path.realpath(path.removeprefix("file://")) if _is_local(path) else path


def stat_key(path: str) -> tuple[int, float]:
    """(size, modification time) of one file: what tells that it changed while read."""
    if _is_local(path):
        st = os.stat(path.removeprefix("file://"))
        return st.st_size, st.st_mtime_ns / 1e9
    meta = FileSystems.match([path], limits=[1])[0].metadata_list[0]
    return meta.size_in_bytes, float(meta.last_updated_in_seconds)


def size(path: str) -> int:
    """The size of one file in bytes."""
    with open_read(path) as f:
        return f.seek(0, os.SEEK_END)


@contextlib.contextmanager
def arrow_input(path: str) -> Iterator[Any]:
    """What pyarrow (parquet, ipc) should be given to read `path` by range: the local path
    itself (pyarrow's own reader) or a seekable FileSystems stream."""
    if _is_local(path):
        yield path.removeprefix("file://")  # local-only: pyarrow's native local reader
        return
    with open_read(path) as f:
        yield f


def has_glob(pattern: str) -> bool:
    return glob.has_magic(pattern)


def glob_paths(pattern: str) -> list[str]:
    """Sorted paths matching a glob. Local patterns keep the stdlib's rules (relative paths
    stay relative, `*` skips dot files, directories match too); elsewhere FileSystems.match
    (`*` stops at `/`, `**` crosses it)."""
    if _is_local(pattern):
        return sorted(glob.glob(pattern.removeprefix("file://")))
    return list_files(pattern)


def is_dir(path: str) -> bool:
    """A local directory, or an object-store prefix with objects under it (and no object of
    that exact name)."""
    if _is_local(path):
        return os.path.isdir(path.removeprefix("file://"))
    if path.endswith("/"):
        return True
    if FileSystems.exists(path):
        return False
    try:
        found = FileSystems.match([path + "/**"], limits=[1])[0].metadata_list
    except BeamIOError:
        return False
    return bool(found)


def is_file(path: str) -> bool:
    if _is_local(path):
        return os.path.isfile(path.removeprefix("file://"))
    return not path.endswith("/") and FileSystems.exists(path)


def walk_files(path: str) -> list[str]:
    """Every file under a directory or prefix, at any depth, sorted."""
    if _is_local(path):
        root = _clean(path.removeprefix("file://"))
        return sorted(_clean(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names)
    return list_files(path.rstrip("/") + "/**")


def _clean(path: str) -> str:
    """`path` without empty and `.` parts (`./data//a/` → `data/a`), as pathlib spells it."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return ("/" if path.startswith("/") else "") + "/".join(parts) or "."


def _put_empty_s3(path: str) -> None:
    """A zero-byte object on S3. Beam's S3 writer always completes a multipart upload, with no
    part for empty data, which S3 (and moto) reject as MalformedXML; so one PutObject through
    Beam's own S3 client, configured from the same options (endpoint, region, credentials)."""
    from apache_beam.io.aws.clients.s3 import boto3_client
    from apache_beam.options.pipeline_options import PipelineOptions

    options = FileSystems._pipeline_options or PipelineOptions([])  # set by use_options/Pipeline
    bucket, key = path.removeprefix("s3://").split("/", 1)
    boto3_client.Client(options).client.put_object(Bucket=bucket, Key=key, Body=b"")
