"""Issue #13 items 1, 9 and 12: whole files that cannot be read are one dead-letter entry per
file and fail the run (exit 3) unless `ingest.on_unreadable_file: skip`; compressed files,
BOMs, deep nesting and huge CSV fields are read or refused clearly, never crash the run."""

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


def test_compressed_files_are_read_by_their_magic_bytes(tmp_path: Path, capsys) -> None:
    body = ("\n".join(alpaca_lines(30)) + "\n").encode()
    (tmp_path / "gzip_named.jsonl").write_bytes(gzip.compress(body))  # gzip under a .jsonl name
    (tmp_path / "z.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(
        ("\n".join(alpaca_lines(20, 100)) + "\n").encode()))
    (tmp_path / "b.json.bz2").write_bytes(bz2.compress(json.dumps(
        [json.loads(x) for x in alpaca_lines(10, 200)]).encode()))
    inputs = sorted(tmp_path.glob("*.*"))
    code, err = run_cli(capsys, inputs, tmp_path / "out")
    assert code == 0, err
    assert manifest_of(tmp_path / "out")["conservation"]["records_in"] == 60
    assert "invalid UTF-8" not in err


def test_boms_are_handled_in_every_text_format(tmp_path: Path, capsys) -> None:
    rows = [json.loads(x) for x in alpaca_lines(5)]
    bom = codecs.BOM_UTF8
    (tmp_path / "a.json").write_bytes(bom + json.dumps(rows).encode())
    (tmp_path / "b.jsonl").write_bytes(bom + ("\n".join(alpaca_lines(5, 10)) + "\n").encode())
    with (tmp_path / "c.csv").open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "output"])
        w.writerows([[f"CSV question {i}?", f"CSV answer {i}."] for i in range(5)])
    (tmp_path / "d.jsonl").write_bytes(("\n".join(alpaca_lines(5, 20)) + "\n").encode("utf-16"))
    code, err = run_cli(capsys, sorted(tmp_path.glob("*.*")), tmp_path / "out")
    assert code == 0, err
    m = manifest_of(tmp_path / "out")
    assert m["conservation"] == {"records_in": 20, "records_out": 20, "rejected": 0,
                                 "deadletter": 0, "holds": True}


def test_a_deeply_nested_file_is_refused_clearly(tmp_path: Path, capsys) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 50)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000 + "]" * 10_000)
    code, err = run_cli(capsys, [good, deep], tmp_path / "out")
    assert code == 3 and f"{deep}: unreadable file: malformed JSON file" in err
    assert "RecursionError" not in err and "Traceback" not in err


def test_a_deeply_nested_jsonl_row_is_one_dead_letter_row(tmp_path: Path, capsys) -> None:
    """The columnar path: pyarrow recursed and the run died with RecursionError."""
    path = tmp_path / "rows.jsonl"
    lines = alpaca_lines(99)
    lines.insert(40, '{"instruction": "x", "output": "y", "extra": ' + "[" * 10_000
                 + "]" * 10_000 + "}")
    path.write_text("\n".join(lines) + "\n")
    code, err = run_cli(capsys, [path], tmp_path / "out")
    assert code == 0, err
    c = manifest_of(tmp_path / "out")["conservation"]
    assert (c["records_in"], c["records_out"], c["deadletter"]) == (100, 99, 1)


def test_a_csv_field_over_128_kib_is_read(tmp_path: Path, capsys) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "output"])
        w.writerow(["Summarize this long text?", "word " * 60_000])  # 300 KB field
        w.writerow(["Short question?", "Short answer."])
    code, err = run_cli(capsys, [path], tmp_path / "out")
    assert code == 0, err
    assert manifest_of(tmp_path / "out")["conservation"]["records_out"] == 2


def test_an_empty_json_file_says_so(tmp_path: Path, capsys) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 10)
    empty = tmp_path / "empty.json"
    empty.write_text("")
    code, err = run_cli(capsys, [good, empty], tmp_path / "out")
    assert code == 3 and f"{empty}: unreadable file: the file is empty" in err


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
