"""The portable execution path (Beam's Job API + an SDK worker pool over the Fn API: what Flink,
Spark and Dataflow v2 run) gives the same shards as the DirectRunner for the curation path."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main

ROOT = Path(__file__).resolve().parents[2]
# semantic dedup (the embedding model on the workers) is left out: the test is about the runner
CURATION_ONLY = [a for s in ("rise", "tag_instruct", "compound")
                 for a in ("--set", f"stages.{s}.enabled=false")] + [
                     "--set", "stages.dedup.semantic=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def worker_pool():
    """A Beam SDK worker pool on 127.0.0.1; it starts workers as `python`, so the venv's
    interpreter comes first on PATH."""
    port = _free_port()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                             f"--service_port={port}"], env=env, cwd="/",
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.3)
        else:
            pytest.fail("the worker pool did not start")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _shards(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {s["path"]: s["sha256"] for s in manifest["shards"]}


@pytest.mark.slow
def test_curation_on_the_portable_runner_matches_the_direct_runner(
        worker_pool: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # relative input paths: workers (started in /) still find them
    direct, portable = tmp_path / "direct", tmp_path / "portable"
    assert main(["run", "configs/demo.yaml", "--out", str(direct), *CURATION_ONLY]) == 0
    assert main(["run", "configs/demo.yaml", "--out", str(portable), *CURATION_ONLY,
                 "--runner", "PortableRunner", "--job_endpoint=embed",
                 "--environment_type=EXTERNAL",
                 f"--environment_config=127.0.0.1:{worker_pool}"]) == 0
    assert _shards(portable) == _shards(direct) and _shards(direct)
    for name in ("rejected", "deadletter"):
        assert sorted(p.name for p in (portable / name).iterdir()) == sorted(
            p.name for p in (direct / name).iterdir())
    manifest = json.loads((portable / "manifest.json").read_text())
    assert manifest["conservation"]["holds"]
    assert {"quality", "dedup", "decontam"} <= set(manifest["reports"])
