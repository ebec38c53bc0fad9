"""Dedup at scale: the dedup stage (exact + near, semantic off) on 250k, 500k and 1M generated
documents with planted near-duplicate clusters, through Beam's DirectRunner with 2 worker
processes (multi_processing), as a run with `beam.direct_num_workers: 2` builds it, with the
local-runner fixes every run applies (pipeline/runner/local_runner.py: size-flushed data plane,
glibc returning freed memory).

Documents are generated inside the pipeline from batch numbers (nothing is built in the
driver): cluster c has a template of 30-45 words drawn from a synthetic vocabulary; its
members are the template with 2-3 word substitutions (near duplicates), or with case and
punctuation noise only (exact duplicates after folding); cluster sizes 1-6. Ids are the
document numbers in hex, so keepers (smallest id) are reproducible.

Measured per size: wall time of the pipeline (generation included), peak RSS of every process
of the run (the runner — this process, which in the DirectRunner also holds every PCollection
between fused stages — and its SDK worker processes: the kernel's VmHWM), the
largest grouped element of each step (rows and numeric bytes, from Beam distributions), and
pairwise precision / recall / F1 of the predicted clusters (each row with its final keeper)
against the planted ones. The last line is one JSON object.

    python bench/dedup_scale.py [--sizes 250000,500000,1000000] [--batch-rows 2000]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.dedup.shingles import fmix64  # noqa: E402

VOCAB = 6000
SIZES = (1, 1, 2, 2, 3, 4, 5, 6)
SEED = 20261201


def _h(*parts: np.ndarray | int) -> np.ndarray:
    """A vectorized 64-bit hash of integer parts (broadcast; at least 1-d)."""
    arrs = np.broadcast_arrays(*[np.atleast_1d(np.asarray(p).astype(np.uint64)) for p in parts])
    acc = np.full(arrs[0].shape, SEED, np.uint64)
    with np.errstate(over="ignore"):
        for p in arrs:
            acc = fmix64((acc * np.uint64(0x9E3779B97F4A7C15)) ^ p)
    return acc


@lru_cache(maxsize=1)
def vocabulary() -> np.ndarray:
    """Synthetic words of 3-9 letters."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    k = np.arange(VOCAB)
    lengths = 3 + (_h(k, 1) % np.uint64(7)).astype(int)
    return np.array(["".join(letters[(_h(w, 2, np.arange(n)) % np.uint64(26)).astype(int)])
                     for w, n in zip(k, lengths, strict=True)], dtype=object)


