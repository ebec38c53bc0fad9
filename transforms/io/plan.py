"""Plan the reading of sources: files matched → format and layout detected → splits.

Runs once when the graph is built, so a missing file or an unknown format fails fast, and
the split list (hence every row number, and every file's `key`, its name in row ids) is the
same on every runner. Paths go through Beam's
FileSystems (local, gs://, s3://); Hugging Face datasets (hf_disk, hf) are read from the local
disk only.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
from collections.abc import Sequence

from transforms.io import files
from transforms.io.adapters import AUTO, AdapterError, detect_layout
from transforms.io.config import IngestConfig, SourceConfig
from transforms.io.readers import (
    SAMPLE_ROWS,
    UNREADABLE,
    FileSplit,
    ReadError,
    UnknownFormat,
    _head,
    detect_format,
    expand_paths,
    load_hf,
    plan_jsonl,
    read_split,
)

log = logging.getLogger(__name__)


class SourceError(Exception):
    """A source that cannot be read at all (missing file, unknown format)."""


def _first_lines(split: FileSplit, lines: int) -> FileSplit:
    """The first split of a JSONL file cut after its first `lines` non-blank lines (whole when
    it has fewer): the sample reads those, not up to 16 MiB."""
    if split.format != "jsonl" or split.end < 0 or split.start:
        return split
    size = 1 << 16
    while size < split.end:
        head = _head(split.read_path, size)  # whole lines from the file's start
        if sum(1 for line in head.split(b"\n") if line.strip()) >= lines:
            return dataclasses.replace(split, end=len(head))
        size *= 4
    return split


def _sample_layout(first: FileSplit, max_bytes: int, hf_split: str) -> str:
    """The layout most of the first rows have; `auto` (every row detected on its own) when
    none of them has a known one, so a file that starts with junk is not condemned."""
    rows = [r for _, _, r in itertools.islice(read_split(_first_lines(first, SAMPLE_ROWS * 4),
                                                         max_bytes, hf_split),
                                              SAMPLE_ROWS * 4)
            if not isinstance(r, Exception)][:SAMPLE_ROWS]
    try:
        return detect_layout(rows)
    except AdapterError:
        return AUTO


def plan_file(index: int, path: str, source: SourceConfig, split_bytes: int, max_bytes: int,
              batch_rows: int) -> list[FileSplit]:
    fmt = source.format if source.format != "auto" else detect_format(path)
    if fmt in ("hf_disk", "hf") and not files.is_local(path):
        raise SourceError(f"{path}: format {fmt} reads Hugging Face datasets from the local "
                          "disk only; convert it to Parquet or JSONL files for object storage")
    limit = source.limit
    if fmt == "jsonl":
        ranges = [(s, e, r) for s, e, r in plan_jsonl(path, split_bytes)
                  if limit is None or r < limit]
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        with files.arrow_input(path) as f:
            meta = pq.ParquetFile(f).metadata
        starts = itertools.accumulate([meta.row_group(i).num_rows for i in range(meta.num_row_groups)],
                                      initial=0)
        ranges = [(g, g, r) for g, r in zip(range(meta.num_row_groups), starts, strict=False)
                  if limit is None or r < limit]
    elif fmt in ("hf_disk", "hf"):
        n = len(load_hf(path, fmt, source.split))
        n = min(n, limit) if limit else n
        step = max(batch_rows * 4, 1)
        ranges = [(s, min(s + step, n), s) for s in range(0, n, step)]
    else:
        ranges = [(0, -1, 0)]
    splits = [FileSplit(index, path, fmt, "", s, e, r, limit) for s, e, r in ranges]
    if not splits:
        return []
    layout = source.layout
    if layout == "auto":
        layout = _sample_layout(splits[0], max_bytes, source.split)
    return [FileSplit(index, path, fmt, layout, s.start, s.end, s.first_row, limit)
            for s in splits]


def missing_inputs(sources: Sequence[SourceConfig]) -> list[str]:
    """'sources.N.path: ...' for every source path that matches no file (what `refinery
    validate` reports; `plan_sources` stops at the first). Hub datasets (`format: hf`) are not
    looked up."""
    problems = []
    for index, source in enumerate(sources):
        if source.format == "hf":
            continue
        paths = expand_paths(source.path, source.format)
        if not paths:
            problems.append(f"sources.{index}.path: no file matches {source.path!r}")
        problems += [f"sources.{index}.path: file not found: {p}" for p in paths
                     if p == source.path and not (files.exists(p) or files.is_dir(p))]
    return problems


def plan_sources(sources: Sequence[SourceConfig], ingest: IngestConfig) -> list[FileSplit]:
    """Every split of every source, in source then file order. A file is identified by its
    resolved path: named twice (two sources, a glob and a path, a link) it is read once.
    Special files (pipes, sockets, devices) are never opened: each is one unreadable file."""
    splits: list[FileSplit] = []
    seen: dict[str, str] = {}
    for index, source in enumerate(sources):
        paths = expand_paths(source.path, source.format)
        if not paths:
            raise SourceError(f"sources.{index}.path: no file matches {source.path!r}")
        for path in paths:
            listed = path != source.path  # found by a glob or folder listing: it exists
            if source.format != "hf" and not listed and not (files.exists(path)
                                                             or files.is_dir(path)):
                raise SourceError(f"sources.{index}.path: file not found: {path}")
            if source.format != "hf":
                key = files.identity(path)
                if key in seen:
                    log.warning("sources.%d.path: %s is the file %s already read (%s): read "
                                "once", index, path, seen[key], key)
                    continue
                seen[key] = path
            special = files.special_kind(path)
            if special:
                splits.append(FileSplit(index, path, UNREADABLE,
                                        f"{path} is {special}, not a regular file: not read"))
                continue
            splits.extend(_plan_or_unreadable(index, path, source, ingest))
    cwd = os.getcwd()
    keys = file_keys(sources, splits)
    return [dataclasses.replace(s, base_dir=cwd, key=keys[s.path]) for s in splits]


def file_key(source_path: str, path: str) -> str:
    """A file's name in row ids: its path relative to its source's root (the folder of a
    named file, the folder a glob starts in, the folder listed), so the same files give the
    same ids wherever they are stored (a local folder, an object store prefix)."""
    root = source_path.rstrip("/")
    if path.rstrip("/") == root:  # a named file (or dataset folder): its own name
        return path.rstrip("/").rsplit("/", 1)[-1]
    if files.has_glob(root):
        cut = min(i for i, ch in enumerate(root) if ch in "*?[")
        root = root[:cut].rsplit("/", 1)[0] if "/" in root[:cut] else ""
    if not root:
        return path
    return path[len(root) + 1:] if path.startswith(root + "/") else path


def file_keys(sources: Sequence[SourceConfig], splits: Sequence[FileSplit]) -> dict[str, str]:
    """path → file_key for every planned file; files whose keys collide (two sources with
    files of one name) are named by their whole path instead, so ids stay unique."""
    keys = {s.path: (s.path if sources[s.source_index].format == "hf" else
                     file_key(sources[s.source_index].path, s.path)) for s in splits}
    seen: dict[str, int] = {}
    for k in keys.values():
        seen[k] = seen.get(k, 0) + 1
    return {p: (k if seen[k] == 1 else p) for p, k in keys.items()}


def _plan_or_unreadable(index: int, path: str, source: SourceConfig, ingest: IngestConfig
                        ) -> list[FileSplit]:
    try:
        planned = files.stat_key(path) if source.format not in ("hf", "hf_disk") and \
            not files.is_dir(path) else None
        found = plan_file(index, path, source, ingest.split_bytes, ingest.max_record_bytes,
                          ingest.batch_rows)
    except (UnknownFormat, SourceError) as e:
        raise SourceError(f"sources.{index}.path: {e}") from e
    except (OSError, ValueError, ReadError) as e:  # read as one unreadable file
        reason = f"{type(e).__name__}: {e}" if not isinstance(e, ReadError) else str(e)
        return [FileSplit(index, path, UNREADABLE, reason)]
    return [dataclasses.replace(s, planned=planned) for s in found]
