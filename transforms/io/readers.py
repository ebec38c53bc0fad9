"""File readers: a planned split of a file → (row number, raw payload, parsed row | error).

Pure Python over pyarrow/polars; files are opened through Beam's FileSystems (files.py), so a
path may be local, gs:// or s3://. JSONL is read by byte range (a split owns the lines
that start inside it), Parquet by row group, HF datasets by row range; JSON arrays and CSV are
one split per file. Rows are numbered from 0 within their file. Compressed files (gzip, zstd,
bz2, told by their magic bytes, not their name) and UTF-16/32 files (told by their BOM) are read
whole and decoded to UTF-8; a UTF-8 BOM is dropped in every text format. A file that cannot be
read as a whole raises `FileReadError` (one dead-letter entry for the file, see read_sources).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from transforms.io import files

_loads = orjson.loads

FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
                    ".parquet": "parquet", ".csv": "csv"}
COMPRESSION_SUFFIXES = (".gz", ".zst", ".zstd", ".bz2")
MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bz2"))
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
SAMPLE_ROWS = 50


class ReadError(Exception):
    """A record that could not be parsed; carries the raw payload."""


class UnknownFormat(ValueError):
    """A path whose format cannot be told from its name: a config problem (set `format`)."""


class FileReadError(ReadError):
    """A file that cannot be read as a whole (corrupt compression, wrong encoding, empty)."""


def sniff(path: str) -> tuple[str | None, str | None]:
    """(compression by magic bytes, wide encoding by BOM) of a file; (None, None) if plain."""
    return sniff_head(files.read_range(path, 0, 4))


def sniff_head(head: bytes) -> tuple[str | None, str | None]:
    """`sniff` of a file's first bytes."""
    compression = next((name for magic, name in MAGIC if head.startswith(magic)), None)
    wide = next((enc for bom, enc in BOMS if head.startswith(bom)), None)
    return compression, None if compression else wide