@lru_cache(maxsize=2)
def layout(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(cluster of each document, its member number inside the cluster), in a seeded order."""
    rng = np.random.default_rng(SEED)
    sizes = rng.choice(SIZES, size=n)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    label = np.repeat(np.arange(len(sizes)), sizes)[:n]
    member = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)[:n]
    order = rng.permutation(n)
    return label[order], member[order]


def texts(n: int, lo: int, hi: int) -> list[str]:
    """The documents lo..hi-1 of a corpus of n (vectorized over the range)."""
    label, member = layout(n)
    c, m = label[lo:hi], member[lo:hi]
    length = (30 + _h(c, 3) % np.uint64(16)).astype(np.int64)
    start = np.cumsum(length) - length
    k = np.arange(int(length.sum())) - np.repeat(start, length)
    wid = (_h(np.repeat(c, length), 4, k) % np.uint64(VOCAB)).astype(np.int64)
    near = (m > 0) & (m % 4 != 3)  # near duplicates: 2-3 words replaced
    edits = 2 + (_h(c, m, 5) % np.uint64(2)).astype(np.int64)
    for e in range(3):
        on = near & (e < edits)
        pos = (_h(c, m, 6, e) % length.astype(np.uint64)).astype(np.int64)
        wid[(start + pos)[on]] = (_h(c, m, 7, e) % np.uint64(VOCAB)).astype(np.int64)[on]
    words = vocabulary()[wid].tolist()
    out = []
    for i, (s0, ln) in enumerate(zip(start.tolist(), length.tolist(), strict=True)):
        w = words[s0:s0 + ln]
        if m[i] % 4 == 3:  # an exact duplicate after folding: case and punctuation noise
            w = [w[0].upper(), *w[1:-1], w[-1] + "!"]
        out.append(" ".join(w) + ".")
    return out


def make_batch(k: int, n: int, batch_rows: int):
    """Example batch number k (rows k*batch_rows ...)."""
    import pyarrow as pa

    from schemas.records import example_row, examples_to_batch

    lo, hi = k * batch_rows, min(n, (k + 1) * batch_rows)
    rows = [example_row(f"{lo + i:032x}", [{"role": "user", "content": t}],
                        {"dataset": "scale", "file": "gen", "row": lo + i})
            for i, t in enumerate(texts(n, lo, hi))]
    # the schema of one row (examples_to_batch infers it per call, slowly), then all rows
    return pa.RecordBatch.from_pylist(rows, schema=examples_to_batch(rows[:1]).schema)


def _hwm_mb(pid: int | str) -> float | None:
    """The kernel's peak RSS (VmHWM) of a process in MB; None where /proc has no such line."""
    try:
        with open(f"/proc/{pid}/status") as f:  # a proc file, not data
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class _Rss:
    """Peak RSS (MB) per process of this process tree: the kernel's high-water mark (VmHWM,
    reset for this process at start through /proc/self/clear_refs), read every `every` s
    while a worker lives and at the end for this process; RSS samples where /proc lacks it."""

    def __init__(self, every: float = 0.1):
        import psutil

        self.me, self.every, self.peak = psutil.Process(), every, {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for p in [self.me, *self.me.children(recursive=True)]:
            try:
                mb = _hwm_mb(p.pid) or p.memory_info().rss / 2**20
            except Exception:  # a worker that just exited
                continue
            self.peak[p.pid] = max(self.peak.get(p.pid, 0.0), mb)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> _Rss:
        try:
            with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM
                f.write("5")
        except OSError:
            pass
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self._sample()


def _write_pairs(batch, out_dir: str) -> None:
    """(document, final keeper) numbers of rejected rows → one .npy per bundle piece."""
    ids = batch.column("id").to_pylist()
    dup = batch.column("duplicate_of").to_pylist()
    arr = np.array([[int(a, 16), int(b, 16)] for a, b in zip(ids, dup, strict=True)], np.int64)
    np.save(os.path.join(out_dir, f"{uuid.uuid4().hex}.npy"), arr)


def pair_f1(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """Pairwise precision, recall, F1 of cluster labels (pairs counted per contingency cell)."""
    def pairs(x: np.ndarray) -> int:
        _, c = np.unique(x, return_counts=True, axis=0)
        return int((c * (c - 1) // 2).sum())
    tp = pairs(np.stack([pred, truth], 1))
    pp, tt = pairs(pred), pairs(truth)
    p, r = (tp / pp if pp else 1.0), (tp / tt if tt else 1.0)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def per_doubling(x0: float, x1: float, n0: int, n1: int) -> float:
    """Growth of x per doubling of n (x1 / x0 itself when n1 = 2 n0)."""
    return (x1 / x0) ** (1 / np.log2(n1 / n0))


def run_size(n: int, batch_rows: int, partitions: int, mode: str = "multi_processing",
             workers: int = 2) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.runner.local_runner import prepare_local_runner
    from transforms.base import MAIN, REJECTED, RunContext
    from transforms.dedup.config import DedupConfig
    from transforms.dedup.stage import DedupStage

    cfg = DedupConfig(enabled=True, semantic=False, num_partitions=partitions)
    out_dir = tempfile.mkdtemp(prefix="dedup_scale_")
    opts = PipelineOptions(runner="DirectRunner", direct_running_mode=mode,
                           direct_num_workers=workers)
    prepare_local_runner()  # as every refinery run does (pipeline/runner/local_runner.py)
    n_batches = -(-n // batch_rows)
    t0 = time.perf_counter()
    with _Rss() as rss:
        p = beam.Pipeline(options=opts)
        out = (p | beam.Create(list(range(n_batches)))
               | "Generate" >> beam.Map(make_batch, n, batch_rows)
               | DedupStage(cfg, RunContext(seed=0)))
        _ = out[REJECTED] | "Pairs" >> beam.Map(_write_pairs, out_dir)
        _ = out[MAIN] | "Kept" >> beam.Map(lambda b: b.num_rows)
        result = p.run()
        result.wait_until_finish()
    seconds = time.perf_counter() - t0
    groups, sums, counters = {}, {}, {}
    query = result.metrics().query()
    for d in query["distributions"]:
        if d.key.metric.namespace == "refinery.dedup.groups":
            name = d.key.metric.name
            groups[name] = max(groups.get(name, 0), d.committed.max)
            sums[name] = sums.get(name, 0) + d.committed.sum
    for c in query["counters"]:
        if c.key.metric.namespace.startswith("refinery"):
            counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + c.committed
    files = glob.glob(os.path.join(out_dir, "*.npy"))
    pairs = np.concatenate([np.load(f) for f in files]) if files else np.zeros((0, 2), np.int64)
    for f in files:
        os.remove(f)
    os.rmdir(out_dir)
    pred = np.arange(n)
    pred[pairs[:, 0]] = pairs[:, 1]
    label, _ = layout(n)
    prec, rec, f1 = pair_f1(pred, label)
    runner = rss.peak.pop(os.getpid(), 0.0)
    return {"size": n, "seconds": round(seconds, 1), "rejected": len(pairs),
            "peak_rss_mb": round(max([runner, *rss.peak.values()]), 1),
            "runner_rss_mb": round(runner, 1),
            "worker_rss_mb": round(max(rss.peak.values(), default=0.0), 1),
            "processes": 1 + len(rss.peak), "precision": round(prec, 4),
            "recall": round(rec, 4), "f1": round(f1, 4),
            "max_group_rows": int(max([v for k, v in groups.items() if k.endswith("_rows")],
                                      default=0)),
            "max_group_mb": round(max([v for k, v in groups.items() if k.endswith("_bytes")],
                                      default=0) / 2**20, 2),
            "groups": groups, "group_sums": sums, "counters": counters,
            "planted_duplicates": int(n - len(np.unique(label)))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="250000,500000,1000000",
                    help="comma-separated document counts (e.g. 20000,40000 for a quick run)")
    ap.add_argument("--batch-rows", type=int, default=2000, help="rows per generated batch")
    ap.add_argument("--partitions", type=int, default=64, help="dedup num_partitions")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    res = []
    for n in sizes:
        r = run_size(n, a.batch_rows, a.partitions)
        res.append(r)
        big = max((k for k in r["groups"] if k.endswith("_bytes")),
                  key=lambda k: r["groups"][k], default="-")
        print(f"{n:>9} docs  {r['seconds']:>7.1f} s  peak RSS {r['peak_rss_mb']:>7.1f} MB "
              f"(runner {r['runner_rss_mb']:.0f}, workers ≤ {r['worker_rss_mb']:.0f}, "
              f"{r['processes']} processes)  largest group {r['max_group_rows']} rows / "
              f"{r['max_group_mb']} MB ({big})  P {r['precision']:.4f} R {r['recall']:.4f} "
              f"F1 {r['f1']:.4f}", flush=True)
        print(f"  counters {r['counters']}; planted duplicates {r['planted_duplicates']}; "
              f"rows per step {dict(sorted(r['group_sums'].items()))}", flush=True)
    ratio = [per_doubling(a_["seconds"], b["seconds"], a_["size"], b["size"])
             for a_, b in zip(res, res[1:], strict=False)]
    rss = [per_doubling(a_["peak_rss_mb"], b["peak_rss_mb"], a_["size"], b["size"])
           for a_, b in zip(res, res[1:], strict=False)]
    print(json.dumps({
        "bench": "dedup_scale", "workers": 2, "runner": "DirectRunner multi_processing",
        "f1_kind": "pairwise over all documents (planted clusters)",
        "sizes": sizes, "seconds": [r["seconds"] for r in res],
        "peak_rss_mb": [r["peak_rss_mb"] for r in res],
        "runner_rss_mb": [r["runner_rss_mb"] for r in res],
        "worker_rss_mb": [r["worker_rss_mb"] for r in res],
        "f1": [r["f1"] for r in res], "precision": [r["precision"] for r in res],
        "recall": [r["recall"] for r in res],
        "max_group_rows": [r["max_group_rows"] for r in res],
        "max_group_mb": [r["max_group_mb"] for r in res],
        "max_growth_per_doubling": round(max(ratio), 3) if ratio else None,
        "rss_growth_per_doubling": [round(x, 3) for x in rss],
        "max_rss_growth_per_doubling": round(max(rss), 3) if rss else None}))


if __name__ == "__main__":
    # workers import this module by name (functions of __main__ would be pickled by value,
    # without their caches): put the checkout on their path and run the imported copy
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    from bench.dedup_scale import main as _main

    _main()
