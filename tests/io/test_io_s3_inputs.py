"""Inputs on object storage: every format read from s3:// (moto's S3 server on 127.0.0.1) gives
the rows it gives from the local disk; JSONL byte-range splits, globs, prefixes, magic-byte
compression and unreadable-file dead letters work there too; a Beam pipeline reads s3 inputs."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from transforms.io import files
from transforms.io.config import IngestConfig, SourceConfig
from transforms.io.plan import SourceError, plan_sources
from transforms.io.read_sources import FILE_STAGE, ReadSources, convert_split
from transforms.io.readers import FileSplit, read_split

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def s3(s3_server: dict[str, Any]) -> str:
    """A fresh s3:// prefix in the test bucket."""
    files.use_options()
    return f"s3://{s3_server['bucket']}/{uuid.uuid4().hex[:12]}"


def rows_for(n: int) -> list[dict]:
    return [{"instruction": f"Question number {i}?", "input": "", "output": f"Answer {i}. " * (i % 7 + 1)}
            for i in range(n)]


def jsonl_bytes(rows: list[dict], extra: tuple[bytes, ...] = ()) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows) + b"".join(x + b"\n" for x in extra)


def put(local: Path, url: str) -> str:
    files.write_bytes(url, local.read_bytes())
    return url


def plan(path: str, split_bytes: int = 16 << 20, **source: Any) -> list[FileSplit]:
    return plan_sources([SourceConfig(path=path, **source)], IngestConfig(split_bytes=split_bytes))


def records(splits: list[FileSplit]) -> list[tuple]:
    """(row, raw, parsed) of every split, errors as their repr."""
    return [(row, bytes(raw) if isinstance(raw, bytes | bytearray) else raw,
             repr(parsed) if isinstance(parsed, Exception) else parsed)
            for s in splits for row, raw, parsed in read_split(s, 1 << 20)]


def converted(splits: list[FileSplit], name: str = "ds") -> dict[str, list]:
    """What ingest makes of the splits, the file name and its planned (size, mtime) left out
    (the URL or the path; each copy has its own modification time)."""
    out: dict[str, list] = {"example": [], "pair": [], "deadletter": [], "report": []}
    src = SourceConfig(path="x", name=name)
    for split in splits:
        for kind, value in convert_split(split, src, IngestConfig()):
            if kind in ("example", "pair"):
                out[kind] += [{**r, "source": {**r["source"], "file": None}}
                              for r in value.to_pylist()]
            else:
                out[kind].append({k: v for k, v in value.items() if k not in ("file", "planned")})
    return out


@pytest.mark.parametrize("name", ["alpaca.jsonl", "sharegpt.json", "qa.csv", "gsm8k_style.parquet",
                                  "preference.jsonl"])
def test_each_format_reads_the_same_from_s3_as_from_disk(s3: str, name: str) -> None:
    local = str(ROOT / "data" / name)
    url = put(ROOT / "data" / name, f"{s3}/in/{name}")
    here, there = plan(local), plan(url)
    assert [(s.format, s.layout, s.start, s.end, s.first_row) for s in there] == \
        [(s.format, s.layout, s.start, s.end, s.first_row) for s in here]
    assert there[0].path == url and there[0].read_path == url
    assert records(there) == records(here)
    got = converted(there)
    assert got == converted(here)
    assert got["example"] or got["pair"]


def test_parquet_row_groups_are_splits_on_s3(s3: str, tmp_path: Path) -> None:
    local = tmp_path / "groups.parquet"
    pq.write_table(pa.Table.from_pylist(rows_for(250)), local, row_group_size=60)
    url = put(local, f"{s3}/groups.parquet")
    splits = plan(url)
    assert [s.start for s in splits] == [0, 1, 2, 3, 4]
    assert [s.first_row for s in splits] == [0, 60, 120, 180, 240]
    assert records(splits) == records(plan(str(local)))
    assert [r for r, _, _ in records(plan(url, limit=70))] == list(range(70))