def _decompress(raw: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.decompress(raw)
    if compression == "bz2":
        return bz2.decompress(raw)
    import zstandard

    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


def read_text_bytes(path: str) -> bytes:
    """The whole file as UTF-8 bytes: decompressed, wide encodings decoded, UTF-8 BOM dropped.
    Raises FileReadError with the reason when that is impossible."""
    raw = files.read_bytes(path)
    compression, wide = sniff_head(raw[:4])
    if compression:
        try:
            raw = _decompress(raw, compression)
        except Exception as e:  # each library raises its own error types
            raise FileReadError(f"corrupt or truncated {compression} file: "
                                f"{type(e).__name__}: {e}") from None
        wide = next((enc for bom, enc in BOMS if raw.startswith(bom)), None)
    if wide:
        try:
            raw = raw.decode(wide).encode("utf-8")
        except UnicodeError as e:
            raise FileReadError(f"invalid {wide.upper()} text (file starts with its BOM): "
                                f"{e}") from None
    raw = raw.removeprefix(codecs.BOM_UTF8)
    if not raw.strip():
        raise FileReadError("the file is empty: no records")
    return raw


def reads_whole(path: str) -> bool:
    """Whether the file must be read whole (compressed or wide-encoded): no byte ranges."""
    return sniff(path) != (None, None)


def split_bytes(split: FileSplit) -> bytes:
    """The bytes of a JSONL split (a byte range, or the whole decoded file when end == -1)."""
    if split.end < 0:
        return read_text_bytes(split.read_path)
    with files.open_read(split.read_path) as f:
        f.seek(split.start)
        data = f.read(split.end - split.start)
        if split.start == 0:
            data = data.removeprefix(codecs.BOM_UTF8)
            if not data.strip() and split.end >= f.seek(0, os.SEEK_END):
                raise FileReadError("the file is empty: no records")
    return data


@dataclass(frozen=True)
class FileSplit:
    """A piece of one input file to read: byte range (jsonl), row group (parquet) or rows."""

    source_index: int
    path: str
    format: str
    layout: str
    start: int = 0
    end: int = -1
    first_row: int = 0
    limit: int | None = None  # rows of the whole file to read (source.limit)
    base_dir: str = ""  # the driver's working directory, for a relative `path` (workers)
    planned: tuple[int, float] | None = None  # (size, mtime) when planned: changes are seen
    key: str = ""  # the file's name in row ids: relative to its source's root (plan.py)

    @property
    def read_path(self) -> str:
        """Where a worker reads the file: `path` (recorded in rows as given); a relative local
        path is resolved against the driver's working directory, so workers started elsewhere
        (the portable runner's worker pool) read the same file. URLs are used as they are."""
        local = bool(self.base_dir) and files.is_local(self.path) and "://" not in self.path
        if local and not os.path.isabs(self.path):  # local-only: a relative local path (above)
            return os.path.join(self.base_dir, self.path)  # local-only: as above
        return self.path


UNREADABLE = "unreadable"  # format of a file that failed planning; its layout holds the reason
Record = tuple[int, Any, Any]  # (row, raw payload, parsed row or Exception)


def expand_paths(pattern: str, fmt: str) -> list[str]:
    """Files matched by a path or glob (local, gs://, s3://), sorted; a directory (or object
    prefix) is every file under it with a known suffix; a save_to_disk folder is one path."""
    if fmt in ("hf_disk", "hf"):
        return [pattern]
    if not files.has_glob(pattern) and files.is_dir(pattern):
        if fmt == "auto" and any(files.is_file(files.join(pattern, n))
                                 for n in ("state.json", "dataset_dict.json")):
            return [pattern]  # a save_to_disk folder is one source, not its metadata JSON files
        return [p for p in files.walk_files(pattern) if _known_suffix(_name(p))]
    return files.glob_paths(pattern) if files.has_glob(pattern) else [pattern]


def _name(path: str) -> str:
    """The last part of a path or URL (`s3://b/in/x.jsonl` → `x.jsonl`)."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _suffix(name: str) -> str:
    """The format suffix of a file name, compression suffixes removed, lower case."""
    name = name.lower()
    for ext in COMPRESSION_SUFFIXES:
        name = name.removesuffix(ext)
    return posixpath.splitext(name)[1]


def _known_suffix(name: str) -> bool:
    return _suffix(name) in FORMAT_BY_SUFFIX


def detect_format(path: str) -> str:
    suffix = _suffix(_name(path))
    # A folder is a save_to_disk dataset. On object stores each look costs a request (and a
    # client), so only a name without a known suffix is looked at as a folder there.
    if (files.is_local(path) or suffix not in FORMAT_BY_SUFFIX) and files.is_dir(path):
        return "hf_disk"
    if suffix not in FORMAT_BY_SUFFIX:
        raise UnknownFormat(f"{path}: cannot tell the format from the suffix {suffix!r}; "
                         "set `format` on the source")
    fmt = FORMAT_BY_SUFFIX[suffix]
    if fmt == "json" and _first_line_is_object(path):  # a .json file may hold JSON lines
        return "jsonl"
    return fmt


def _first_line_is_object(path: str) -> bool:
    try:
        text = read_text_bytes(path) if reads_whole(path) else _head(path)
    except FileReadError:
        return False
    for line in text.removeprefix(codecs.BOM_UTF8).split(b"\n"):
        if line.strip():
            try:
                return isinstance(_loads(line), dict)
            except ValueError:
                return False
    return False


def _head(path: str, size: int = 1 << 20) -> bytes:
    data = files.read_range(path, 0, size)
    return data[: data.rfind(b"\n") + 1] if b"\n" in data else data


def plan_jsonl(path: str, split_bytes: int) -> list[tuple[int, int, int]]:
    """(start, end, first_row) byte ranges aligned to line starts, rows counted exactly; one
    whole-file split (end -1) for files that cannot be read by byte range. Each range is read
    into one reused buffer."""
    plans: list[tuple[int, int, int]] = []
    row = 0
    with files.open_read(path) as f:
        if sniff_head(f.read(4)) != (None, None):
            return [(0, -1, 0)]
        size = f.seek(0, os.SEEK_END)
        buf = bytearray(min(split_bytes, size))
        start = 0
        while start < size:
            f.seek(start)
            got = files.read_into(f, buf)
            if not got:  # the file shrank while it was planned
                break
            end = got
            if start + got < size:
                end = buf.rfind(b"\n", 0, got) + 1
                if not end:  # one line longer than a split: extend to its end
                    rest = f.readline()
                    plans.append((start, start + got + len(rest), row))
                    row += rest.count(b"\n") + (0 if rest.endswith(b"\n") else 1)
                    start += got + len(rest)
                    continue
            plans.append((start, start + end, row))
            row += buf.count(b"\n", 0, end) + (0 if buf[end - 1] == 10 else 1)
            start += end
    return plans


def read_jsonl(split: FileSplit, max_bytes: int) -> Iterator[Record]:
    data = split_bytes(split)
    row = split.first_row
    for line in data.split(b"\n") if data else []:
        if split.limit is not None and row >= split.limit:
            return
        if not line.strip():
            row += 1
            continue
        yield row, line, _parse_line(line, max_bytes)
        row += 1


def _parse_line(line: bytes, max_bytes: int) -> Any:
    if len(line) > max_bytes:
        return ReadError(f"record of {len(line)} bytes exceeds max_record_bytes={max_bytes}")
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as e:
        return ReadError(f"invalid UTF-8 at byte {e.start}")
    try:
        return _loads(line)
    except ValueError as e:
        return ReadError(f"malformed JSON: {e}")


def read_json_array(split: FileSplit, max_bytes: int) -> Iterator[Record]:
    raw = read_text_bytes(split.read_path)
    try:
        items = _loads(raw)
    except ValueError as e:
        raise FileReadError(f"malformed JSON file: {e}") from None
    if isinstance(items, dict):  # {"data": [...]} or a single record
        lists = [v for v in items.values() if isinstance(v, list)]
        items = lists[0] if len(lists) == 1 else [items]
    if not isinstance(items, list):
        raise FileReadError("a JSON file should hold an array of records (or one object)")
    for row, item in enumerate(items):
        if split.limit is not None and row >= split.limit:
            return
        try:
            payload = json.dumps(item, ensure_ascii=False)
        except RecursionError:
            yield row, str(item)[:max_bytes], ReadError("record nested too deeply")
            continue
        if len(payload.encode()) > max_bytes:
            yield row, payload, ReadError(f"record exceeds max_record_bytes={max_bytes}")
        else:
            yield row, payload, item


def read_csv(split: FileSplit, max_bytes: int) -> Iterator[Record]:
    raw = read_text_bytes(split.read_path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileReadError(f"invalid UTF-8 at byte {e.start} (CSV files must be UTF-8; "
                            "convert the file, e.g. iconv -f latin1 -t utf-8)") from None
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # max_bytes judges each row
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        yield from _csv_rows(reader, split, max_bytes)
    except csv.Error as e:
        raise FileReadError(f"malformed CSV at line {reader.line_num}: {e}") from None


def _csv_rows(reader: Any, split: FileSplit, max_bytes: int) -> Iterator[Record]:
    header = next(reader, None)
    if not header:
        return
    for row, values in enumerate(reader):
        if split.limit is not None and row >= split.limit:
            return
        payload = ",".join(values)
        if len(values) != len(header):
            yield row, payload, ReadError(
                f"CSV row has {len(values)} fields, header has {len(header)}")
        elif len(payload.encode()) > max_bytes:
            yield row, payload, ReadError(f"record exceeds max_record_bytes={max_bytes}")
        else:
            yield row, payload, dict(zip(header, values, strict=True))


def _table_rows(table: Any, first_row: int, split: FileSplit, max_bytes: int) -> Iterator[Record]:
    for offset, item in enumerate(table.to_pylist()):
        row = first_row + offset
        if split.limit is not None and row >= split.limit:
            return
        payload = json.dumps(item, ensure_ascii=False, default=str)
        if len(payload.encode()) > max_bytes:
            yield row, payload, ReadError(f"record exceeds max_record_bytes={max_bytes}")
        else:
            yield row, payload, item


def read_parquet(split: FileSplit, max_bytes: int) -> Iterator[Record]:
    import pyarrow.parquet as pq

    with files.arrow_input(split.read_path) as source:
        table = pq.ParquetFile(source).read_row_group(split.start)
    yield from _table_rows(table, split.first_row, split, max_bytes)


def load_hf(path: str, fmt: str, split_name: str) -> Any:
    """A `datasets.Dataset` from a save_to_disk folder or local files via load_dataset."""
    # local-only: the datasets library opens save_to_disk folders and hub caches itself
    import datasets

    if fmt == "hf_disk":
        ds = datasets.load_from_disk(path)
        return ds[split_name] if isinstance(ds, datasets.DatasetDict) else ds
    return datasets.load_dataset(path, split=split_name)


def read_hf(split: FileSplit, max_bytes: int, split_name: str) -> Iterator[Record]:
    ds = load_hf(split.read_path, split.format, split_name)
    table = ds.with_format("arrow")[split.start:split.end]
    yield from _table_rows(table, split.start, split, max_bytes)


def read_split(split: FileSplit, max_bytes: int, hf_split: str = "train") -> Iterator[Record]:
    """Every record of `split`, in file order."""
    if split.format == "jsonl":
        return read_jsonl(split, max_bytes)
    if split.format == "json":
        return read_json_array(split, max_bytes)
    if split.format == "csv":
        return read_csv(split, max_bytes)
    if split.format == "parquet":
        return read_parquet(split, max_bytes)
    if split.format in ("hf_disk", "hf"):
        return read_hf(split, max_bytes, hf_split)
    if split.format == UNREADABLE:
        raise FileReadError(split.layout)
    raise ValueError(f"unknown format {split.format!r}")
