"""Publishing on an object store (pipeline/outputs/publish.py) against a moto S3 server: the published
names mirror exactly one run, `CURRENT` names it, a publish killed half-way leaves the pointer
on the previous complete run and the top-level copy marked incomplete (no manifest.json), the
lock object refuses a second run, and stale run directories are removed."""

from __future__ import annotations

import json
import os
import socket

import pytest
from apache_beam.io.filesystems import FileSystems

import pipeline.outputs.publish as pub
from transforms.io.files import exists, list_files, read_text


def _stage(s3, out: str, run_id: str, shards: int, text: str) -> str:
    """A finished run directory as the pipeline leaves it."""
    run = f"{out}/.runs/{run_id}"
    for i in range(shards):
        s3.put(f"{run}/sft/train-{i:05d}-of-{shards:05d}.parquet", f"{text}{i}")
    s3.put(f"{run}/deadletter/deadletter.jsonl", "")
    s3.put(f"{run}/README.md", f"card {text}")
    s3.put(f"{run}/manifest.json", json.dumps({"run": text}))
    return run


def _published(s3, out: str) -> dict[str, str]:
    """Top-level published files (outside .runs/, the pointer and the lock) → their text."""
    files = [f for f in s3.keys(out) if "/.runs/" not in f and not f.endswith(f"/{pub.POINTER}")]
    return {f[len(out) + 1:]: s3.get(f) for f in files}


def test_publish_mirrors_one_run_and_a_rerun_replaces_it(s3) -> None:
    out = s3.url("out")
    first = _stage(s3, out, "r1", 3, "a")
    pub.publish(out, first)
    assert pub.current_run(out) == first and pub.published_dir(out) == first
    assert read_text(f"{out}/CURRENT").strip() == "r1"
    assert _published(s3, out) == {
        **{f"sft/train-{i:05d}-of-00003.parquet": f"a{i}" for i in range(3)},
        "deadletter/deadletter.jsonl": "", "README.md": "card a",
        "manifest.json": s3.get(f"{first}/manifest.json")}
    second = _stage(s3, out, "r2", 2, "b")
    pub.publish(out, second)
    files = _published(s3, out)
    assert sorted(f for f in files if f.startswith("sft/")) == [
        "sft/train-00000-of-00002.parquet", "sft/train-00001-of-00002.parquet"]  # old shards gone
    assert files["README.md"] == "card b" and json.loads(files["manifest.json"]) == {"run": "b"}
    assert pub.published_dir(out + "/") == second


def test_a_publish_killed_half_way_keeps_the_previous_run_readable(
        s3, monkeypatch: pytest.MonkeyPatch) -> None:
    out = s3.url("out")
    first = _stage(s3, out, "r1", 2, "a")
    pub.publish(out, first)
    second = _stage(s3, out, "r2", 2, "b")
    real = FileSystems.copy

    def dying(sources: list[str], destinations: list[str]) -> None:  # dies after two files
        real(sources[:2], destinations[:2])
        raise OSError("connection reset (injected)")

    monkeypatch.setattr(FileSystems, "copy", dying)
    with pytest.raises(OSError, match="injected"):
        pub.publish(out, second)
    monkeypatch.setattr(FileSystems, "copy", real)
    assert pub.published_dir(out) == first  # pointer readers: the previous, complete run
    assert not exists(f"{out}/manifest.json")  # the top-level copy says: incomplete
    with pub.run_lock(out):
        assert pub.clean_stale(out) == ["r2"]  # the next run removes the half-published one
    third = _stage(s3, out, "r3", 1, "c")
    pub.publish(out, third)
    assert sorted(_published(s3, out)) == ["README.md", "deadletter/deadletter.jsonl",
                                       "manifest.json", "sft/train-00000-of-00001.parquet"]


def test_the_lock_object_refuses_a_second_run_and_is_released(s3) -> None:
    out = s3.url("out")
    lock = f"{out}/.runs/.lock"
    with pub.run_lock(out):
        assert exists(lock)
        with pytest.raises(pub.PublishError, match="another run is writing"), pub.run_lock(out):
            pass
    assert not exists(lock)
    # a lock left by a dead process on this host is taken over
    s3.put(lock, json.dumps({"host": socket.gethostname(), "pid": 2**22 + 7, "token": "x"}))
    with pub.run_lock(out):
        assert json.loads(read_text(lock))["pid"] == os.getpid()
    # one left by another host is not: the error names the object to delete
    s3.put(lock, json.dumps({"host": "elsewhere", "pid": 1, "token": "y"}))
    with pytest.raises(pub.PublishError, match=rf"delete {out}/\.runs/\.lock"), \
            pub.run_lock(out):
        pass


def test_new_run_dirs_are_fresh_and_stale_ones_are_cleaned(s3) -> None:
    out = s3.url("out")
    kept = _stage(s3, out, "r1", 1, "a")
    pub.publish(out, kept)
    _stage(s3, out, "r0", 1, "old")
    run = pub.new_run_dir(out)
    assert run.startswith(f"{out}/.runs/") and not list_files(f"{run}/**")
    with pub.run_lock(out):
        assert pub.clean_stale(out) == ["r0"]
    assert exists(f"{kept}/manifest.json") and not list_files(f"{out}/.runs/r0/**")


def test_a_release_killed_half_way_on_s3_is_cleaned_and_retried(s3) -> None:
    """Releases on an object store: no rename, so the version folder is written in place with
    its check file last; a folder without it is a killed publish's leftovers."""
    from pipeline.release.check import clean_partial, latest_version, publish_release

    out, releases = s3.url("build"), s3.url("releases")
    s3.put(f"{out}/sft/train-00000-of-00001.parquet", "rows")
    s3.put(f"{out}/manifest.json", json.dumps({"config_hash": "h"}))
    s3.put(f"{releases}/v1/sft/train-00000-of-00009.parquet", "half")  # killed: no check file
    s3.put(f"{releases}/v0/sft/x.parquet", "half")
    assert clean_partial(releases) == [f"{releases}/v0", f"{releases}/v1"]
    s3.put(f"{releases}/v1/sft/train-00000-of-00009.parquet", "half")
    check = {"config_hash": "h", "rows": {"sft": {"train": 1}}}
    assert publish_release(out, releases, "v1", check) == f"{releases}/v1"
    assert [k.removeprefix(f"{releases}/") for k in s3.keys(releases)] == [
        "LATEST", "releases.json", "v1/manifest.json", "v1/release_check.json",
        "v1/sft/train-00000-of-00001.parquet"]
    assert latest_version(releases) == "v1"
    assert publish_release(out, releases, "v1", check) == f"{releases}/v1"  # same run: no-op
    s3.put(f"{out}/manifest.json", json.dumps({"config_hash": "h2"}))  # another run
    with pytest.raises(Exception, match="immutable"):
        publish_release(out, releases, "v1", {**check, "config_hash": "h2"})
