"""WriteShards' spill path on the real DirectRunner (in-memory and multi-process): rows travel
as Arrow IPC spill files, only (path, indices) go through the shuffle. Checks determinism
(batch order, runner), that every row (duplicates included) lands in exactly one shard, the
spill directory's life cycle, and the pure helpers (shards.py, files.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import apache_beam as beam
import cloudpickle
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.config import EmitConfig
from schemas.ids import content_id
from schemas.records import EXAMPLE_SCHEMA, PAIR_SCHEMA, example_row, examples_to_batch
from schemas.unify import canonical_schema, conform, unify_schemas
from transforms.io.files import delete_tree, read_arrow_batches, write_bytes
from transforms.io.shards import (
    column_options,
    id_prefix,
    parquet_bytes,
    rows_by_shard,
    shard_of,
    sort_rows,
    spill_bytes,
    spill_name,
)
from transforms.io.write_shards import WriteShards, _Spill, gather

# multi-process workers cannot import the test package: ship this module's helpers by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROLES = ("user", "assistant")


def _batch(start: int, n: int, dataset: str = "d", **meta) -> pa.RecordBatch:
    rows = []
    for i in range(start, start + n):
        msgs = [{"role": "user", "content": f"question {i} " + "lorem ipsum " * (i % 7)},
                {"role": "assistant", "content": f"answer {i}"}]
        rows.append(example_row(content_id("t", i), msgs,
                                {"dataset": dataset, "file": f"{dataset}.jsonl", "row": i}, **meta))
    return examples_to_batch(rows)


def _run(batches: list[pa.RecordBatch], out: Path, emit: EmitConfig,
         mode: str = "in_memory", **kwargs) -> list[dict]:
    opts = PipelineOptions(runner="DirectRunner", direct_running_mode=mode,
                           direct_num_workers=2 if mode == "multi_processing" else 1)
    with TestPipeline(options=opts) as p:
        _ = (p | beam.Create(batches, reshuffle=False)
             | WriteShards("sft", str(out), emit, EXAMPLE_SCHEMA, **kwargs))
    return sorted(out.glob("*.parquet"))


def _bytes(files: list[Path]) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in files}


def _rows(files: list[Path]) -> list[tuple]:
    out = []
    for f in files:
        for r in pq.read_table(f).to_pylist():
            out.append((r["id"], r["source"]["dataset"], r["source"]["row"],
                        r["messages"][0]["content"], r["meta"].get("score")))
    return out


def test_spill_files_round_trip_and_are_named_by_content(tmp_path: Path) -> None:
    a, b = _batch(0, 30), _batch(30, 30)
    da, db = spill_bytes(a), spill_bytes(b)
    assert da == spill_bytes(_batch(0, 30))  # same rows, same bytes, same name
    assert spill_name(da) == spill_name(spill_bytes(_batch(0, 30))) != spill_name(db)
    path = tmp_path / "spill" / spill_name(da)
    write_bytes(str(path), da)
    [back] = read_arrow_batches(str(path))
    assert back.equals(a)
    delete_tree(str(tmp_path / "spill"))
    assert not (tmp_path / "spill").exists()
    delete_tree(str(tmp_path / "spill"))  # deleting what is gone is fine


def test_rows_by_shard_partitions_every_row() -> None:
    rng = np.random.default_rng(0)
    for n_rows, n in ((1, 1), (17, 3), (500, 7), (64, 100)):
        ids = pa.array([f"{v:032x}" for v in rng.integers(0, 2**62, n_rows)])
        prefix = id_prefix(ids)
        shards = shard_of(ids, n).to_pylist()
        seen = []
        for s, idx in rows_by_shard(prefix, n):
            assert list(idx) == sorted(idx) and idx.size
            assert {shards[i] for i in idx} == {s}
            seen += list(idx)
        assert sorted(seen) == list(range(n_rows))
    # ids that are not 32 hex digits still get a stable shard from their first 8 digits
    odd = pa.array(["0000000a-x", "0000000B"])
    assert shard_of(odd, 4).to_pylist() == [10 % 4, 11 % 4]


def test_spill_step_writes_one_file_per_distinct_batch_even_when_retried(tmp_path: Path) -> None:
    spill = _Spill(str(tmp_path / "s"))
    batch = _batch(0, 10)
    first = list(spill.process(batch))
    again = list(spill.process(batch))  # a retried bundle spills the same batch again
    assert [e[0] for e in first] == [e[0] for e in again]
    assert len(list((tmp_path / "s").iterdir())) == 1
    path, rows, schema, prefix = first[0]
    assert rows == 10 and schema.equals(batch.schema)
    assert prefix.tolist() == id_prefix(batch.column("id")).tolist()
    [(none, zero, _, empty)] = list(spill.process(batch.slice(0, 0)))
    assert none is None and zero == 0 and empty.size == 0


def test_gather_reads_a_path_once_uses_it_as_often_as_named(tmp_path: Path) -> None:
    batches = [_batch(0, 8), _batch(8, 6, dataset="e", score=1.5)]
    schema = canonical_schema(unify_schemas([EXAMPLE_SCHEMA, *(b.schema for b in batches)]),
                              EXAMPLE_SCHEMA)
    paths = []
    for b in batches:
        data = spill_bytes(b)
        paths.append(str(tmp_path / spill_name(data)))
        write_bytes(paths[-1], data)
    parts = [(paths[0], np.array([5, 1], np.int32)), (paths[1], np.array([4, 0], np.int32)),
             (paths[0], np.array([0], np.int32)), (paths[0], np.array([5, 1], np.int32))]
    got = gather(parts, schema)
    assert got.equals(gather(parts[::-1], schema))
    assert all(c.num_chunks == 1 for c in got.columns)
    # the reference: each part's rows taken, conformed, concatenated, then sorted
    taken = [conform(batches[paths.index(p)].take(pa.array(i)), schema) for p, i in parts]
    assert got.equals(sort_rows(pa.concat_tables(taken)))
    assert got.column("id").to_pylist() == sorted(got.column("id").to_pylist())
    assert gather([], schema).equals(schema.empty_table())


def test_every_row_once_same_bytes_whatever_the_batch_order(tmp_path: Path) -> None:
    batches = [_batch(0, 40), _batch(40, 25, dataset="e", score=1.5), _batch(65, 10),
               _batch(65, 10), examples_to_batch([])]  # a duplicated batch, an empty one
    emit = EmitConfig(num_shards=3)
    one = _run(batches, tmp_path / "a", emit)
    two = _run(batches[::-1], tmp_path / "b", emit)
    assert _bytes(one) == _bytes(two) and len(one) == 3
    rows = _rows(one)
    expected = [(r["id"], r["source"]["dataset"], r["source"]["row"],
                 r["messages"][0]["content"], r["meta"].get("score"))
                for b in batches for r in b.to_pylist()]
    assert sorted(rows, key=str) == sorted(expected, key=str)  # duplicates kept, none lost
    for i, f in enumerate(one):
        t = pq.read_table(f)
        assert t.equals(sort_rows(t))
        assert set(shard_of(t.column("id"), 3).to_pylist()) <= {i}
    assert not (tmp_path / "a" / "_spill").exists() and not (tmp_path / "b" / "_spill").exists()


def test_caller_owned_spill_directory_is_left_for_the_caller(tmp_path: Path) -> None:
    spill = tmp_path / "staging" / "_spill" / "sft"
    files = _run([_batch(0, 20), _batch(20, 20)], tmp_path / "out", EmitConfig(num_shards=2),
                 spill_directory=str(spill), cleanup=False)
    assert len(files) == 2 and sum(pq.read_metadata(f).num_rows for f in files) == 40
    assert len(list(spill.glob("*.arrow"))) == 2
    assert not (tmp_path / "out" / "_spill").exists()


@pytest.mark.slow
def test_multi_processing_writes_the_same_bytes(tmp_path: Path) -> None:
    batches = [_batch(i * 30, 30, score=float(i)) for i in range(6)]
    emit = EmitConfig(rows_per_shard=70)
    local = _run(batches, tmp_path / "mem", emit)
    multi = _run(batches, tmp_path / "mp", emit, mode="multi_processing")
    assert len(local) == 3 and _bytes(local) == _bytes(multi)
    assert not (tmp_path / "mp" / "_spill").exists()


def test_parquet_dictionaries_only_for_repetitive_columns_and_exact_round_trip(
        tmp_path: Path) -> None:
    dictionary, stats = column_options(EXAMPLE_SCHEMA)
    assert {"messages.list.element.role", "source.dataset", "source.file",
            "meta.lineage.stage"} <= set(dictionary)
    assert not {"id", "content_hash", "messages.list.element.content",
                "meta.context"} & set(dictionary)
    assert "messages.list.element.content" not in stats and "id" in stats
    pair_dict, _ = column_options(PAIR_SCHEMA)
    assert "chosen.list.element.role" in pair_dict
    assert "chosen.list.element.content" not in pair_dict

    table = sort_rows(pa.Table.from_batches([_batch(0, 300), _batch(300, 300)]))
    data = parquet_bytes(table, "zstd")
    assert data == parquet_bytes(table, "zstd")  # deterministic bytes
    path = tmp_path / "sft" / "train-00000-of-00001.parquet"
    write_bytes(str(path), data)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    enc = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert "RLE_DICTIONARY" in enc["messages.list.element.role"].encodings
    assert "RLE_DICTIONARY" not in enc["messages.list.element.content"].encodings
    assert enc["messages.list.element.content"].compression == "ZSTD"
    assert pq.read_table(path).equals(table)

    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(tmp_path / "sft"), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.to_list() == table.to_pylist()


def test_an_empty_shard_has_no_row_group_and_loads_with_datasets(tmp_path: Path) -> None:
    """A shard that gets no rows (few rows, several shards) is a valid Parquet file with the
    schema and no row group: pyarrow reads 0 rows, `datasets` loads its siblings' rows."""
    import datasets

    table = sort_rows(pa.Table.from_batches([_batch(0, 3)]))
    for i, part in enumerate((table, table.slice(0, 0))):
        write_bytes(str(tmp_path / "sft" / f"train-0000{i}-of-00002.parquet"),
                    parquet_bytes(part, "zstd"))
    empty = pq.ParquetFile(tmp_path / "sft" / "train-00001-of-00002.parquet")
    assert empty.metadata.num_row_groups == 0 and empty.schema_arrow.equals(table.schema)
    assert pq.read_table(tmp_path / "sft" / "train-00001-of-00002.parquet").num_rows == 0
    loaded = datasets.load_dataset("parquet", data_dir=str(tmp_path / "sft"), split="train",
                                   cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 3 and loaded["id"] == table.column("id").to_pylist()
