"""Publishing a run: every run writes a complete directory, then becomes the published one.

Layout of an output directory (local disk or an object store):

    <out>/.runs/<run-id>/   one run's complete outputs (sft/, manifest.json, deadletter/, ...),
                            written by the pipeline; never changed afterwards
    <out>/sft, manifest.json, ...   the published names: what users and `datasets` read
                            (`load_dataset("parquet", data_dir=<out>/sft)`)

**Local disk** (pipeline/outputs/local_disk.py): `<out>/current` is a symlink → `.runs/<run-id>`,
switched in one `os.replace` (atomic on POSIX), and the published names are fixed symlinks
into `current/`, so a reader sees the old run or the new one, never a mix. `<out>/.runs/.lock`
is flock'ed by the run writing into `<out>`: a second run is refused.

**Object stores** (`gs://`, `s3://`, ...) have neither symlinks nor an atomic rename of many
objects; a single object's write is atomic. Publishing there is a sequence of copies whose
state a reader can always tell:
  1. delete `<out>/manifest.json`: from here on the top-level copy is marked incomplete;
  2. copy every file of the run to its published name and delete the files under the
     published names that the run does not have (e.g. shards of another shard count);
  3. write `<out>/CURRENT` (the run id, one object): the commit point;
  4. copy `manifest.json` last: the top-level copy is complete again.
So: readers that resolve `CURRENT` first (`published_dir`: report, inspect, release check and
diff, release publish) always read one complete, unchanging run. Readers of the top-level names
read a complete run while `<out>/manifest.json` exists; while it is missing a publish is under
way (or was killed: the next run's publish repairs it). A failed or aborted run never starts
step 1. The lock is an advisory object, `<out>/.runs/.lock` (host, pid, start time): object
stores cannot refuse a concurrent writer atomically, so two drivers started at the same moment
are not excluded; a lock left by a dead process on the same host is taken over, one left by
another host must be deleted by hand (the error says which object).

On both, a failed run leaves the published run untouched; its own directory stays under
`.runs/` until the next run starts, which removes every run directory except the published one
(so the previous run stays readable for whoever resolved the pointer before the switch).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems

from pipeline.outputs import local_disk as local
from pipeline.outputs.layout import (
    DIFF_FILE,
    DIFF_PAGE,
    DIFF_ROWS,
    INDEX_DIR,
    MANIFEST,
    PUBLISHED,
    WORK,
)
from pipeline.outputs.storage import files_under, has_files
from transforms.io.files import (
    copy_file,
    delete_file,
    delete_tree,
    exists,
    is_local,
    join,
    read_bytes,
    read_text,
    write_bytes,
    write_text,
)

RUNS = ".runs"
CURRENT = "current"  # local: the symlink
POINTER = "CURRENT"  # object stores: the object holding the published run id
LOCK = ".lock"


# Refinery's names besides PUBLISHED: run dirs, scratch, review exports, take-over leftovers,
# the release flow's diff and dedup index (pipeline/release/flow.py)
OWN = (RUNS, WORK, ".staging", "reviewed", ".displaced", DIFF_FILE, DIFF_PAGE, DIFF_ROWS,
       INDEX_DIR)
DISPLACED = ".displaced"


class PublishError(Exception):
    """The output directory cannot be used (not a directory, or another run holds it)."""


class OutputRefused(PublishError):
    """A usage error found before the run starts: `--out` is a file, or a folder holding files
    Refinery did not write (and no take-over was asked for)."""


def out_root(out: str) -> str:
    """The canonical form of an output directory: absolute and resolved on local disk (workers
    may run elsewhere), without a trailing slash on object stores."""
    return local.absolute(out) if is_local(out) else out.rstrip("/")


def _rel(path: str, base: str) -> str:
    if not path.startswith(base.rstrip("/") + "/"):
        raise ValueError(f"{path} is not under {base}")
    return path[len(base.rstrip("/")) + 1:]


@contextlib.contextmanager
def run_lock(out: str) -> Iterator[None]:
    """Hold `<out>/.runs/.lock` for the whole run; refuse when another run holds it."""
    if not is_local(out):
        with _object_lock(out):
            yield
        return
    try:
        runs = local.prepare_out(out, RUNS)
    except ValueError as e:
        raise OutputRefused(str(e)) from e
    try:
        with local.flock(join(runs, LOCK)):
            yield
    except local.LockHeld:
        raise PublishError(f"another run is writing into {out} (lock {join(runs, LOCK)}); "
                           "wait for it or choose another output directory") from None


def claim_out(out: str, take_over: bool) -> list[str]:
    """Refuse (OutputRefused) an output folder holding files Refinery did not write, unless
    `take_over`: then files under published names are moved into `<out>/.displaced/<time>/`
    (returned), and other files are left alone. Refinery never deletes what it did not write."""
    if is_local(out):
        found = local.foreign(out, PUBLISHED, CURRENT, OWN)
    else:
        ours = (*OWN, *(PUBLISHED + (POINTER,) if exists(join(out, POINTER)) else ()))
        found = sorted({_rel(f, out).split("/", 1)[0] for f in files_under(out)} - set(ours))
    if not found:
        return []
    if not take_over:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise OutputRefused(
            f"the output directory {out} holds files Refinery did not write ({shown}); "
            "choose an empty or new folder, or rerun with --take-over (run.take_over=true): "
            f"files under published names are then moved into {join(out, DISPLACED)}/, "
            "others are left alone")
    clash = [n for n in found if n in (*PUBLISHED, CURRENT, POINTER)]
    if not clash:
        return []
    if is_local(out):
        return local.displace(out, clash, DISPLACED)
    dest = join(out, DISPLACED, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    moved = []
    for name in clash:
        for f in files_under(join(out, name)) or [join(out, name)]:
            copy_file(f, join(dest, _rel(f, out)))
            delete_file(f)
            moved.append(join(dest, _rel(f, out)))
    return moved


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _object_lock(out: str) -> Iterator[None]:
    path = join(out, RUNS, LOCK)
    mine = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if exists(path):
        try:
            held = json.loads(read_bytes(path))
        except ValueError:
            held = {}
        if not (held.get("host") == mine["host"] and not _alive(int(held.get("pid", 0)))):
            raise PublishError(
                f"another run is writing into {out} (lock object {path}: host "
                f"{held.get('host')}, pid {held.get('pid')}, since {held.get('started')}); "
                f"wait for it, or delete {path} if that run is dead")
    write_bytes(path, json.dumps(mine).encode())
    if json.loads(read_bytes(path)).get("token") != mine["token"]:
        raise PublishError(f"another run took the lock {path} at the same moment")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            if json.loads(read_bytes(path)).get("token") == mine["token"]:
                delete_file(path)


def current_run(out: str) -> str | None:
    """The published run directory of `out`, or None."""
    if is_local(out):
        return local.current_run(out, CURRENT)
    pointer = join(out, POINTER)
    if not exists(pointer):
        return None
    run = join(out, RUNS, read_text(pointer).strip())
    return run if exists(join(run, MANIFEST)) else None


def published_dir(out: str) -> str:
    """The directory to read one consistent snapshot from: the published run (resolved once),
    or `out` itself for outputs not published by pointer (older layouts, release folders)."""
    out = str(out)
    return current_run(out_root(out)) or out


def clean_stale(out: str) -> list[str]:
    """Remove run directories other than the published one (failed, killed or superseded
    runs: stale staging). Only call while holding the lock."""
    keep = current_run(out)
    if is_local(out):
        stale = [d for d in local.run_dirs(join(out, RUNS)) if d != keep]
        local.remove_leftovers(out, CURRENT)
    else:
        base = join(out, RUNS)
        ids = {_rel(f, base).split("/", 1)[0] for f in files_under(base)
               if "/" in _rel(f, base)}
        stale = [join(base, i) for i in sorted(ids) if join(base, i) != keep]
    for d in stale:
        delete_tree(d)
    return [d.rsplit("/", 1)[1] for d in stale]


def new_run_dir(out: str) -> str:
    """A fresh, empty `.runs/<run-id>` (id: UTC time and process id); made on local disk,
    only named on object stores (objects need no directory)."""
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    path, n = join(out, RUNS, run_id), 0
    while not _claim(path):
        n += 1
        path = join(out, RUNS, f"{run_id}.{n}")
    return path


def _claim(path: str) -> bool:
    if is_local(path):
        return local.make_dir(path)
    return not has_files(path)


def _ensure_links(out: str, names: tuple[str, ...]) -> None:
    """Local disk: the fixed symlinks of the published `names` (a module function: the kill
    test pauses inside it)."""
    local.ensure_links(out, names, CURRENT)


def publish(out: str, run_dir: str) -> None:
    """Make `run_dir` the published run: one atomic switch on local disk, the ordered copy
    described above on object stores. Only the names the run wrote are published: on local
    disk the links of the others are removed after the switch (no link dangles)."""
    if is_local(out):
        wrote = local.present(run_dir, PUBLISHED)
        _ensure_links(out, wrote)
        local.switch(out, CURRENT, f"{RUNS}/{run_dir.rstrip('/').rsplit('/', 1)[1]}")
        local.remove_links(out, tuple(n for n in PUBLISHED if n not in wrote), CURRENT)
        return
    staged = {_rel(f, run_dir) for f in files_under(run_dir)}
    there = {_rel(f, out) for f in files_under(out) if "/" + RUNS + "/" not in f}
    if MANIFEST in there:
        delete_file(join(out, MANIFEST))  # 1. the top-level copy is incomplete from here on
    copies = sorted(r for r in staged if _published_name(r) and r != MANIFEST)
    if copies:  # 2. the run's files (one batch: server-side copies) ...
        FileSystems.copy([join(run_dir, r) for r in copies], [join(out, r) for r in copies])
    extra = sorted(r for r in there if _published_name(r) and r not in staged)
    if extra:  # ... and none it does not have
        FileSystems.delete([join(out, r) for r in extra])
    write_text(join(out, POINTER), run_dir.rstrip("/").rsplit("/", 1)[1] + "\n")  # 3. commit
    copy_file(join(run_dir, MANIFEST), join(out, MANIFEST))  # 4. complete again


def _published_name(rel: str) -> bool:
    return rel.split("/", 1)[0] in PUBLISHED
