"""Issue #13 items 1, 9 and 12: whole files that cannot be read are one dead-letter entry per
file and fail the run (exit 3) unless `ingest.on_unreadable_file: skip`; compressed files,
BOMs, deep nesting and huge CSV fields are read or refused clearly by the readers, never crash
them (those are checked at reader level: what the CLI does with a file error is tested once)."""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import json
from pathlib import Path

import zstandard

from tests.reliability._helpers import (
    alpaca_lines,
    counts_from_files,
    manifest_of,
    read_inputs,
    run_cli,
    run_dir_of,
    write_jsonl,
)


def _latin1_csv(path: Path, n: int) -> Path:
    rows = ["instruction,output"] + [f"Question {i}?,Answer {i}." for i in range(n - 1)]
    rows.append("Caf\xe9 question?,Answer.")
    path.write_bytes("\n".join(rows).encode("latin-1") + b"\n")
    return path


def test_a_latin1_csv_is_one_unreadable_file_and_fails_the_run(tmp_path: Path, capsys) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 2000)
    bad = _latin1_csv(tmp_path / "bad.csv", 300)
    code, err = run_cli(capsys, [good, bad], tmp_path / "out")
    assert code == 3
    assert f"{bad}: unreadable file: invalid UTF-8" in err and "on_unreadable_file" in err
    assert not (tmp_path / "out" / "manifest.json").exists()  # nothing published
    counts = counts_from_files(run_dir_of(tmp_path / "out"))
    assert counts == {"out": 2000, "rejected": 0, "dead": 0, "file_errors": 1}


def test_skip_goes_on_and_lists_the_file_in_the_manifest(tmp_path: Path, capsys) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 200)
    bad = _latin1_csv(tmp_path / "bad.csv", 100)
    code, _ = run_cli(capsys, [good, bad], tmp_path / "out",
                      "--set", "ingest.on_unreadable_file=skip")
    assert code == 0
    m = manifest_of(tmp_path / "out")
    assert m["unreadable_files"] == [str(bad)]
    assert m["conservation"]["records_in"] == 200 and m["conservation"]["holds"]


def test_compressed_files_are_read_by_their_magic_bytes(tmp_path: Path) -> None:
    body = ("\n".join(alpaca_lines(30)) + "\n").encode()
    (tmp_path / "gzip_named.jsonl").write_bytes(gzip.compress(body))  # gzip under a .jsonl name
    (tmp_path / "z.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        ("\n".join(alpaca_lines(20, 100)) + "\n").encode()))
    (tmp_path / "b.json.bz2").write_bytes(bz2.compress(json.dumps(
        [json.loads(x) for x in alpaca_lines(10, 200)]).encode()))
    assert read_inputs(sorted(tmp_path.glob("*.*"))) == {"rows": 60, "dead": [], "file_errors": {}}


def test_boms_are_handled_in_every_text_format(tmp_path: Path) -> None:
    rows = [json.loads(x) for x in alpaca_lines(5)]
    bom = codecs.BOM_UTF8
    (tmp_path / "a.json").write_bytes(bom + json.dumps(rows).encode())
    (tmp_path / "b.jsonl").write_bytes(bom + ("\n".join(alpaca_lines(5, 10)) + "\n").encode())
    with (tmp_path / "c.csv").open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "output"])
        w.writerows([[f"CSV question {i}?", f"CSV answer {i}."] for i in range(5)])
    (tmp_path / "d.jsonl").write_bytes(("\n".join(alpaca_lines(5, 20)) + "\n").encode("utf-16"))
    assert read_inputs(sorted(tmp_path.glob("*.*"))) == {"rows": 20, "dead": [], "file_errors": {}}


def test_a_deeply_nested_file_is_refused_clearly(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 50)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000 + "]" * 10_000)
    got = read_inputs([good, deep])  # (a file error fails the run: the latin-1 test above)
    assert got["rows"] == 50 and not got["dead"] and list(got["file_errors"]) == [str(deep)]
    error = got["file_errors"][str(deep)]
    assert error.startswith("unreadable file: malformed JSON file") and "RecursionError" not in error


def test_a_deeply_nested_jsonl_row_is_one_dead_letter_row(tmp_path: Path) -> None:
    """The columnar path: pyarrow recursed and the run died with RecursionError."""
    path = tmp_path / "rows.jsonl"
    lines = alpaca_lines(99)
    lines.insert(40, '{"instruction": "x", "output": "y", "extra": ' + "[" * 10_000
                 + "]" * 10_000 + "}")
    path.write_text("\n".join(lines) + "\n")
    got = read_inputs([path])
    assert (got["rows"], len(got["dead"]), got["file_errors"]) == (99, 1, {})
    assert got["dead"][0]["row"] == 40


def test_a_csv_field_over_128_kib_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "output"])
        w.writerow(["Summarize this long text?", "word " * 60_000])  # 300 KB field
        w.writerow(["Short question?", "Short answer."])
    assert read_inputs([path]) == {"rows": 2, "dead": [], "file_errors": {}}


def test_an_empty_json_file_says_so(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 10)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    got = read_inputs([good, empty])
    assert got["rows"] == 10
    assert got["file_errors"] == {str(empty): "unreadable file: the file is empty: no records"}


def test_out_naming_an_existing_file_is_a_clear_error(tmp_path: Path, capsys) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 5)
    target = tmp_path / "a_file"
    target.write_text("keep me")
    code, err = run_cli(capsys, [good], target)
    assert code == 2 and "exists and is not a directory" in err  # a usage error (README)
    assert target.read_text() == "keep me"


def test_a_layout_failure_shows_its_reason_on_the_console(tmp_path: Path, capsys) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(json.dumps({"foo": i, "bar": "x"}) for i in range(20)) + "\n")
    code, err = run_cli(capsys, [path], tmp_path / "out")
    assert code == 3
    assert "cannot detect the layout" in err and "deadletter.jsonl" in err
