"""Data files other than inputs on object storage (moto's S3 server on 127.0.0.1): the dedup
release index round-trips, benchmark files load as from disk, the LLM cache and the tag utility
table are written and read back; the files helpers keep bytes as given."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.decontam.benchmarks import BenchmarkError, load_benchmarks
from transforms.decontam.config import BenchmarkSpec
from transforms.dedup.release_index import EMBED_FILE, MINHASH_FILE, load_index, save_index
from transforms.io import files
from transforms.llm.cache import list_cache_files, read_entries, write_entries
from transforms.tag_instruct.utility import UtilityTable, load_utility, save_utility

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "data" / "benchmarks"


@pytest.fixture
def s3(s3_server: dict[str, Any]) -> str:
    files.use_options()
    return f"s3://{s3_server['bucket']}/{uuid.uuid4().hex[:12]}"


def test_release_index_round_trips_on_s3(s3: str, tmp_path: Path) -> None:
    ids = ["c", "a", "b"]
    hashes = np.array([3, 1, 2], np.uint64)
    sigs = np.arange(12, dtype=np.uint32).reshape(3, 4)
    emb = np.eye(3, dtype=np.float32)
    params = {"num_perm": 4, "bands": 2}
    for where in (f"{s3}/index", str(tmp_path / "index")):
        save_index(where, ids, hashes, sigs, params, emb_ids=ids, emb=emb, emb_model="m")
    for name in (MINHASH_FILE, EMBED_FILE):  # the same bytes on both
        assert files.read_bytes(f"{s3}/index/{name}") == (tmp_path / "index" / name).read_bytes()
    idx = load_index(f"{s3}/index", params)
    assert idx.ids.tolist() == ["a", "b", "c"]
    assert idx.hashes.tolist() == [1, 2, 3]
    assert idx.sigs.tolist() == sigs[[1, 2, 0]].tolist()
    assert idx.emb_ids.tolist() == ["a", "b", "c"] and idx.emb_model == "m"
    assert idx.emb.tolist() == emb[[1, 2, 0]].tolist()
    assert load_index(f"{s3}/nothing-here", params).empty
    with pytest.raises(ValueError, match="rebuild it"):
        load_index(f"{s3}/index", {"num_perm": 8, "bands": 2})


@pytest.mark.parametrize("name", ["mini_gsm8k.jsonl", "mini_mmlu.csv", "mini_mt_bench.json"])
def test_benchmark_file_on_s3_loads_as_from_disk(s3: str, name: str) -> None:
    files.write_bytes(f"{s3}/bench/{name}", (BENCH / name).read_bytes())
    bench = name.removeprefix("mini_").split(".")[0]
    here = load_benchmarks([BenchmarkSpec(name=bench, path=str(BENCH / name))])
    there = load_benchmarks([BenchmarkSpec(name=bench, path=f"{s3}/bench/{name}")])
    assert len(there) > 0
    assert (there.ids, there.texts, there.skipped) == (here.ids, here.texts, here.skipped)


def test_benchmark_parquet_and_glob_on_s3(s3: str, tmp_path: Path) -> None:
    rows = [{"question": f"How many apples, case {i}?", "answer": str(i)} for i in range(5)]
    local = tmp_path / "gsm8k.parquet"
    pq.write_table(pa.Table.from_pylist(rows), local)
    files.write_bytes(f"{s3}/b/part-0.parquet", local.read_bytes())
    files.write_bytes(f"{s3}/b/part-1.parquet", local.read_bytes())
    items = load_benchmarks([BenchmarkSpec(name="gsm8k", path=f"{s3}/b/*.parquet")])
    assert items.texts == [r["question"] for r in rows] * 2
    with pytest.raises(BenchmarkError, match="file not found"):
        load_benchmarks([BenchmarkSpec(name="gsm8k", path=f"{s3}/b/missing.jsonl")])


def test_llm_cache_on_s3(s3: str) -> None:
    entries = [{"key": k, "texts": [f"answer {k}"], "parsed": None, "model": "m"} for k in "ba"]
    path = write_entries(f"{s3}/cache", entries, prefix="x-")
    assert path is not None and path.startswith(f"{s3}/cache/x-")
    assert list_cache_files(f"{s3}/cache") == [path]
    assert [k for k, _ in read_entries(path)] == ["b", "a"]
    assert list_cache_files(f"{s3}/no-cache-yet") == []


def test_tag_utility_table_on_s3(s3: str) -> None:
    table = UtilityTable(utility={"math": 2.5, "code": 1.0}, count={"math": 4, "code": 3})
    save_utility(table, f"{s3}/utility.json")
    loaded = load_utility(f"{s3}/utility.json")
    assert loaded.utility == table.utility and loaded.count == table.count


@pytest.mark.parametrize("where", ["local", "s3"])
def test_files_keep_bytes_as_given_whatever_the_name(s3: str, tmp_path: Path, where: str) -> None:
    """A `.gz` name is not compressed again on write nor decompressed on read."""
    base = s3 if where == "s3" else str(tmp_path)
    packed = gzip.compress(b'{"a": 1}\n')
    files.write_bytes(files.join(base, "d", "x.jsonl.gz"), packed)
    assert files.read_bytes(files.join(base, "d", "x.jsonl.gz")) == packed
    assert files.size(files.join(base, "d", "x.jsonl.gz")) == len(packed)
    assert files.read_range(files.join(base, "d", "x.jsonl.gz"), 1, 3) == packed[1:4]
    assert files.is_file(files.join(base, "d", "x.jsonl.gz"))
    assert files.is_dir(files.join(base, "d")) and not files.is_dir(files.join(base, "d", "x.jsonl.gz"))
    assert files.is_dir(base)  # a prefix with objects only deeper down is a folder too
    assert files.walk_files(files.join(base, "d")) == [files.join(base, "d", "x.jsonl.gz")]


def test_beam_s3_calls_share_one_boto3_client_per_configuration(
        s3_server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """transforms/io/s3_clients.py: every S3IO Beam builds with the same options reuses one
    boto3 client (with its own download state); other options or environment get another."""
    from apache_beam.io.aws.s3io import S3IO
    from apache_beam.options.pipeline_options import PipelineOptions

    opts = PipelineOptions(s3_server["beam_args"])
    a, b = S3IO(options=opts), S3IO(options=PipelineOptions(s3_server["beam_args"]))
    assert a.client is not b.client and a.client.client is b.client.client
    assert a.client._download_stream is None and b.client._download_stream is None
    other = [x for x in s3_server["beam_args"] if "region" not in x] + ["--s3_region_name=eu-west-1"]
    assert S3IO(options=PipelineOptions(other)).client.client is not a.client.client
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")  # what boto3 reads itself
    assert S3IO(options=opts).client.client is not a.client.client
    files.write_bytes(f"s3://{s3_server['bucket']}/shared/x.txt", b"both")  # still works
    assert a.exists(f"s3://{s3_server['bucket']}/shared/x.txt")
