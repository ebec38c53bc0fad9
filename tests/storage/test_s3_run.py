"""Issue #22: a whole run (and a release of it) on an object store. `refinery run` of the curation path with
`--input s3://… --out s3://…` against an S3 server on 127.0.0.1 (moto's server mode) puts
shards, manifest, card and report there; the inputs' checksums are the uploaded files'; the manifest's sha256 of every shard matches the object's bytes;
`check_release` passes on the s3 output and `refinery release publish` makes it `v1` in an s3
releases folder; `inspect` and `report` read it; a second run with
another shard count republishes (the old shards are gone, `CURRENT` names the new run).

What is checked here is the storage: the first run keeps the curation stages that write
reports but not semantic dedup (embeddings touch no file; the s3 round trip of the release
index with embeddings is tests/io/test_io_s3_data_paths.py's), and the republishing run
skips the stages altogether."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.outputs.publish import published_dir
from pipeline.release.check import check_release
from transforms.io.files import exists, list_files, read_bytes, read_json, read_text

ROOT = Path(__file__).resolve().parents[2]
CURATION_ONLY = [a for s in ("rise", "tag_instruct", "compound")
                 for a in ("--set", f"stages.{s}.enabled=false")]
NO_SEMANTIC = ["--set", "stages.dedup.semantic=false"]
NO_STAGES = [a for s in ("quality", "dedup", "decontam")
             for a in ("--set", f"stages.{s}.enabled=false")]


def _run(s3, out: str, *extra: str) -> int:
    return main(["run", "configs/demo.yaml", "--out", out, *CURATION_ONLY, *extra, *s3.beam_args])


def _check_published(out: str) -> dict:
    manifest = read_json(f"{out}/manifest.json")
    run = published_dir(out)
    assert run.startswith(f"{out}/.runs/") and read_json(f"{run}/manifest.json") == manifest
    assert read_text(f"{out}/CURRENT").strip() == run.rsplit("/", 1)[1]
    for shard in manifest["shards"]:  # the published copy and the run's own: the same bytes
        for base in (out, run):
            data = read_bytes(f"{base}/{shard['path']}")
            assert hashlib.sha256(data).hexdigest() == shard["sha256"], shard["path"]
    shards = {s["path"] for s in manifest["shards"] if s["format"] == "parquet"}
    for dataset in {p.split("/", 1)[0] for p in shards}:
        assert {f[len(out) + 1:] for f in list_files(f"{out}/{dataset}/*.parquet")} == {
            p for p in shards if p.startswith(dataset + "/")}
    for name in ("README.md", "report.html", "deadletter/deadletter.jsonl"):
        assert exists(f"{out}/{name}"), name
    assert "load_dataset" in read_text(f"{out}/README.md")
    assert not exists(f"{out}/.runs/.lock")
    return manifest


@pytest.mark.slow
def test_a_run_writes_checks_and_republishes_on_s3(s3, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(ROOT)  # the demo config's benchmarks are relative paths
    inputs = {}
    for name in ("alpaca.jsonl", "dolly.jsonl", "preference.jsonl"):
        data = (ROOT / "data" / name).read_bytes()
        s3.put(s3.url(f"in/{name}"), data)
        inputs[s3.url(f"in/{name}")] = hashlib.sha256(data).hexdigest()
    out = s3.url("curated/out")
    assert _run(s3, out, "--set", "emit.num_shards=3", *NO_SEMANTIC,
                *[a for url in inputs for a in ("--input", url)]) == 0, capsys.readouterr().err
    first = _check_published(out)
    assert {i["path"]: i["sha256"] for i in first["inputs"]} == inputs
    assert first["conservation"]["holds"] and {"quality", "dedup", "decontam"} <= set(
        first["reports"])
    assert {s["path"] for s in first["shards"]} >= {"sft/train-00002-of-00003.parquet"}
    summary = check_release(out)
    assert summary["rows"]["sft"]["train"] == sum(
        s["rows"] for s in first["shards"] if s["dataset"] == "sft" and s["format"] == "parquet")

    releases = s3.url("releases")
    capsys.readouterr()
    assert main(["release", "publish", out, "--releases", releases, "--version", "v1", "--json",
                 *s3.beam_args]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["published"] == f"{releases}/v1"
    assert read_text(f"{releases}/LATEST") == "v1\n"
    assert read_json(f"{releases}/v1/release_check.json")["rows"] == summary["rows"]
    assert read_bytes(f"{releases}/v1/{first['shards'][0]['path']}") == read_bytes(
        f"{out}/{first['shards'][0]['path']}")
    assert "## Release" in read_text(f"{releases}/v1/README.md")
    assert not list_files(f"{releases}/v1/.runs/**")

    assert main(["inspect", out, "--dataset", "rejected", "-n", "2", *s3.beam_args]) == 0
    assert "reason:" in capsys.readouterr().out
    assert main(["report", out, *s3.beam_args]) == 0
    assert "<html>" in read_text(f"{out}/report.html")

    first_run = published_dir(out)
    assert _run(s3, out, "--set", "emit.num_shards=2", *NO_STAGES, "--input", s3.url("in/alpaca.jsonl"),
                "--input", s3.url("in/dolly.jsonl")) == 0
    second = _check_published(out)
    assert published_dir(out) != first_run and second["config_hash"] != first["config_hash"]
    assert not list_files(f"{out}/sft/*-of-00003.parquet")  # the first run's shards are gone
    assert exists(f"{first_run}/manifest.json")  # kept for readers until the next run starts
    assert check_release(out)["config_hash"] == second["config_hash"]
    runs = {f.split("/.runs/", 1)[1].split("/", 1)[0] for f in list_files(f"{out}/.runs/**")}
    assert len(runs) == 2
    assert json.loads(read_text(f"{out}/manifest.json")) == second
