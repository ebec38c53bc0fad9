"""Fixes for Beam's local runner (the FnApiRunner behind the DirectRunner and behind
PortableRunner with job_endpoint=embed), applied before a pipeline runs. Both only change
settings of this process, so they are harmless where the work runs elsewhere."""

from __future__ import annotations

import ctypes
import os
import weakref
from typing import Any

# glibc mallopt parameters: chunks over 64 KiB are mmapped (returned on free), the heap top
# is trimmed past 64 KiB free, at most 2 arenas
MALLOPT = {-3: 1 << 16, -1: 1 << 16, -8: 2}  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_ARENA_MAX
# the same thresholds for the processes a run starts (SDK workers); a value already set wins
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 16), "MALLOC_TRIM_THRESHOLD_": str(1 << 16)}


def size_flushed_runner_data_plane() -> None:
    """Make Beam's local runner (the DirectRunner's FnApiRunner, also behind PortableRunner
    with job_endpoint=embed) send bundle inputs to SDK workers with size-based flushing only.

    Beam (2.77) gives the runner's data channel a 1 s time-based flush. Its periodic flusher
    calls the send callback between reading the buffer and clearing it, without a lock
    against writes; when the send queue is full (large inputs) a write lands in that gap and
    is cleared unsent. With `direct_num_workers` > 1 in multi_processing mode this silently
    dropped up to 38 % of a large stage's input (tests/pipeline/test_local_runner.py shows the
    race; bench/beam_flush_race.py reproduces it, docs/dedup.md has the measurements).
    Time-based flushing only lowers latency in streaming."""
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0



def malloc_returns_freed_memory() -> bool:
    """The runner process holds every shuffle between stages and frees it stage by stage;
    with glibc's default (dynamic) thresholds the freed buffers stay in its heap, so its RSS
    is the high-water mark of everything it ever held. Measured at 100k documents in the
    dedup scale bench: runner peak 1.17 GB → 0.82-0.90 GB. The SDK worker processes started
    later get the two thresholds through the environment. True when glibc took them all."""
    for key, value in MALLOC_ENV.items():
        os.environ.setdefault(key, value)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return all(libc.mallopt(param, value) == 1 for param, value in MALLOPT.items())


ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"  # read by pyarrow when a worker imports it


def arrow_reuses_freed_memory() -> bool:
    """Make jemalloc Arrow's default memory pool (pyarrow's default is mimalloc), unless
    ARROW_DEFAULT_MEMORY_POOL chooses one. mimalloc hands freed memory back to the system
    within milliseconds, so each large Arrow buffer of a run (a parsed split, a batch, a
    shard) lands on fresh pages, and on a virtual machine first-touched pages cost more
    than the work done in them. jemalloc as Arrow configures it does the same in the main
    thread and keeps one arena per thread; with the options pipeline/__init__.py sets before
    pyarrow loads (one arena, freed pages kept until the kernel wants them) a freed buffer's
    pages serve the next one in any thread. Measured (bench/README.md): ingest_emit's CPU for
    200k records 4.5-5.0 s with mimalloc, 4.1-4.2 s with jemalloc; its shard writers' page
    faults 298k → 208k with the options. dedup_scale at 1M documents peaks at 3.46 GB in the
    runner with them (3.51 GB without, 3.49 GB with mimalloc). Worker processes get it
    through the environment. False where this pyarrow has no jemalloc or the variable
    was set."""
    if os.environ.get(ARROW_POOL_ENV):
        return False
    import pyarrow as pa

    try:
        pool = pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowException):  # a build without jemalloc
        return False
    pa.set_memory_pool(pool)
    os.environ[ARROW_POOL_ENV] = "jemalloc"
    return True


def remember_dofn_specs() -> None:
    """Make Beam ask each DoFn for its state and timer specs once.

    Beam (2.77) finds them (`userstate.get_dofn_specs`) by taking `inspect.signature` of every
    method of the DoFn, and asks again for the same DoFn at each step of building, translating
    and running a pipeline: about 100,000 calls for one dedup stage, a third of a small
    pipeline's set-up (-12 to -28 % CPU over the pipeline tests). The answer depends only on
    the DoFn, so it is kept per DoFn object, held weakly (an object at a reused address is
    asked afresh); errors are not kept. Idempotent; a Beam without the function is left as is."""
    from apache_beam.runners.direct import transform_evaluator
    from apache_beam.transforms import userstate

    original = getattr(userstate, "get_dofn_specs", None)
    if original is None or getattr(original, "_refinery_remembers", False):
        return
    kept: dict[int, tuple[weakref.ref, tuple[frozenset, frozenset]]] = {}

    def get_dofn_specs(dofn: Any) -> Any:
        key = id(dofn)
        hit = kept.get(key)
        if hit is not None and hit[0]() is dofn:
            return set(hit[1][0]), set(hit[1][1])  # callers get their own sets, as before
        states, timers = original(dofn)
        try:
            ref = weakref.ref(dofn, lambda _: kept.pop(key, None))
        except TypeError:  # no weak references to this object: not kept
            return states, timers
        kept[key] = (ref, (frozenset(states), frozenset(timers)))
        return states, timers

    get_dofn_specs._refinery_remembers = True  # type: ignore[attr-defined]
    get_dofn_specs.__wrapped__ = original  # type: ignore[attr-defined]
    userstate.get_dofn_specs = get_dofn_specs
    if getattr(transform_evaluator, "get_dofn_specs", None) is original:
        transform_evaluator.get_dofn_specs = get_dofn_specs


def prepare_local_runner(shuffles_rows: bool = True) -> None:
    """The fixes above; glibc's settings only for a pipeline whose shuffles carry rows
    (`shuffles_rows`: a run with a stage). A run without stages (ingest → emit) shuffles
    only spill-file paths and row indices, so returning freed memory would only cost it CPU:
    every large temporary gets fresh pages, 0.25-0.45 s of its 3.2 s for 200k records
    (bench/README.md, ingest_emit). The settings stay for the rest of the process."""
    size_flushed_runner_data_plane()
    if shuffles_rows:
        malloc_returns_freed_memory()
    arrow_reuses_freed_memory()
    remember_dofn_specs()