def test_split_large_jsonl_on_s3_reads_the_same_rows_as_unsplit(s3: str, tmp_path: Path) -> None:
    data = jsonl_bytes(rows_for(300), (b"{broken", b"", b'{"instruction": "last", "output": "x"}'))
    files.write_bytes(f"{s3}/big.jsonl", data)
    (tmp_path / "big.jsonl").write_bytes(data)
    many = plan(f"{s3}/big.jsonl", split_bytes=4096)
    one = plan(f"{s3}/big.jsonl")
    assert len(many) > 5 and len(one) == 1
    assert [(s.start, s.end, s.first_row) for s in many] == \
        [(s.start, s.end, s.first_row) for s in plan(str(tmp_path / "big.jsonl"), split_bytes=4096)]
    assert records(many) == records(one)
    assert len(records(many)) == 302  # the blank line is no record
    assert converted(many)["example"] == converted(one)["example"]


def test_compression_is_told_by_magic_bytes_on_s3(s3: str) -> None:
    raw = jsonl_bytes(rows_for(40))
    files.write_bytes(f"{s3}/packed.jsonl", gzip.compress(raw))  # gzip under a plain name
    files.write_bytes(f"{s3}/plain.jsonl", raw)
    packed = plan(f"{s3}/packed.jsonl", split_bytes=1024)
    assert [(s.start, s.end) for s in packed] == [(0, -1)]  # read whole, decompressed
    assert records(packed) == records(plan(f"{s3}/plain.jsonl", split_bytes=1024))


def test_globs_and_prefixes_over_s3(s3: str) -> None:
    for name, n in (("a.jsonl", 3), ("b.jsonl", 4), ("notes.txt", 1), ("sub/c.jsonl", 5)):
        files.write_bytes(f"{s3}/in/{name}", jsonl_bytes(rows_for(n)))
    assert {s.path for s in plan(f"{s3}/in/*.jsonl")} == {f"{s3}/in/a.jsonl", f"{s3}/in/b.jsonl"}
    assert {s.path for s in plan(f"{s3}/in/**.jsonl")} == \
        {f"{s3}/in/a.jsonl", f"{s3}/in/b.jsonl", f"{s3}/in/sub/c.jsonl"}
    folder = plan(f"{s3}/in")  # a prefix is a folder: every file with a known suffix under it
    assert [s.path for s in folder] == [f"{s3}/in/a.jsonl", f"{s3}/in/b.jsonl",
                                        f"{s3}/in/sub/c.jsonl"]
    assert len(records(folder)) == 12
    assert converted(folder)["report"][0]["examples"] == 3
    with pytest.raises(SourceError, match="no file matches"):
        plan(f"{s3}/in/*.parquet")
    with pytest.raises(SourceError, match="file not found"):
        plan(f"{s3}/in/missing.jsonl")


def test_unreadable_file_on_s3_is_one_dead_letter_with_its_head(s3: str) -> None:
    files.write_bytes(f"{s3}/cut.jsonl.gz", gzip.compress(jsonl_bytes(rows_for(50)))[:60])
    splits = plan(f"{s3}/cut.jsonl.gz")
    out = converted(splits)
    assert out["example"] == [] and len(out["deadletter"]) == 1
    entry = out["deadletter"][0]
    assert entry["stage"] == FILE_STAGE and "corrupt or truncated gzip" in entry["error"]
    assert out["report"][0]["file_errors"] == 1


def test_hf_formats_on_s3_are_refused_clearly(s3: str) -> None:
    files.write_bytes(f"{s3}/ds/state.json", b"{}")
    with pytest.raises(SourceError, match="local disk only"):
        plan(f"{s3}/ds", format="hf_disk")


def test_read_sources_in_a_pipeline_reads_s3(s3_server: dict[str, Any], s3: str) -> None:
    files.write_bytes(f"{s3}/p/a.jsonl", jsonl_bytes(rows_for(30)))
    files.write_bytes(f"{s3}/p/b.csv", b"instruction,output\nWhat is 2+2?,4\n")
    expected = sorted(r["id"] for kind in ("example",)
                      for sp in [plan(f"{s3}/p/*")] for r in converted(sp)[kind])
    assert len(expected) == 31
    opts = PipelineOptions(["--runner=DirectRunner", *s3_server["beam_args"]])
    with beam.Pipeline(options=opts) as p:
        out = p | ReadSources([SourceConfig(path=f"{s3}/p/*")], IngestConfig(split_bytes=1024))
        ids = out["main"] | beam.FlatMap(lambda b: b.column("id").to_pylist())
        assert_that(ids, equal_to(expected))
