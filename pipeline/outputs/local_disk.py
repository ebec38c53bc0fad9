"""The local-disk half of publishing (pipeline/outputs/publish.py): a `flock`ed lock file, symlinks and
one `os.replace`, which object stores do not have. Everything else in pipeline/ reads and writes
through Beam's FileSystems; tests/test_no_local_paths.py allows this file by name.

    <out>/.runs/<run-id>/   one run's complete outputs
    <out>/current           symlink → .runs/<run-id>, switched in one `os.replace` (atomic on
                            POSIX): a reader sees the old run or the new one, never a mix
    <out>/sft, ...          symlinks → current/<name>, fixed
    <out>/.runs/.lock       held (flock) by the run writing into <out>
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the run lock."""


def absolute(path: str) -> str:
    """The absolute, symlink-free form of a local path (workers may run in another directory)."""
    return os.path.realpath(path.removeprefix("file://"))


def prepare_out(out: str, runs: str) -> str:
    """Make `<out>/<runs>`; ValueError (with the reason) when `out` is a file or cannot be made."""
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"output directory {out} exists and is not a directory")
    try:
        (root / runs).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot create the output directory {out}: {e}") from e
    return str(root / runs)


@contextlib.contextmanager
def flock(path: str) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing); LockHeld when another has it."""
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(path) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def current_run(out: str, current: str) -> str | None:
    """The directory `<out>/<current>` points to (resolved), or None."""
    link = Path(out) / current
    return str((link.parent / os.readlink(link)).resolve()) if link.is_symlink() else None


def run_dirs(runs: str) -> list[str]:
    """The run directories under `runs`, sorted (resolved paths)."""
    return [str(d.resolve()) for d in sorted(Path(runs).iterdir()) if d.is_dir()]


def remove_leftovers(out: str, current: str) -> None:
    """The old single staging directory and pointer switches killed half-way."""
    shutil.rmtree(Path(out) / ".staging", ignore_errors=True)
    for tmp in Path(out).glob(f".{current}.*.tmp"):
        tmp.unlink()


def make_dir(path: str) -> bool:
    """Create the directory `path`; False when it exists already."""
    try:
        Path(path).mkdir()
    except FileExistsError:
        return False
    return True


def foreign(out: str, names: tuple[str, ...], current: str, own: tuple[str, ...]) -> list[str]:
    """Entries of `out` Refinery did not write: anything but the `own` names, the links
    `<name>` → <current>/<name>, the link `<current>` itself and pointer switches killed
    half-way (sorted names)."""
    root = Path(out)
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        name = entry.name
        if name in own or (name.startswith(f".{current}.") and name.endswith(".tmp")):
            continue
        if entry.is_symlink() and (name == current or (
                name in names and os.readlink(entry) == f"{current}/{name}")):
            continue
        found.append(name)
    return sorted(found)


def displace(out: str, names: list[str], into: str) -> list[str]:
    """Move `<out>/<name>` for each name into `<out>/<into>/<time>/` (a take-over keeps the
    user's files); returns the new paths."""
    import time

    dest = Path(out) / into / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest.mkdir(parents=True, exist_ok=True)
    moved = []
    for name in names:
        target = dest / name
        os.replace(Path(out) / name, target)
        moved.append(str(target))
    return moved


def ensure_links(out: str, names: tuple[str, ...], current: str) -> None:
    """`<out>/<name>` → <current>/<name> for every name. Only links are replaced: a file or
    folder under a published name was not written by Refinery and is never deleted
    (FileExistsError; the run's take-over check moves such files aside first)."""
    for name in names:
        link = Path(out) / name
        target = f"{current}/{name}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise FileExistsError(f"{link} is not Refinery's (not a link into {current}/); "
                                  "move it away or rerun with --take-over")
        os.symlink(target, link)


def present(run_dir: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """The `names` that exist in `run_dir` (what a run wrote)."""
    return tuple(n for n in names if (Path(run_dir) / n).exists())


def remove_links(out: str, names: tuple[str, ...], current: str) -> None:
    """Remove the links `<out>/<name>` → <current>/<name> of `names` (names the published run
    does not have); anything else under those names is left alone."""
    for name in names:
        link = Path(out) / name
        if link.is_symlink() and os.readlink(link) == f"{current}/{name}":
            link.unlink()


def switch(out: str, current: str, target: str) -> None:
    """Point `<out>/<current>` at `target` (relative to `out`) in one atomic rename."""
    tmp = Path(out) / f".{current}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, Path(out) / current)
