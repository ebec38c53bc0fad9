"""The explained release diff on two 1M-row releases, against a plain pandas join of the two id
sets read from the same shard files.

A child process writes two synthetic releases (manifest, 10 Parquet shards of the run's schema,
`rejected/`, dead letter): the old one has 1M source rows from 10 files; the new one drops one
file (100k rows), edits 20k rows (new ids and content hashes at the same positions), moves 10k
(new ids and positions, same content hashes: counted as kept), rejects 30k by a raised
quality threshold, dead-letters 1k, adds 50k rows from a new file and 10k synthesized rows.
Measured in this process: the explained diff (`pipeline.release.diff.diff_runs`: ids, source
positions, lineage, rejected and dead letter, every added and removed row with its reason) and
the baseline (pandas: read both id columns, one outer merge, counts). Rows/s counts the rows of
both releases; the explained diff's reason counts are checked against what was planted. Peak
RSS is this process's (generation runs in the child). The last line is one JSON object.

    python bench/release_diff.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FILES = 10
MOVED = "moved (same content, another source position)"  # release_diff.MOVED


def _ids(tag: str, n: np.ndarray) -> list[str]:
    return [f"{tag}{i:030x}" for i in n.tolist()]


def _table(ids: list[str], files: list[str | None], rows: list[int | None],
           made_by: list[str | None], quality: np.ndarray, hashes: list[str] | None = None
           ) -> pa.Table:
    """Rows of the run's sft schema (the columns the diff reads, and the messages)."""
    n = len(ids)
    contents = [t for i in range(n) for t in (f"question {i}?", f"answer {i}.")]
    messages = pa.ListArray.from_arrays(
        pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)),
        pa.StructArray.from_arrays([pa.array(contents), pa.array(["user", "assistant"] * n)],
                                   names=["content", "role"]))
    lineage = pa.StructArray.from_arrays(
        [pa.array([["p" + i[1:]] if m else [] for i, m in zip(ids, made_by, strict=True)],
                  pa.list_(pa.string())),
         pa.array(made_by, pa.string()), pa.nulls(n, pa.string()), pa.nulls(n, pa.string()),
         pa.nulls(n, pa.string())],
        names=["parent_ids", "stage", "method", "model", "template_version"])
    meta = pa.StructArray.from_arrays([lineage, pa.array(quality)],
                                      names=["lineage", "quality_score"])
    source = pa.StructArray.from_arrays(
        [pa.array([f.split(".")[0] if f else None for f in files], pa.string()),
         pa.array(files, pa.string()), pa.array(rows, pa.int64())],
        names=["dataset", "file", "row"])
    hashes = hashes if hashes is not None else ["h" + i for i in ids]
    return pa.table({"id": ids, "content_hash": hashes, "messages": messages, "source": source,
                     "meta": meta})


