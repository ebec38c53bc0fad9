"""Atomic outputs: every run writes a complete directory, published by one pointer switch.

Layout of an output directory:

    <out>/.runs/<run-id>/   one run's complete outputs (sft/, manifest.json, deadletter/, ...)
    <out>/current           symlink → .runs/<run-id> of the published run, switched in one
                            `os.replace` (atomic on POSIX), so a reader sees the old run or the
                            new one, never a mix
    <out>/sft, manifest.json, ...   symlinks → current/<name>: the paths users and `datasets`
                            read (`load_dataset("parquet", data_dir=<out>/sft)`); they never change
    <out>/.runs/.lock       held (flock) by the run writing into <out>: a second run is refused

A failed run leaves `current` (and so the previous outputs, dead letter included) untouched;
its own directory stays under .runs/ until the next run starts, which removes every run
directory except the published one. A reader that wants a stable snapshot resolves `current`
once (`published_dir`). On object stores the same design holds with a pointer file in place
of the symlink (issue #22).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

RUNS = ".runs"
CURRENT = "current"
LOCK = ".lock"
PUBLISHED = ("sft", "curated", "preference", "preference_steps", "jsonl", "rejected", "deadletter", "README.md",
             "manifest.json", "report.html")


class PublishError(Exception):
    """The output directory cannot be used (not a directory, or another run holds it)."""


def prepare_out(out: Path) -> Path:
    """Make `<out>/.runs`; a clear error when `out` is a file."""
    if out.exists() and not out.is_dir():
        raise PublishError(f"output directory {out} exists and is not a directory")
    runs = out / RUNS
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PublishError(f"cannot create the output directory {out}: {e}") from e
    return runs


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold `<out>/.runs/.lock` for the whole run; refuse when another run holds it."""
    runs = prepare_out(out)
    with open(runs / LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublishError(f"another run is writing into {out} (lock {runs / LOCK}); "
                               "wait for it or choose another output directory") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_run(out: Path) -> Path | None:
    """The published run directory of `out`, or None."""
    link = out / CURRENT
    return (out / os.readlink(link)).resolve() if link.is_symlink() else None


def published_dir(out: str | Path) -> Path:
    """The directory to read one consistent snapshot from: the published run (resolved once),
    or `out` itself for outputs written before runs were published by pointer."""
    out = Path(out)
    return current_run(out) or out


def clean_stale(out: Path) -> list[str]:
    """Remove run directories other than the published one (failed, killed or superseded
    runs: stale staging). Only call while holding the lock."""
    keep = current_run(out)
    removed = []
    for d in sorted((out / RUNS).iterdir()):
        if d.is_dir() and d.resolve() != keep:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
    shutil.rmtree(out / ".staging", ignore_errors=True)  # the old single staging directory
    for tmp in out.glob(f".{CURRENT}.*.tmp"):  # a switch killed half-way
        tmp.unlink()
    return removed


def new_run_dir(out: Path) -> Path:
    """A fresh, empty `.runs/<run-id>` (id: UTC time and process id)."""
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    path = out / RUNS / run_id
    n = 0
    while path.exists():
        n += 1
        path = out / RUNS / f"{run_id}.{n}"
    path.mkdir()
    return path


def _ensure_links(out: Path) -> None:
    """`<out>/<name>` → current/<name> for every published name (replacing files or
    directories an older version wrote there)."""
    for name in PUBLISHED:
        link = out / name
        target = f"{CURRENT}/{name}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.is_dir():
            shutil.rmtree(link)
        os.symlink(target, link)


def publish(out: Path, run_dir: Path) -> None:
    """Make `run_dir` the published run in one atomic step."""
    _ensure_links(out)
    tmp = out / f".{CURRENT}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(f"{RUNS}/{run_dir.name}", tmp)
    os.replace(tmp, out / CURRENT)
