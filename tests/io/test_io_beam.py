"""ReadSources, WriteShards, WriteDeadLetter and WriteRejected on the real DirectRunner
(TestPipeline + assert_that), and the pure core of emit (shards.py)."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import EXAMPLE_SCHEMA, example_row, examples_to_batch
from transforms.base import DEADLETTER, MAIN, PAIRS, REPORT, reject_rows
from transforms.io.config import EmitConfig, IngestConfig, SourceConfig
from transforms.io.read_sources import ReadSources
from transforms.io.shards import shard_count, shard_name, shard_of, sort_rows
from transforms.io.write_deadletter import WriteDeadLetter
from transforms.io.write_rejected import WriteRejected
from transforms.io.write_shards import WriteShards

GOOD = [{"instruction": f"Task {i}: add {i} and {i}.", "input": "", "output": f"{2 * i}"}
        for i in range(12)]
# (raw line, expected error prefix) — every kind of bad input the reader must dead-letter.
BAD = [
    (b'{"instruction": "unclosed", "output": "x"', "ReadError: malformed JSON"),
    (b'{"instruction": "bad \xff\xfe bytes", "input": "", "output": "x"}', "ReadError: invalid UTF-8"),
    (b'{"instruction": "no output"}', "AdapterError: missing field 'output'"),
    (b'{"instruction": 42, "output": "mistyped"}', "AdapterError: field 'instruction' should be text"),
    (b'{"instruction": "   ", "output": "empty prompt"}', "AdapterError: example: message 0 (user) is empty"),
    (b'["not", "an", "object"]', "AdapterError: a record should be an object"),
    (json.dumps({"instruction": "big", "output": "x" * 3000}).encode(),
     "ReadError: record of"),
]


def write_input(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(r).encode() for r in GOOD[:6]] + [b for b, _ in BAD] + [
        json.dumps(r).encode() for r in GOOD[6:]]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_read_sources_routes_every_row(tmp_path: Path) -> None:
    path = write_input(tmp_path)
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_text(json.dumps({"prompt": "p", "chosen": "good", "rejected": "bad"}) + "\n")
    sources = [SourceConfig(path=str(path), name="mixed"), SourceConfig(path=str(prefs))]
    ingest = IngestConfig(max_record_bytes=2048, batch_rows=5, split_bytes=1024)
    with TestPipeline() as p:
        out = p | ReadSources(sources, ingest)
        ids = out[MAIN] | "Ids" >> beam.FlatMap(lambda b: b.column("id").to_pylist())
        rows = out[MAIN] | "Src" >> beam.FlatMap(
            lambda b: [(s["dataset"], s["row"]) for s in b.column("source").to_pylist()])
        sizes = out[MAIN] | "Sizes" >> beam.Map(lambda b: b.num_rows <= 5)
        pairs = out[PAIRS] | "PairRows" >> beam.Map(lambda b: b.num_rows)
        dead = out[DEADLETTER] | "Dead" >> beam.Map(
            lambda e: (Path(e["file"]).name, e["row"], e["stage"],
                       next(prefix for _, prefix in BAD if e["error"].startswith(prefix)),
                       e["raw"][:20]))
        read = (out[REPORT] | "Read" >> beam.Map(lambda r: r["rows_read"])
                | "Sum" >> beam.CombineGlobally(sum))
        assert_that(ids | "Count" >> beam.combiners.Count.Globally(), equal_to([12]),
                    label="examples")
        assert_that(rows, equal_to([("mixed", i) for i in list(range(6)) + list(range(13, 19))]),
                    label="rows")
        assert_that(sizes | "AllSmall" >> beam.CombineGlobally(all), equal_to([True]),
                    label="batch_rows")
        assert_that(pairs, equal_to([1]), label="pairs")
        expected_dead = []
        for i, (raw, prefix) in enumerate(BAD):
            shown = raw.decode("utf-8", errors="backslashreplace")[:20]
            expected_dead.append(("mixed.jsonl", 6 + i, "ingest", prefix, shown))
        assert_that(dead, equal_to(expected_dead), label="deadletter")
        assert_that(read, equal_to([len(GOOD) + len(BAD) + 1]), label="rows_read")


def _id_rows(batch: pa.RecordBatch) -> list[tuple[str, str, str, int]]:
    """(id, content hash, file name, row) of every row of a batch."""
    return [(i, h, s["file"].rsplit("/", 1)[-1], s["row"]) for i, h, s in zip(
        batch.column("id").to_pylist(), batch.column("content_hash").to_pylist(),
        batch.column("source").to_pylist(), strict=True)]


def _check_ids(sources: list[SourceConfig], ingest: IngestConfig, mode: str,
               expected: list[tuple[str, str, str, int]]) -> None:
    """ReadSources on `mode` makes exactly the `expected` id rows."""
    from apache_beam.options.pipeline_options import PipelineOptions

    opts = PipelineOptions(runner="DirectRunner", direct_running_mode=mode,
                           direct_num_workers=2 if mode == "multi_processing" else 1)
    with TestPipeline(options=opts) as p:
        rows = (p | ReadSources(sources, ingest))[MAIN] | beam.FlatMap(  # a lambda: by value
            lambda b: [(i, h, s["file"].rsplit("/", 1)[-1], s["row"]) for i, h, s in zip(
                b.column("id").to_pylist(), b.column("content_hash").to_pylist(),
                b.column("source").to_pylist(), strict=True)])
        assert_that(rows, equal_to(expected))


def test_identical_rows_get_distinct_ids_the_same_on_every_runner(tmp_path: Path) -> None:
    """Copies of one row (in one file and in two) get one content hash and distinct ids, and
    every row gets the same id from the pure core, in-memory and on two worker processes (ids
    depend on the planned positions only)."""
    from schemas.ids import row_id

    line = json.dumps(GOOD[0]).encode()
    a = tmp_path / "a" / "same.jsonl"
    a.parent.mkdir()
    a.write_bytes(b"\n".join([line, json.dumps(GOOD[1]).encode(), line] +
                             [json.dumps(r).encode() for r in GOOD[2:]]) + b"\n")
    b = tmp_path / "b.jsonl"
    b.write_bytes(line + b"\n")
    sources = [SourceConfig(path=str(tmp_path / "a" / "*.jsonl")), SourceConfig(path=str(b))]
    ingest = IngestConfig(batch_rows=3, split_bytes=1024)
    from transforms.io.plan import plan_sources
    from transforms.io.read_sources import convert_split

    memory = sorted(r for split in plan_sources(sources, ingest)
                    for kind, value in convert_split(split, sources[split.source_index], ingest)
                    if kind == "example" for r in _id_rows(value))  # the pure core, no Beam
    for mode in ("in_memory", "multi_processing"):
        _check_ids(sources, ingest, mode, memory)
    copies = [r for r in memory if r[1] == next(h for _, h, f, n in memory if n == 0 and
                                                f == "same.jsonl")]
    assert [(f, n) for _, _, f, n in sorted(copies, key=lambda r: (r[2], r[3]))] == [
        ("b.jsonl", 0), ("same.jsonl", 0), ("same.jsonl", 2)]
    assert len({i for i, *_ in memory}) == len(memory) == len(GOOD) + 2  # 3 copies of one
    # the id is the content hash at the file's name relative to its source and the row
    assert {i for i, h, f, n in copies} == {row_id(h, f, n) for _, h, f, n in copies}


def _batch(ids: list[str], **meta) -> pa.RecordBatch:
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    return examples_to_batch([example_row(i, msgs, {"dataset": "d", "file": "f", "row": n}, **meta)
                              for n, i in enumerate(ids)])


def _hex_ids(n: int, salt: str) -> list[str]:
    from schemas.ids import content_id

    return [content_id(salt, i) for i in range(n)]


def test_write_shards_sharded_sorted_unified(tmp_path: Path) -> None:
    ids_a, ids_b = _hex_ids(40, "a"), _hex_ids(25, "b")
    batches = [_batch(ids_a), _batch(ids_b, score=1.5)]  # differing meta structs
    emit = EmitConfig(num_shards=3, jsonl=True)
    out = tmp_path / "sft"
    with TestPipeline() as p:
        infos = (p | beam.Create(batches, reshuffle=False)
                 | WriteShards("sft", str(out), emit, EXAMPLE_SCHEMA, str(tmp_path / "jsonl")))
        assert_that(infos | beam.Map(lambda d: (Path(d["path"]).name, d["format"])),
                    equal_to([(shard_name("train", i, 3, s), f) for i in range(3)
                              for s, f in (("parquet", "parquet"), ("jsonl", "jsonl"))]))
    files = sorted(out.glob("*.parquet"))
    assert [f.name for f in files] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    schemas = {pq.read_schema(f).to_string() for f in files}
    assert len(schemas) == 1  # one schema for all shards
    total = []
    for i, f in enumerate(files):
        t = pq.read_table(f)
        ids = t.column("id").to_pylist()
        assert ids == sorted(ids)
        assert shard_of(pa.array(ids), 3).to_pylist() == [i] * len(ids)
        total += ids
        jrows = [json.loads(line) for line in
                 (tmp_path / "jsonl" / shard_name("train", i, 3, "jsonl")).read_text().splitlines()]
        assert [r["id"] for r in jrows] == ids
    assert sorted(total) == sorted(ids_a + ids_b)
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_write_shards_empty_input_still_writes_one_shard(tmp_path: Path) -> None:
    with TestPipeline() as p:
        _ = (p | beam.Create([], reshuffle=False)
             | WriteShards("sft", str(tmp_path / "sft"), EmitConfig(), EXAMPLE_SCHEMA))
    files = list((tmp_path / "sft").glob("*.parquet"))
    assert [f.name for f in files] == ["train-00000-of-00001.parquet"]
    assert pq.read_table(files[0]).num_rows == 0


def test_write_deadletter_and_rejected(tmp_path: Path) -> None:
    from transforms.base import deadletter_entry

    entries = [deadletter_entry("ingest", "e2", b"raw \xff", file="b", row=2),
               deadletter_entry("ingest", "e1", {"x": 1}, file="a", row=9),
               deadletter_entry("quality", "e3", "r", record_id="id1")]
    batch = _batch(_hex_ids(4, "r"))
    rej = reject_rows(batch, "quality", ["short", "short", "refusal", "short"])
    with TestPipeline() as p:
        info = p | "E" >> beam.Create(entries, reshuffle=False) | WriteDeadLetter(str(tmp_path / "dl" / "deadletter.jsonl"))
        assert_that(info | beam.Map(lambda d: (d["rows"], d["stages"])),
                    equal_to([(3, {"ingest": 2, "quality": 1})]), label="dl")
        rinfo = p | "R" >> beam.Create([rej], reshuffle=False) | WriteRejected(str(tmp_path / "rej"))
        assert_that(rinfo | beam.Map(lambda d: (d["stage"], d["rows"], d["reasons"])),
                    equal_to([("quality", 4, {"short": 3, "refusal": 1})]), label="rej")
    lines = [json.loads(line) for line in (tmp_path / "dl" / "deadletter.jsonl").read_text().splitlines()]
    assert [(e["stage"], e["file"], e["row"]) for e in lines] == [
        ("ingest", "a", 9), ("ingest", "b", 2), ("quality", None, None)]
    assert lines[1]["raw"] == "raw \\xff"
    assert json.loads(lines[0]["raw"]) == {"x": 1}
    t = pq.read_table(tmp_path / "rej" / "quality.parquet")
    assert t.column("id").to_pylist() == sorted(t.column("id").to_pylist())
    assert set(t.column("reject_reason").to_pylist()) == {"short", "refusal"}


def test_shard_helpers() -> None:
    assert shard_count(0, None, 10) == 1
    assert shard_count(25, None, 10) == 3
    assert shard_count(25, 4, 10) == 4
    assert shard_name("train", 2, 12) == "train-00002-of-00012.parquet"
    ids = pa.array(["0000000a" + "0" * 24, "0000000b" + "f" * 24])
    assert shard_of(ids, 4).to_pylist() == [10 % 4, 11 % 4]
    t = pa.table({"id": ["b", "a", "a"],
                  "source": [{"file": "f", "row": 1}, {"file": "g", "row": 0},
                             {"file": "f", "row": 5}]})
    assert [(r["id"], r["source"]["file"]) for r in sort_rows(t).to_pylist()] == [
        ("a", "f"), ("a", "g"), ("b", "f")]