def _write_release(out: Path, table: pa.Table, rejected: pa.Table | None,
                   deadletter: list[dict], inputs: list[str], threshold: float) -> None:
    (out / "sft").mkdir(parents=True)
    shards = []
    per = -(-table.num_rows // 10)
    for k in range(10):
        part = table.slice(k * per, per)
        path = f"sft/train-{k:05d}-of-00010.parquet"
        pq.write_table(part, out / path)
        shards.append({"dataset": "sft", "format": "parquet", "path": path,
                       "rows": part.num_rows, "sha256": ""})
    rejected_files = []
    if rejected is not None:
        (out / "rejected").mkdir()
        pq.write_table(rejected, out / "rejected" / "quality.parquet")
        rejected_files.append({"path": "rejected/quality.parquet", "rows": rejected.num_rows,
                               "stage": "quality"})
    (out / "deadletter").mkdir()
    (out / "deadletter" / "deadletter.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in deadletter))
    config = {"stages": {"quality": {"enabled": True, "filters": [
        {"signal": "quality_score", "op": "<", "value": threshold}]}}}
    (out / "manifest.json").write_text(json.dumps({
        "config": config, "shards": shards, "rejected_files": rejected_files,
        "inputs": [{"path": p} for p in inputs], "name": out.name}))


def generate(base: Path, n: int) -> dict[str, int]:
    """Write base/old and base/new; return the planted counts per reason."""
    rng = np.random.default_rng(7)
    per_file = n // FILES
    files = np.repeat(np.arange(FILES), per_file)
    rows = np.tile(np.arange(per_file), FILES)
    quality = rng.uniform(0.5, 1.0, n)
    old_ids = _ids("a", np.arange(n))
    names = [f"f{f}.jsonl" for f in files.tolist()]
    _write_release(base / "old", _table(old_ids, names, rows.tolist(), [None] * n, quality),
                   None, [],
                   [f"f{k}.jsonl" for k in range(FILES)], 0.5)

    keep = files != FILES - 1                     # file 9 removed
    idx = np.flatnonzero(keep)
    pick = rng.permutation(idx)
    edited, low, dead = pick[:n // 50], pick[n // 50:n // 50 + 3 * n // 100], \
        pick[n // 50 + 3 * n // 100:n // 50 + 3 * n // 100 + n // 1000]
    moved = pick[-n // 100:]                      # same content at a new position (row + n)
    quality_new = quality.copy()
    quality_new[low] = 0.55                       # below the raised threshold 0.6 ...
    quality_new[np.setdiff1d(idx, low)] = np.maximum(quality[np.setdiff1d(idx, low)], 0.61)
    new_ids = np.array(old_ids, dtype=object)
    new_ids[edited] = _ids("b", edited)
    hashes = np.array(["h" + i for i in old_ids], dtype=object)
    hashes[edited] = ["h" + i for i in new_ids[edited]]
    new_ids[moved] = _ids("e", moved)
    new_rows = rows.copy()
    new_rows[moved] += n
    out_mask = keep.copy()
    out_mask[low] = False
    out_mask[dead] = False
    sel = np.flatnonzero(out_mask)
    added_src, synth = n // 20, n // 100
    ids = [*new_ids[sel].tolist(), *_ids("c", np.arange(added_src)), *_ids("d", np.arange(synth))]
    fnames = [*[names[i] for i in sel.tolist()], *["f10.jsonl"] * added_src, *[None] * synth]
    frows = [*new_rows[sel].tolist(), *range(added_src), *[None] * synth]
    made = [*[None] * (len(sel) + added_src), *["compound"] * synth]
    qual = np.concatenate([quality_new[sel], np.full(added_src + synth, 0.9)])
    table = _table(ids, fnames, frows, made, qual,
                   [*hashes[sel].tolist(), *["h" + i for i in ids[len(sel):]]])
    rej = _table(new_ids[low].tolist(), [names[i] for i in low.tolist()], rows[low].tolist(),
                 [None] * len(low), quality_new[low])
    rej = rej.append_column("reject_stage", pa.array(["quality"] * len(low))).append_column(
        "reject_reason", pa.array(["low_quality_score"] * len(low))).append_column(
        "reject_detail", pa.nulls(len(low), pa.string()))
    dl = [{"record_id": new_ids[i], "file": names[i], "row": int(rows[i]), "stage": "quality",
           "error": "TimeoutError: judge"} for i in dead.tolist()]
    _write_release(base / "new", table, rej, dl,
                   [f"f{k}.jsonl" for k in range(FILES - 1)] + ["f10.jsonl"], 0.6)
    return {"source file removed": per_file, "content changed (new id)": len(edited),
            "now rejected by quality: low_quality_score": len(low),
            "now dead-lettered": len(dead), "new source file": added_src,
            "synthesized by compound": synth, MOVED: len(moved)}


def pandas_join(old: Path, new: Path) -> dict[str, int]:
    import pandas as pd

    a = pd.concat([pd.read_parquet(f, columns=["id"]) for f in sorted((old / "sft").glob("*"))])
    b = pd.concat([pd.read_parquet(f, columns=["id"]) for f in sorted((new / "sft").glob("*"))])
    merged = a.merge(b, on="id", how="outer", indicator=True)
    counts = merged["_merge"].value_counts()
    return {"removed": int(counts["left_only"]), "added": int(counts["right_only"]),
            "kept": int(counts["both"])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        print(json.dumps(generate(Path(args.generate), args.rows)))
        return
    from pipeline.release.diff import diff_runs
    from pipeline.release.runs import Run

    with tempfile.TemporaryDirectory(prefix="refinery-bench-diff-") as tmp:
        base = Path(tmp)
        t = time.perf_counter()
        planted = json.loads(subprocess.run(
            [sys.executable, __file__, "--rows", str(args.rows), "--generate", tmp],
            check=True, capture_output=True, text=True).stdout)
        print(f"generated two releases in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        t = time.perf_counter()
        plain = pandas_join(base / "old", base / "new")
        pandas_s = time.perf_counter() - t
        t = time.perf_counter()
        old, new = Run(str(base / "old")), Run(str(base / "new"))
        result, frames = diff_runs(old, new)
        explained_s = time.perf_counter() - t
        d = result["datasets"]["sft"]
        total = sum(p["rows"] for r in (old, new) for p in r.manifest["shards"])
        reasons = {**d["reasons"]["removed"], **d["reasons"]["added"],
                   **d["reasons"].get("kept", {})}
        both = "content changed (new id)"
        got = {k: v for k, v in reasons.items() if k != both}
        want = {k: v for k, v in planted.items() if k != both}
        correct = (got == want and d["reasons"]["removed"][both] == planted[both]
                   == d["reasons"]["added"][both]
                   and (d["added"] + d["moved"], d["removed"] + d["moved"],
                        d["kept"] - d["moved"]) == (
                       plain["added"], plain["removed"], plain["kept"]))
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for name, s in (("pandas id join", pandas_s), ("explained diff", explained_s)):
            print(f"{name:<16} {s:7.2f} s  {total / s:12,.0f} rows/s", file=sys.stderr)
        print(f"reasons: {json.dumps(reasons)}", file=sys.stderr)
        print(json.dumps({
            "bench": "release_diff", "rows_per_release": args.rows, "rows_total": total,
            "explained_rows_per_s": round(total / explained_s),
            "pandas_join_rows_per_s": round(total / pandas_s),
            "ratio_vs_pandas": round(pandas_s / explained_s, 2),
            "reasons_match_planted": correct, "changed_rows": sum(f.height for f in frames.values()),
            "peak_rss_mb": round(rss_mb), "peak_rss_under_2gb": rss_mb < 2048}))


if __name__ == "__main__":
    main()
