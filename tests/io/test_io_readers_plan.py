"""File readers and split planning: jsonl byte ranges, json arrays, csv, parquet row groups,
HF datasets (save_to_disk and load_dataset on local files), limit, format detection."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from transforms.io.config import IngestConfig, SourceConfig
from transforms.io.plan import SourceError, plan_sources
from transforms.io.readers import (
    FileReadError,
    FileSplit,
    ReadError,
    detect_format,
    plan_jsonl,
    read_split,
)


def rows_for(n: int) -> list[dict]:
    return [{"instruction": f"Question number {i}?", "input": "", "output": f"Answer {i}. " * (i % 7 + 1)}
            for i in range(n)]


def write_jsonl(path: Path, rows: list, extra: list[bytes] = ()) -> Path:
    with path.open("wb") as f:
        for r in rows:
            f.write(json.dumps(r).encode() + b"\n")
        for line in extra:
            f.write(line + b"\n")
    return path


def read_all(splits: list[FileSplit], max_bytes: int = 1 << 20, hf_split: str = "train"
             ) -> list[tuple]:
    out = []
    for s in splits:
        for row, raw, parsed in read_split(s, max_bytes, hf_split):
            out.append((row, bytes(raw) if isinstance(raw, bytes | bytearray) else raw,
                        parsed if not isinstance(parsed, Exception) else repr(parsed)))
    return out


def plan(tmp_path: Path, path: Path | str, split_bytes: int = 16 << 20, **source) -> list[FileSplit]:
    return plan_sources([SourceConfig(path=str(path), **source)],
                        IngestConfig(split_bytes=split_bytes))


# ---------------------------------------------------------------- jsonl byte ranges


def test_jsonl_many_splits_read_the_same_rows_as_one(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", rows_for(300), [b"{broken", b""])
    one = plan(tmp_path, path)
    many = plan(tmp_path, path, split_bytes=1024)
    assert len(one) == 1
    assert len(many) > 10
    assert {s.layout for s in many} == {"alpaca"}
    # splits tile the file exactly, in order, and start at line starts
    data = path.read_bytes()
    assert many[0].start == 0 and many[-1].end == len(data)
    for a, b in zip(many, many[1:], strict=False):
        assert a.end == b.start and data[b.start - 1:b.start] == b"\n"
    assert read_all(many) == read_all(one)
    rows = read_all(many)
    assert [r[0] for r in rows] == list(range(301))  # the trailing blank line is not a record
    assert rows[300][2].startswith("ReadError") and rows[300][1] == b"{broken"


def test_jsonl_row_numbers_count_blank_lines_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"question": "q0", "answer": "a"}\n\n{"question": "q2", "answer": "a"}')
    rows = read_all(plan(tmp_path, path))
    assert [(r[0], r[2]["question"]) for r in rows] == [(0, "q0"), (2, "q2")]


def test_jsonl_line_longer_than_a_split(tmp_path: Path) -> None:
    long_row = {"instruction": "long " * 2000, "input": "", "output": "ok"}
    path = write_jsonl(tmp_path / "c.jsonl", rows_for(5) + [long_row] + rows_for(5))
    splits = plan(tmp_path, path, split_bytes=1024)
    rows = read_all(splits)
    assert [r[0] for r in rows] == list(range(11))
    assert rows[5][2]["instruction"].startswith("long long")
    assert rows == read_all(plan(tmp_path, path))
    # plan_jsonl itself, below the config minimum split size
    ranges = plan_jsonl(str(path), 64)
    assert [r for _, _, r in ranges] == sorted({r for _, _, r in ranges})
    assert ranges[-1][1] == path.stat().st_size


def test_jsonl_bad_lines_become_read_errors(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", rows_for(2), [
        b'{"instruction": "unclosed"', b'{"instruction": "bad \xff bytes", "output": "x"}',
        json.dumps({"instruction": "big", "output": "x" * 5000}).encode()])
    splits = plan(tmp_path, path)
    rows = list(read_split(splits[0], 1000))
    assert [r for r, _, _ in rows] == [0, 1, 2, 3, 4]
    errors = {r: str(p) for r, _, p in rows if isinstance(p, ReadError)}
    assert errors[2].startswith("malformed JSON")
    assert errors[3] == "invalid UTF-8 at byte 21"
    assert "exceeds max_record_bytes=1000" in errors[4]
    assert rows[3][1] == b'{"instruction": "bad \xff bytes", "output": "x"}'  # raw bytes kept


def test_limit_reads_only_first_rows_across_splits(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", rows_for(200))
    splits = plan(tmp_path, path, split_bytes=1024, limit=37)
    rows = read_all(splits)
    assert [r[0] for r in rows] == list(range(37))
    assert all(s.first_row < 37 for s in splits)


# ---------------------------------------------------------------- json arrays, csv


def test_json_array_and_wrapped_and_jsonl_in_json_suffix(tmp_path: Path) -> None:
    arr = tmp_path / "arr.json"
    arr.write_text(json.dumps(rows_for(4), indent=1))
    assert detect_format(str(arr)) == "json"
    rows = read_all(plan(tmp_path, arr))
    assert [r[0] for r in rows] == [0, 1, 2, 3]
    assert json.loads(rows[2][1]) == rows_for(4)[2]  # raw payload is the record's JSON

    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": 1, "data": rows_for(3)}, indent=1))
    assert len(read_all(plan(tmp_path, wrapped, format="json"))) == 3

    lines = write_jsonl(tmp_path / "lines.json", rows_for(3))
    assert detect_format(str(lines)) == "jsonl"
    assert len(read_all(plan(tmp_path, lines))) == 3


def test_detect_format_pretty_printed_wrapped_json(tmp_path: Path) -> None:
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"version": 1, "data": rows_for(3)}, indent=1))
    assert detect_format(str(wrapped)) == "json"


def test_json_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('[{"instruction": "x", "output": "y"}, ')
    with pytest.raises(FileReadError, match="malformed JSON file"):  # one error for the file
        read_all(plan(tmp_path, bad, format="json", layout="alpaca"))
    scalar = tmp_path / "scalar.json"
    scalar.write_text("42")
    with pytest.raises(FileReadError, match="should hold an array"):
        read_all(plan(tmp_path, scalar, format="json", layout="alpaca"))


def test_csv_rows_and_wrong_field_count(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer"])
        w.writerow(["What is 1+1?", "2"])
        w.writerow(["Multi\nline, with comma?", "yes"])
        w.writerow(["too", "many", "fields"])
        w.writerow(["short"])
    splits = plan(tmp_path, path)
    assert splits[0].format == "csv" and splits[0].layout == "qa"
    rows = read_all(splits)
    assert rows[0][2] == {"question": "What is 1+1?", "answer": "2"}  # BOM stripped
    assert rows[1][2]["question"] == "Multi\nline, with comma?"
    assert rows[2][2] == "ReadError('CSV row has 3 fields, header has 2')"
    assert rows[3][2] == "ReadError('CSV row has 1 fields, header has 2')"
    assert rows[2][1] == "too,many,fields"


def test_csv_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"question,answer\nbad \xff,x\n")
    with pytest.raises(FileReadError, match="invalid UTF-8 at byte 20"):
        read_all(plan(tmp_path, path, layout="qa"))


# ---------------------------------------------------------------- parquet, HF datasets


def test_parquet_row_groups_are_splits(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    table = pa.Table.from_pylist([{"question": f"q{i}", "answer": f"a{i}"} for i in range(10)])
    pq.write_table(table, path, row_group_size=3)
    splits = plan(tmp_path, path)
    assert [(s.start, s.first_row) for s in splits] == [(0, 0), (1, 3), (2, 6), (3, 9)]
    rows = read_all(splits)
    assert [(r[0], r[2]["question"]) for r in rows] == [(i, f"q{i}") for i in range(10)]
    assert json.loads(rows[4][1]) == {"question": "q4", "answer": "a4"}
    limited = read_all(plan(tmp_path, path, limit=5))
    assert [r[0] for r in limited] == [0, 1, 2, 3, 4]


def test_hf_save_to_disk(tmp_path: Path) -> None:
    import datasets

    rows = [{"problem": f"p{i}", "solution": f"s{i}", "answer": str(i)} for i in range(9)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    assert detect_format(str(tmp_path / "ds")) == "hf_disk"
    splits = plan(tmp_path, tmp_path / "ds", format="hf_disk")
    assert splits[0].layout == "qa"
    got = read_all(splits)
    assert [(r[0], r[2]["problem"]) for r in got] == [(i, f"p{i}") for i in range(9)]
    # a DatasetDict: the configured split is read
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows[:2]),
                          "test": datasets.Dataset.from_list(rows[2:5])}).save_to_disk(
        str(tmp_path / "dd"))
    got = read_all(plan(tmp_path, tmp_path / "dd", format="hf_disk", split="test"),
                   hf_split="test")
    assert [r[2]["problem"] for r in got] == ["p2", "p3", "p4"]
    # auto format on a directory → hf_disk, limit honoured
    assert len(read_all(plan(tmp_path, tmp_path / "ds", limit=4))) == 4


def test_hf_load_dataset_on_local_files(tmp_path: Path) -> None:
    data = tmp_path / "local"
    data.mkdir()
    write_jsonl(data / "part-0.jsonl", rows_for(3))
    write_jsonl(data / "part-1.jsonl", rows_for(5)[3:])
    splits = plan(tmp_path, data, format="hf")
    got = read_all(splits)
    assert splits[0].layout == "alpaca"
    assert sorted(r[2]["instruction"] for r in got) == sorted(
        r["instruction"] for r in rows_for(5))
    assert [r[0] for r in got] == list(range(5))


# ---------------------------------------------------------------- planning errors, detection


def test_missing_files_and_unknown_formats_raise_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"sources\.0\.path: file not found"):
        plan(tmp_path, tmp_path / "nope.jsonl")
    with pytest.raises(SourceError, match="no file matches"):
        plan(tmp_path, str(tmp_path / "*.jsonl"))
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SourceError, match="cannot tell the format"):
        plan(tmp_path, tmp_path / "x.txt")


def test_globs_and_directories_expand_sorted(tmp_path: Path) -> None:
    for name in ("b.jsonl", "a.jsonl"):
        write_jsonl(tmp_path / name, rows_for(2))
    (tmp_path / "notes.txt").write_text("ignored")
    paths = [s.path for s in plan(tmp_path, str(tmp_path / "*.jsonl"))]
    assert paths == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]
    paths = [s.path for s in plan(tmp_path, tmp_path, format="jsonl")]
    assert paths == [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]


@pytest.mark.parametrize(("name", "fmt"), [("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"),
                                           ("a.JSONL", "jsonl"), ("a.parquet", "parquet"),
                                           ("a.csv", "csv")])
def test_detect_format_by_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    assert detect_format(str(tmp_path / name)) == fmt


def test_undetectable_layout_is_planned_not_fatal(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "odd.jsonl", [{"foo": 1}])
    splits = plan(tmp_path, path)
    assert splits[0].layout == "auto"  # detected row by row


def test_file_keys_name_files_relative_to_their_source_and_never_collide(tmp_path: Path) -> None:
    """A file's name in row ids: relative to its source's root (named file, glob, folder),
    the same locally and in a bucket; two files of one relative name: their whole paths."""
    from transforms.io.plan import file_key

    assert file_key("data/alpaca.jsonl", "data/alpaca.jsonl") == "alpaca.jsonl"
    assert file_key("s3://b/in/alpaca.jsonl", "s3://b/in/alpaca.jsonl") == "alpaca.jsonl"
    assert file_key("data/**/*.jsonl", "data/sub/x.jsonl") == "sub/x.jsonl"
    assert file_key("gs://b/in/*.jsonl", "gs://b/in/x.jsonl") == "x.jsonl"
    assert file_key("data/", "data/sub/x.jsonl") == "sub/x.jsonl"
    assert file_key("*.jsonl", "x.jsonl") == "x.jsonl"
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "train.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    (tmp_path / "a" / "other.jsonl").write_text('{"instruction": "q", "output": "a"}\n')
    splits = plan_sources([SourceConfig(path=str(tmp_path / "a" / "*.jsonl")),
                           SourceConfig(path=str(tmp_path / "b" / "train.jsonl"))], IngestConfig())
    keys = {s.path: s.key for s in splits}
    assert keys == {str(tmp_path / "a" / "other.jsonl"): "other.jsonl",
                    str(tmp_path / "a" / "train.jsonl"): str(tmp_path / "a" / "train.jsonl"),
                    str(tmp_path / "b" / "train.jsonl"): str(tmp_path / "b" / "train.jsonl")}


def test_layout_sample_reads_the_first_lines_not_the_whole_split(tmp_path: Path) -> None:
    """The sample's head grows until it holds 200 non-blank lines (here past 64 KiB, with blank
    lines between) and gives the same first 200 records as the whole split."""
    import itertools

    from transforms.io.plan import _first_lines

    rows = [json.dumps({"instruction": "x" * (50 + 700 * (i % 3)), "output": str(i)})
            for i in range(1000)]
    path = tmp_path / "long.jsonl"
    path.write_text("\n\n".join(rows) + "\n")
    start, end, first = plan_jsonl(str(path), 16 << 20)[0]
    split = FileSplit(0, str(path), "jsonl", "alpaca", start, end, first)
    head = _first_lines(split, 200)
    assert 1 << 16 < head.end < end
    whole = list(itertools.islice(read_split(split, 1 << 20), 200))
    assert [r[:2] for r in itertools.islice(read_split(head, 1 << 20), 200)] == [
        r[:2] for r in whole]
    assert _first_lines(split, 2000).end == end  # fewer lines than asked: the whole split
