"""Benchmark loading: files or Hugging Face datasets → (benchmark, item id, text) items.

Reads the files named in `BenchmarkSpec`s (local, gs://, s3://, through Beam's FileSystems);
writes nothing. Each row becomes one item whose text
is its mapped fields joined with newlines; rows with no text are skipped (counted).
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from transforms.decontam.config import BenchmarkSpec
from transforms.io import files
from transforms.io.plan import SourceError

# preset → (text fields, id field). 'a|b' = first present; dotted paths reach into nested values.
PRESET_FIELDS: dict[str, tuple[list[str], str | None]] = {
    "gsm8k": (["question"], None),
    "math": (["problem"], "unique_id"),
    "humaneval": (["prompt"], "task_id"),
    "mbpp": (["text|prompt"], "task_id"),
    "mmlu": (["question", "choices"], None),
    "arc": (["question.stem|question", "choices.text|question.choices.text"], "id"),
    "truthfulqa": (["question|Question"], None),
    "mt_bench": (["turns|prompt"], "question_id"),
    "alpaca_eval": (["instruction"], None),
    "ifeval": (["prompt"], "key"),
}
# Substrings of a benchmark's name that pick its preset when none is given (first match wins).
_NAME_HINTS = [("gsm8k", "gsm8k"), ("humaneval", "humaneval"), ("mbpp", "mbpp"),
               ("mmlu", "mmlu"), ("truthful", "truthfulqa"), ("mtbench", "mt_bench"),
               ("alpacaeval", "alpaca_eval"), ("ifeval", "ifeval"), ("arc", "arc"),
               ("math", "math")]


class BenchmarkError(SourceError, ValueError):
    """A benchmark that cannot be loaded; the message says which and why. A SourceError, so
    the CLI reports it in one line (exit status 3) instead of a traceback."""


@dataclass
class BenchmarkItems:
    """All items of all benchmarks, in config order: item i belongs to benchmarks[bench[i]]."""

    benchmarks: list[str] = field(default_factory=list)
    bench: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def counts(self) -> dict[str, int]:
        out = {name: 0 for name in self.benchmarks}
        for b in self.bench:
            out[self.benchmarks[b]] += 1
        return out


def guess_preset(name: str) -> str | None:
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    for hint, preset in _NAME_HINTS:
        if hint in key:
            return preset
    return None


def field_mapping(spec: BenchmarkSpec) -> tuple[list[str], str | None]:
    """The (text fields, id field) used for `spec`: explicit fields, else its preset's."""
    preset = spec.preset or guess_preset(spec.name)
    fields, id_field = PRESET_FIELDS.get(preset, ([], None)) if preset else ([], None)
    if spec.fields:
        fields = list(spec.fields)
    if spec.id_field is not None:
        id_field = spec.id_field
    if not fields:
        raise BenchmarkError(
            f"benchmark {spec.name!r}: no field mapping; set `preset` (one of "
            f"{sorted(PRESET_FIELDS)}) or `fields`")
    return fields, id_field


def resolve(row: Any, path: str) -> Any:
    """Value at a dotted path; lists along the way are mapped over. None when missing."""
    node = row
    for key in path.split("."):
        if isinstance(node, list):
            node = [resolve(x, key) for x in node]
        elif isinstance(node, dict):
            node = node.get(key)
        else:
            return None
        if node is None:
            return None
    return node


