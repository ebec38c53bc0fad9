"""Issue #31 items 3, 4 and 8 and special files: an input is identified by its resolved path
(named twice, it is read once, with a warning); the manifest's checksum is of the bytes read
and a file that changes while read fails the run clearly; `on_unreadable_file: skip` means the
file never stops the run; pipes and sockets in an input folder are never opened."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.outputs.storage as storage
import transforms.io.files as files
import transforms.io.read_sources as read_sources
from tests.reliability._helpers import (
    OFF,
    counts_from_files,
    manifest_of,
    run_cli,
    run_dir_of,
    write_jsonl,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_same_file_named_twice_is_read_once(tmp_path: Path, capsys, caplog) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", 40)
    (tmp_path / "link.jsonl").symlink_to(a)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        code, err = run_cli(capsys, [a, a, f"{tmp_path}/./link.jsonl"], out)
    assert code == 0, err
    m = manifest_of(out)
    assert m["conservation"]["records_in"] == 40 and m["conservation"]["records_out"] == 40
    assert [i["rows_read"] for i in m["inputs"]] == [40]
    assert caplog.text.count("read once") == 2


def test_a_file_appended_to_while_read_fails_the_run_and_the_checksum_is_of_the_bytes_read(
        tmp_path: Path, capsys, monkeypatch) -> None:
    src = write_jsonl(tmp_path / "growing.jsonl", 200)
    read_part = src.read_bytes()
    real = read_sources.plan_sources

    def plan_then_append(sources, ingest):  # fault injection: a writer appends after planning
        splits = real(sources, ingest)
        with src.open("a") as f:
            f.write("\n".join(json.dumps({"instruction": f"Late {i}?", "output": "x"})
                              for i in range(100)) + "\n")
        return splits

    monkeypatch.setattr(read_sources, "plan_sources", plan_then_append)
    out = tmp_path / "out"
    code, err = run_cli(capsys, [src], out)
    assert code == 3
    assert f"{src} changed while the run read it" in err
    assert not (out / "manifest.json").exists()  # nothing published
    kept = json.loads((run_dir_of(out) / "manifest.json").read_text())
    [entry] = kept["inputs"]
    assert entry["rows_read"] == 200
    assert entry["sha256"] == hashlib.sha256(read_part).hexdigest()
    assert entry["changed_while_read"]["now_bytes"] > entry["changed_while_read"]["planned_bytes"]


def test_skip_never_stops_the_run_on_a_file_the_process_may_not_read(
        tmp_path: Path, capsys, monkeypatch) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", 30)
    secret = write_jsonl(tmp_path / "private.jsonl", 10)
    real = files.open_read

    def guarded(path: str):  # fault injection: what a file without read permission does
        if str(path).endswith("private.jsonl"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(files, "open_read", guarded)
    monkeypatch.setattr(storage, "open_read", guarded)
    out = tmp_path / "out"
    code, err = run_cli(capsys, [good, secret], out, "--set", "ingest.on_unreadable_file=skip")
    assert code == 0, err
    m = manifest_of(out)
    assert m["unreadable_files"] == [str(secret)]
    assert [i["sha256"] for i in m["inputs"] if i["path"] == str(secret)] == [None]
    assert m["conservation"]["records_in"] == 30 and m["conservation"]["holds"]
    assert counts_from_files(run_dir_of(out))["file_errors"] == 1


def _cli(args: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_pipes_and_sockets_in_an_input_folder_are_never_waited_on(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    write_jsonl(folder / "good.jsonl", 12)
    os.mkfifo(folder / "pipe.jsonl")  # nobody ever writes to it: opening it would block
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(folder / "sock.jsonl"))
    try:
        failed = _cli(["ingest", str(folder), "--out", str(tmp_path / "a"), *OFF])
        assert failed.returncode == 3, failed.stderr
        assert "pipe.jsonl is a named pipe, not a regular file" in failed.stderr
        skipped = _cli(["ingest", str(folder), "--out", str(tmp_path / "b"), *OFF,
                        "--set", "ingest.on_unreadable_file=skip"])
        assert skipped.returncode == 0, skipped.stderr
    finally:
        sock.close()
    m = manifest_of(tmp_path / "b")
    assert m["unreadable_files"] == [str(folder / "pipe.jsonl"), str(folder / "sock.jsonl")]
    assert m["conservation"]["records_in"] == 12 and m["conservation"]["holds"]
