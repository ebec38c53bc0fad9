"""Issue #13 kill test: `kill -9` at random points of a run, including in the middle of
publishing, leaves either the previous outputs or the new ones, never a mix; a rerun then gives
the same bytes as a clean run. Small inputs, stages off. Only the killed runs are processes of
their own; the clean runs around them run the CLI in this process."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability._helpers import OFF, run_cli, write_jsonl
from tests.reliability.test_publish import snapshot

ROOT = Path(__file__).resolve().parents[2]
EMIT = ["--set", "emit.num_shards=3", "--set", "emit.jsonl=true"]
# fault injection: the child pauses inside publish (links in place, pointer not yet switched);
# it says READY once its imports are done, so a random kill lands in the run, not in Python's
# start-up
CHILD = """
import sys, time
import pipeline.outputs.publish as pub
import pipeline.run
real = pub._ensure_links
def paused(out, names):
    real(out, names)
    print("PUBLISHING", flush=True)
    time.sleep(float(sys.argv[1]))
pub._ensure_links = paused
from pipeline.cli import main
print("READY", flush=True)
raise SystemExit(main(sys.argv[2:]))
"""


def start(src: Path, out: Path, pause: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(pause), "ingest", str(src), "--out", str(out), *OFF,
         *EMIT],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def run(capsys, src: Path, out: Path) -> dict[str, str]:
    """A clean run (in this process); the snapshot of what it published."""
    code, err = run_cli(capsys, [src], out, *EMIT)
    assert code == 0, err
    return snapshot(out)


@pytest.mark.slow
def test_kill_9_leaves_old_or_new_outputs_and_a_rerun_is_byte_identical(tmp_path: Path,
                                                                         capsys) -> None:
    old_src = write_jsonl(tmp_path / "old.jsonl", 30)
    new_src = write_jsonl(tmp_path / "new.jsonl", 45, start=1000)
    out = tmp_path / "out"
    t0 = time.monotonic()
    new = run(capsys, new_src, out)  # a clean run of the new input: the reference bytes
    duration = time.monotonic() - t0
    old = run(capsys, old_src, out)
    assert old != new and len(new) >= 8
    rng = random.Random(13)
    for attempt in range(4):
        during_publish = attempt % 2 == 1
        proc = start(new_src, out, pause=2.0 if during_publish else 0.0)
        assert proc.stdout.readline().strip() == "READY"
        if during_publish:
            assert proc.stdout.readline().strip() == "PUBLISHING"
            time.sleep(rng.uniform(0.0, 1.5))
        else:
            time.sleep(rng.uniform(0.0, duration))
        proc.kill()  # SIGKILL
        proc.wait()
        state = snapshot(out)
        assert state in (old, new), f"attempt {attempt}: a mix of two runs"
        if during_publish:
            assert state == old
        if state == new:
            assert run(capsys, old_src, out) == old
    assert run(capsys, new_src, out) == new  # same bytes as the clean run
    assert len([p for p in (out / ".runs").iterdir() if p.is_dir()]) == 2  # stale ones cleaned