def _flatten_text(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [t for v in value for t in _flatten_text(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten_text(v)]
    text = str(value).strip()
    return [text] if text else []


def item_text(row: dict[str, Any], fields: list[str]) -> str:
    """The mapped fields of one benchmark row, joined with newlines."""
    parts: list[str] = []
    for spec in fields:
        for alt in spec.split("|"):
            value = resolve(row, alt)
            if value is not None:
                parts.extend(_flatten_text(value))
                break
    return "\n".join(parts)


def _read_file(path: str, fmt: str) -> Iterable[dict[str, Any]]:
    if fmt == "auto":
        suffix = posixpath.splitext(path.rstrip("/"))[1].lower().lstrip(".")
        fmt = {"jsonl": "jsonl", "ndjson": "jsonl", "json": "json", "parquet": "parquet",
               "pq": "parquet", "csv": "csv"}.get(suffix, "")
        if not fmt:
            raise BenchmarkError(f"{path}: cannot tell the format from the extension; set "
                                 "`format`")
    if fmt == "jsonl":
        with io.StringIO(files.read_text(path), newline=None) as fh:
            for line_no, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as e:
                        raise BenchmarkError(f"{path}:{line_no}: not valid JSON: {e}") from e
    elif fmt == "json":
        data = json.loads(files.read_text(path))
        if isinstance(data, dict):  # {"data": [...]} or a dict of columns
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) == 1 and all(isinstance(x, dict) for x in lists[0]):
                data = lists[0]
            elif lists and all(isinstance(v, list) for v in data.values()):
                keys = list(data)
                data = [dict(zip(keys, vals, strict=True)) for vals in zip(*data.values(),
                                                                            strict=True)]
            else:
                raise BenchmarkError(f"{path}: expected a JSON array of objects")
        yield from data
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        with files.arrow_input(path) as source:
            rows = pq.read_table(source).to_pylist()
        yield from rows
    elif fmt == "csv":
        yield from csv.DictReader(io.StringIO(files.read_text(path), newline=""))


def _read_hf(spec: BenchmarkSpec) -> Iterable[dict[str, Any]]:
    try:
        import datasets

        ds = datasets.load_dataset(spec.hf, spec.hf_config, split=spec.split)
    except Exception as e:  # offline, unknown name, missing config: all end here
        raise BenchmarkError(
            f"benchmark {spec.name!r}: cannot load Hugging Face dataset {spec.hf!r} "
            f"(config={spec.hf_config!r}, split={spec.split!r}): {type(e).__name__}: {e}. "
            "Without network access (HF_HUB_OFFLINE=1) download it elsewhere and point `path` "
            "at a local file.") from e
    yield from ds


def read_rows(spec: BenchmarkSpec) -> Iterable[dict[str, Any]]:
    """The raw rows of one benchmark."""
    if spec.hf is not None:
        yield from _read_hf(spec)
        return
    if spec.path is None:  # the config requires path or hf; a spec built by hand may lack both
        raise BenchmarkError(f"benchmark {spec.name!r}: neither `path` nor `hf` given")
    paths = files.glob_paths(spec.path) if files.has_glob(spec.path) else [spec.path]
    if not paths or not all(files.is_file(p) for p in paths):
        where = f" (working directory {os.getcwd()})" if files.is_local(spec.path) else ""
        raise BenchmarkError(f"benchmark {spec.name!r}: file not found: {spec.path}{where}")
    for p in paths:
        yield from _read_file(p, spec.format)


def load_benchmarks(specs: list[BenchmarkSpec]) -> BenchmarkItems:
    """Items of every benchmark in `specs`, in order; raises BenchmarkError on any problem."""
    items = BenchmarkItems()
    for b, spec in enumerate(specs):
        fields, id_field = field_mapping(spec)
        items.benchmarks.append(spec.name)
        items.skipped[spec.name] = 0
        count = 0
        for row_no, row in enumerate(read_rows(spec)):
            if spec.limit is not None and count >= spec.limit:
                break
            if not isinstance(row, dict):
                raise BenchmarkError(f"benchmark {spec.name!r}: row {row_no} is not an object")
            text = item_text(row, fields)
            if not text:
                items.skipped[spec.name] += 1
                continue
            item_id = row.get(id_field) if id_field else None
            items.bench.append(b)
            items.ids.append(str(item_id) if item_id is not None else str(row_no))
            items.texts.append(text)
            count += 1
        if count == 0:
            raise BenchmarkError(f"benchmark {spec.name!r}: no items with text in fields "
                                 f"{fields}")
    return items
