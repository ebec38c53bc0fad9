"""File readers: a planned split of a file → (row number, raw payload, parsed row | error).

Pure Python over pyarrow/polars; no Beam. JSONL is read by byte range (a split owns the lines
that start inside it), Parquet by row group, HF datasets by row range; JSON arrays and CSV are
one split per file. Rows are numbered from 0 within their file.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

_loads = orjson.loads

FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
                    ".parquet": "parquet", ".csv": "csv"}
SAMPLE_ROWS = 50


class ReadError(Exception):
    """A record that could not be parsed; carries the raw payload."""


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


Record = tuple[int, Any, Any]  # (row, raw payload, parsed row or Exception)


def expand_paths(pattern: str, fmt: str) -> list[str]:
    """Files matched by a path or glob, sorted; a directory is one path for hf_disk/hf."""
    if fmt in ("hf_disk", "hf") or (fmt == "auto" and os.path.isdir(pattern) and any(
            (Path(pattern) / n).is_file() for n in ("state.json", "dataset_dict.json"))):
        return [pattern]  # a save_to_disk folder is one source, not its metadata JSON files
    if os.path.isdir(pattern):
        return sorted(str(p) for p in Path(pattern).rglob("*")
                      if p.suffix.lower() in FORMAT_BY_SUFFIX and p.is_file())
    return sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]


def detect_format(path: str) -> str:
    if os.path.isdir(path):
        return "hf_disk"
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        raise ValueError(f"{path}: cannot tell the format from the suffix {suffix!r}; "
                         "set `format` on the source")
    fmt = FORMAT_BY_SUFFIX[suffix]
    if fmt == "json" and _first_line_is_object(path):  # a .json file may hold JSON lines
        return "jsonl"
    return fmt


def _first_line_is_object(path: str) -> bool:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                try:
                    return isinstance(_loads(line), dict)
                except ValueError:
                    return False
    return False


def plan_jsonl(path: str, split_bytes: int) -> list[tuple[int, int, int]]:
    """(start, end, first_row) byte ranges aligned to line starts, rows counted exactly."""
    size = os.path.getsize(path)
    plans: list[tuple[int, int, int]] = []
    row = 0
    with open(path, "rb") as f:
        start = 0
        while start < size:
            f.seek(start)
            chunk = f.read(split_bytes)
            if start + len(chunk) < size:
                cut = chunk.rfind(b"\n")
                if cut < 0:  # one line longer than a split: extend to its end
                    rest = f.readline()
                    chunk += rest
                    cut = len(chunk) - 1
                chunk = chunk[: cut + 1]
            plans.append((start, start + len(chunk), row))
            row += chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
            start += len(chunk)
    return plans


def read_jsonl(split: FileSplit, max_bytes: int) -> Iterator[Record]:
    with open(split.path, "rb") as f:
        f.seek(split.start)
        data = f.read(split.end - split.start)
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
    raw = Path(split.path).read_bytes()
    try:
        items = _loads(raw)
    except ValueError as e:
        yield 0, raw, ReadError(f"malformed JSON file: {e}")
        return
    if isinstance(items, dict):  # {"data": [...]} or a single record
        lists = [v for v in items.values() if isinstance(v, list)]
        items = lists[0] if len(lists) == 1 else [items]
    if not isinstance(items, list):
        yield 0, raw, ReadError("a JSON file should hold an array of records")
        return
    for row, item in enumerate(items):
        if split.limit is not None and row >= split.limit:
            return
        payload = json.dumps(item, ensure_ascii=False)
        if len(payload.encode()) > max_bytes:
            yield row, payload, ReadError(f"record exceeds max_record_bytes={max_bytes}")
        else:
            yield row, payload, item


def read_csv(split: FileSplit, max_bytes: int) -> Iterator[Record]:
    raw = Path(split.path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        yield 0, raw, ReadError(f"invalid UTF-8 at byte {e.start} (CSV files must be UTF-8)")
        return
    reader = csv.reader(io.StringIO(text, newline=""))
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

    table = pq.ParquetFile(split.path).read_row_group(split.start)
    yield from _table_rows(table, split.first_row, split, max_bytes)


def load_hf(path: str, fmt: str, split_name: str) -> Any:
    """A `datasets.Dataset` from a save_to_disk folder or local files via load_dataset."""
    import datasets

    if fmt == "hf_disk":
        ds = datasets.load_from_disk(path)
        return ds[split_name] if isinstance(ds, datasets.DatasetDict) else ds
    return datasets.load_dataset(path, split=split_name)


def read_hf(split: FileSplit, max_bytes: int, split_name: str) -> Iterator[Record]:
    ds = load_hf(split.path, split.format, split_name)
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
    raise ValueError(f"unknown format {split.format!r}")
