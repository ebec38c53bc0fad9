"""Issue #31 item 7 and two held-back areas: a release publish is idempotent and resumable
after a failure at any step (a fault injected at each step, then the same publish rerun), a
publish killed with -9 is finished by the rerun and its leftovers cleaned, and version names
that mean the same number (v1, v01, 1) are one version."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.release.check as release
from pipeline.cli import main as cli_main
from tests.reliability._helpers import run_cli, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def _build(tmp_path: Path, capsys, n: int = 6, name: str = "build") -> Path:
    src = write_jsonl(tmp_path / f"{name}.jsonl", n)
    out = tmp_path / name
    assert run_cli(capsys, [src], out)[0] == 0
    return out


def _publish(out: Path, releases: Path, version: str, capsys) -> tuple[int, str]:
    code = cli_main(["release", "publish", str(out), "--releases", str(releases),
                     "--version", version])
    return code, capsys.readouterr().err


def _state(releases: Path) -> dict:
    """What readers see, without times: listed versions, LATEST, folders and leftovers."""
    index = json.loads((releases / "releases.json").read_text())
    return {"listed": [(r["version"], r["rows"]) for r in index],
            "latest": (releases / "LATEST").read_text().strip(),
            "entries": sorted(p.name for p in releases.iterdir()),
            "check_file": sorted(p.name for p in releases.glob("v*/release_check.json"))}


def _disk_full(*_a, **_k):
    raise OSError(errno.ENOSPC, "No space left on device")


def _fail_on(monkeypatch, step: str) -> None:
    """Fault injection at one step of publish_release: the copy, the rename of the finished
    folder into place, the write of releases.json, the write of LATEST."""
    if step == "copy":
        monkeypatch.setattr(release, "_copy", _disk_full)
    elif step == "rename":
        real = release.FileSystems.rename

        def rename(src, dst):
            if any(d.endswith("/v1") for d in dst):
                _disk_full()
            return real(src, dst)

        monkeypatch.setattr(release.FileSystems, "rename", staticmethod(rename))
    else:
        name = release.INDEX if step == "index" else release.LATEST
        real_write = release._write_whole

        def write(path: str, text: str) -> None:
            if path.endswith("/" + name):
                _disk_full()
            real_write(path, text)

        monkeypatch.setattr(release, "_write_whole", write)


@pytest.mark.parametrize("step", ["copy", "rename", "index", "latest"])
def test_a_publish_failed_at_any_step_is_finished_by_rerunning_it(
        tmp_path: Path, capsys, monkeypatch, step: str) -> None:
    out = _build(tmp_path, capsys)
    clean = tmp_path / "clean"
    assert _publish(out, clean, "v1", capsys)[0] == 0
    releases = tmp_path / "releases"
    with monkeypatch.context() as m:
        _fail_on(m, step)
        with pytest.raises(OSError):
            _publish(out, releases, "v1", capsys)
    code, err = _publish(out, releases, "v1", capsys)
    assert code == 0, err
    assert _state(releases) == _state(clean)
    code, err = _publish(out, releases, "v1", capsys)  # idempotent: publishing again is a no-op
    assert code == 0, err
    assert _state(releases) == _state(clean)


@pytest.mark.parametrize("step", ["index", "latest"])
def test_an_auto_publish_resumed_is_the_same_version(tmp_path: Path, capsys, monkeypatch,
                                                     step: str) -> None:
    out = _build(tmp_path, capsys)
    releases = tmp_path / "releases"
    with monkeypatch.context() as m:
        _fail_on(m, step)
        with pytest.raises(OSError):
            _publish(out, releases, "auto", capsys)
    assert _publish(out, releases, "auto", capsys)[0] == 0
    assert _state(releases)["listed"][0][0] == "v1" and len(_state(releases)["listed"]) == 1
    other = _build(tmp_path, capsys, n=9, name="other")
    assert _publish(other, releases, "auto", capsys)[0] == 0  # a new run: the next version
    assert [v for v, _ in _state(releases)["listed"]] == ["v1", "v2"]
    assert _state(releases)["latest"] == "v2"


def test_another_run_under_a_published_version_is_still_refused(tmp_path: Path, capsys) -> None:
    out = _build(tmp_path, capsys)
    other = _build(tmp_path, capsys, n=9, name="other")
    releases = tmp_path / "releases"
    assert _publish(out, releases, "v1", capsys)[0] == 0
    code, err = _publish(other, releases, "v1", capsys)
    assert code == 3 and "releases are immutable" in err


def test_version_names_meaning_the_same_number_are_one_version(tmp_path: Path, capsys) -> None:
    out = _build(tmp_path, capsys)
    other = _build(tmp_path, capsys, n=9, name="other")
    releases = tmp_path / "releases"
    assert _publish(out, releases, "v01", capsys)[0] == 0
    code, err = _publish(other, releases, "1", capsys)
    assert code == 3 and "immutable" in err
    assert [r["version"] for r in json.loads((releases / "releases.json").read_text())] == ["v1"]
    assert sorted(p.name for p in releases.iterdir() if p.is_dir()) == ["v1"]
    assert release.validate_version("V2.01") == "v2.1" and release.validate_version("v1.0") == "v1"
    with pytest.raises(release.ReleaseError):
        release.validate_version("v1-final")


# the child pauses at one step of publish_release so the test can kill it there
CHILD = """
import sys, time
import pipeline.release.check as rel
step = sys.argv[1]
def pause():
    print("AT", step, flush=True)
    time.sleep(600)
if step == "copy":
    real_copy = rel._copy
    def copy(src, dst):
        real_copy(src, dst)
        pause()
    rel._copy = copy
else:
    real_write = rel._write_whole
    def write(path, text):
        if path.endswith("/" + rel.INDEX):
            pause()
        real_write(path, text)
    rel._write_whole = write
from pipeline.cli import main
raise SystemExit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("step", ["copy", "index"])
def test_a_publish_killed_with_9_is_finished_by_the_rerun(tmp_path: Path, capsys,
                                                         step: str) -> None:
    out = _build(tmp_path, capsys)
    clean = tmp_path / "clean"
    assert _publish(out, clean, "v1", capsys)[0] == 0
    releases = tmp_path / "releases"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, step, "release", "publish", str(out), "--releases",
         str(releases), "--version", "v1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == f"AT {step}"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    code, err = _publish(out, releases, "v1", capsys)
    assert code == 0, err
    assert _state(releases) == _state(clean)  # leftovers (.tmp- folders) cleaned
