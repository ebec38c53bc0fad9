"""Issue #13 item 5: a run is published in one step; a failed run leaves the previous outputs
(dead letter included) untouched and says where its own dead letter is; a lock refuses a
second run into the same directory; stale staging is cleaned; a run that breaks the
conservation law is never published."""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
from datasets import load_dataset

from tests.reliability._helpers import run_cli, write_jsonl


def _digest(f: Path) -> str:
    """sha256 of a published file; the manifest without its wall-clock `timings`, and the
    report (which shows them) only as present: the rest is byte-identical across reruns."""
    if f.name == "report.html":
        return "present"
    data = f.read_bytes()
    if f.name == "manifest.json":
        manifest = json.loads(data)
        manifest.pop("timings", None)
        data = json.dumps(manifest, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def snapshot(out: Path) -> dict[str, str]:
    """Digest of every file reachable from `out`'s published names (following links)."""
    files = {}
    for name in ("sft", "preference", "rejected", "deadletter", "manifest.json", "README.md",
                 "report.html"):
        p = out / name
        for f in sorted(p.rglob("*")) if p.is_dir() else [p] if p.exists() else []:
            if f.is_file():
                files[f.relative_to(out).as_posix()] = _digest(f)
    return files


def test_a_failed_run_leaves_the_previous_outputs_and_dead_letter_untouched(
        tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    good = tmp_path / "good.jsonl"
    write_jsonl(good, 20)
    with good.open("a") as f:
        f.write("{broken\n")  # one dead-letter row in the good run
    code, err = run_cli(capsys, [good], out)
    assert code == 0, err
    before = snapshot(out)
    assert (out / "deadletter" / "deadletter.jsonl").read_text().count("\n") == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n" * 10 + "\n".join(write_jsonl(tmp_path / "x.jsonl", 2)
                                             .read_text().splitlines()) + "\n")
    code, err = run_cli(capsys, [bad], out)
    assert code == 3
    assert snapshot(out) == before  # dead letter included
    own = Path(err.rsplit("this run's dead letter: ", 1)[1].strip())
    assert own.exists() and own.read_text().count("\n") == 10
    assert ".runs" in own.parts


def test_a_run_breaking_the_conservation_law_is_not_published(tmp_path: Path, capsys,
                                                              monkeypatch) -> None:
    """Fault injection: the manifest is made to miscount by one record."""
    import pipeline.finished as finished

    real = finished.build_manifest

    def miscounted(cfg, info, out_dir):
        m = real(cfg, info, out_dir)
        c = m["conservation"]
        c["records_in"] += 1
        c["holds"] = False
        return m

    out = tmp_path / "out"
    src = write_jsonl(tmp_path / "in.jsonl", 10)
    assert run_cli(capsys, [src], out)[0] == 0
    before = snapshot(out)
    monkeypatch.setattr(finished, "build_manifest", miscounted)
    code, err = run_cli(capsys, [src], out)
    assert code == 3 and "conservation law violated" in err
    assert snapshot(out) == before


def test_a_second_run_into_the_same_directory_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    src = write_jsonl(tmp_path / "in.jsonl", 5)
    (out / ".runs").mkdir(parents=True)
    with open(out / ".runs" / ".lock", "a+") as held:  # another run holds the lock
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, err = run_cli(capsys, [src], out)
    assert code == 3 and "another run is writing into" in err
    assert run_cli(capsys, [src], out)[0] == 0  # released: runs


def test_stale_staging_is_cleaned_and_the_layout_reads_as_before(tmp_path: Path, capsys
                                                                  ) -> None:
    out = tmp_path / "out"
    src = write_jsonl(tmp_path / "in.jsonl", 12)
    (out / ".runs" / "20200101T000000Z-1" / "sft").mkdir(parents=True)  # a killed run
    (out / ".staging" / "sft").mkdir(parents=True)  # the old staging directory
    (out / "sft").mkdir()  # outputs of the old layout
    (out / "sft" / "train-00000-of-00009.parquet").write_bytes(b"old")
    assert run_cli(capsys, [src], out)[0] == 2  # not written by this layout: refused ...
    assert run_cli(capsys, [src], out, "--take-over")[0] == 0  # ... unless taken over
    assert [p.read_bytes() for p in (out / ".displaced").rglob("*.parquet")] == [b"old"]
    assert run_cli(capsys, [src], out)[0] == 0
    runs = [p.name for p in (out / ".runs").iterdir() if p.is_dir()]
    assert len(runs) == 2 and "20200101T000000Z-1" not in runs  # published + previous
    assert not (out / ".staging").exists()
    assert sorted(p.name for p in (out / "sft").iterdir()) == ["train-00000-of-00001.parquet"]
    ds = load_dataset("parquet", data_dir=str(out / "sft"), split="train")
    assert len(ds) == 12 == pq.read_table(out / "sft").num_rows
