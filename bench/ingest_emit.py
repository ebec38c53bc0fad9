"""Benchmark: our batched ingest → emit path against a naive per-record Beam pipeline.

Generates N records (default 200k; Alpaca and OpenAI-messages JSONL, one file per layout, realistic
lengths, a few percent non-ASCII) into a temp dir, then, in the same process and on the same
files, measures:

  ours   `pipeline.run.run_config` with the file as the only source and no stages: ReadSources
         (byte-range splits → adapters → normalized canonical Arrow batches with stable ids) →
         WriteShards (sorted zstd Parquet shards) + dead letter, then manifest, card, report
         and publish, as a user's run does, on the DirectRunner;
  naive  ReadFromText → json.loads → json.dumps → WriteToText, one element per record, on the
         same DirectRunner mode.

The measurement runs `--repeat` times (default 3), each round in a fresh Python process (so
every timed run of ours is the first large run of its process, as a user's `refinery run` is),
ours first in odd rounds and naive first in even ones; the figures are the medians of each
side, so one slow moment of a shared machine moves neither much (each round's seconds are in
the JSON). Prints a table and ends with one JSON line: ours_records_per_s,
naive_records_per_s, ratio (wall clock, of the medians), plus the CPU seconds of each (this process; in_memory mode runs the workers
in-process; ours converts two splits and writes two shards at once on threads, so its CPU
seconds can exceed its wall seconds) and cpu_ratio, which is steadier than wall clock on a
shared machine, and the 1-minute load average at the start and the end (load_1m).
In each round a warm-up run of each pipeline on a few records comes first, so one-time imports
and Beam start-up caches are not charged to whichever pipeline happens to run first.
`--profile` runs one round in this process with a cProfile of our path (top functions by
cumulative and own time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_WORDS = (  # noqa: SIM905 - a word list is easier to read as text
    "the of and to in is that for it as with was on be by this are or from at an which have "
    "not but all can more one their will so if about into than other what time some these "
    "data model value function return list number first each make example use way because "
    "explain write describe summary code python error result table answer question system "
    "user step process energy water light city history market science method test string "
    "array memory network server request response temperature distance average total price"
).split()
_ACCENTED = ["café", "naïve", "über", "résumé", "24 °C", "π ≈ 3.14", "déjà vu", "São Paulo"]


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))]
    if rng.random() < 0.05:
        words.insert(rng.randrange(len(words)), rng.choice(_ACCENTED))
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def _paragraphs(rng: random.Random, sentences: int) -> str:
    parts, para = [], []
    for _ in range(sentences):
        para.append(_sentence(rng, 6, 22))
        if rng.random() < 0.25:
            parts.append(" ".join(para))
            para = []
    if para:
        parts.append(" ".join(para))
    return "\n\n".join(parts)


def make_records(directory: Path, n: int, seed: int = 0) -> list[Path]:
    """Write n JSONL records, ≈60% Alpaca (alpaca.jsonl) and 40% OpenAI messages
    (openai.jsonl): layout is detected per file, so each layout gets its own file. Texts are
    drawn from pools of generated sentences and paragraphs (fast), made unique by a suffix."""
    rng = random.Random(seed)
    sentences = [_sentence(rng, 6, 30) for _ in range(4000)]
    paragraphs = [_paragraphs(rng, rng.randint(2, 12)) for _ in range(3000)]
    short = [_paragraphs(rng, 3) for _ in range(500)]
    paths = [directory / "alpaca.jsonl", directory / "openai.jsonl"]
    with paths[0].open("w", encoding="utf-8") as fa, paths[1].open("w", encoding="utf-8") as fo:
        for i in range(n):
            instruction = rng.choice(sentences)
            answer = f"{rng.choice(paragraphs)} (#{i})"
            alpaca = rng.random() < 0.6
            if alpaca:
                extra = rng.choice(sentences) if rng.random() < 0.35 else ""
                row: dict = {"instruction": instruction, "input": extra, "output": answer}
            else:
                messages = []
                if rng.random() < 0.3:
                    messages.append({"role": "system", "content": rng.choice(sentences)})
                messages.append({"role": "user", "content": instruction})
                messages.append({"role": "assistant", "content": answer})
                if rng.random() < 0.2:
                    messages.append({"role": "user", "content": rng.choice(sentences)})
                    messages.append({"role": "assistant", "content": rng.choice(short)})
                row = {"messages": messages}
            (fa if alpaca else fo).write(json.dumps(row, ensure_ascii=False) + "\n")
    return paths


def _beam_flags(mode: str, workers: int) -> dict:
    return {"runner": "DirectRunner", "direct_running_mode": mode,
            "direct_num_workers": workers}


def run_ours(paths: list[Path], out: Path, mode: str, workers: int
             ) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of this process, manifest)."""
    from pipeline.config import load_config
    from pipeline.run import run_config

    cfg = load_config(None, [f"beam.direct_running_mode={mode}",
                             f"beam.direct_num_workers={workers}",
                             "ingest.max_record_bytes=1048576"],
                      inputs=[str(p) for p in paths], out=str(out))
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_config(cfg)
    return time.perf_counter() - t0, time.process_time() - c0, result.manifest


def run_naive(pattern: str, out: Path, mode: str, workers: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, records written)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    opts = PipelineOptions(**_beam_flags(mode, workers))
    t0, c0 = time.perf_counter(), time.process_time()
    with beam.Pipeline(options=opts) as p:
        (p
         | "Read" >> beam.io.ReadFromText(pattern)
         | "Parse" >> beam.Map(json.loads)
         | "Dump" >> beam.Map(lambda r: json.dumps(r, ensure_ascii=False))
         | "Write" >> beam.io.WriteToText(str(out / "naive"), file_name_suffix=".jsonl"))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    rows = 0
    for f in sorted(out.glob("naive*.jsonl")):
        with f.open("rb") as fh:
            rows += sum(1 for _ in fh)
    return elapsed, cpu, rows


def measure_round(paths: list[Path], tmp: Path, mode: str, workers: int, naive_first: bool,
                  profile: bool = False) -> dict:
    """Warm-up runs of both pipelines on 200 records, then one timed run of each on `paths`
    (in the given order); seconds, CPU seconds and what each wrote."""
    warm = tmp / "warm"
    warm.mkdir()
    warm_paths = make_records(warm, 200, seed=1)
    run_ours(warm_paths, warm / "ours", mode, workers)
    run_naive(str(warm / "*.jsonl"), warm / "naive", mode, workers)
    out: dict = {}
    prof = cProfile.Profile() if profile else None
    for side in (("naive", "ours") if naive_first else ("ours", "naive")):
        if side == "naive":
            pattern = str(paths[0].parent / "*.jsonl")
            out["naive_s"], out["naive_cpu_s"], out["naive_rows"] = run_naive(
                pattern, tmp / "naive", mode, workers)
            continue
        out["ours_start_load_1m"] = round(os.getloadavg()[0], 2)  # the load rule reads it
        if prof:
            prof.enable()
        out["ours_s"], out["ours_cpu_s"], manifest = run_ours(paths, tmp / "ours", mode, workers)
        if prof:
            prof.disable()
        out["conservation"] = manifest["conservation"]
        out["ours_shards"] = sum(s["format"] == "parquet" for s in manifest["shards"])
    if prof:
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(25)
        print(buf.getvalue())
    return out


def _round_in_fresh_process(src: Path, tmp: Path, args: argparse.Namespace, naive_first: bool
                            ) -> dict:
    cmd = [sys.executable, __file__, "--round", str(src), "--mode", args.mode,
           "--workers", str(args.workers)] + (["--naive-first"] if naive_first else [])
    tmp.mkdir()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
    if done.returncode:
        raise RuntimeError(f"a round failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000, help="records to generate")
    ap.add_argument("--mode", default="in_memory",
                    choices=["in_memory", "multi_threading", "multi_processing"],
                    help="DirectRunner mode for both pipelines")
    ap.add_argument("--workers", type=int, default=1, help="direct_num_workers for both")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds, each in a fresh process; medians are reported")
    ap.add_argument("--profile", action="store_true",
                    help="one round in this process, with a cProfile of our path (top 25)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--round", metavar="DIR", help=argparse.SUPPRESS)  # one round on DIR's files
    ap.add_argument("--naive-first", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import logging

    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    if args.round:  # a child: one round, in the current directory, one JSON line
        paths = sorted(Path(args.round).glob("*.jsonl"))
        print(json.dumps(measure_round(paths, Path.cwd(), args.mode, args.workers,
                                       args.naive_first)))
        return 0
    load_start = os.getloadavg()[0]  # printed with the figures: this machine is shared
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_emit_"))
    try:
        src = tmp / "in"
        src.mkdir()
        t0 = time.perf_counter()
        paths = make_records(src, args.records)
        size = sum(p.stat().st_size for p in paths)
        gen_s = time.perf_counter() - t0
        print(f"generated {args.records} records ({size / 1e6:.1f} MB, "
              f"{', '.join(p.name for p in paths)}) in {gen_s:.1f}s under {src}")
        if args.profile:
            rounds = [measure_round(paths, tmp, args.mode, args.workers, False, profile=True)]
        else:
            rounds = [_round_in_fresh_process(src, tmp / f"round{i}", args, i % 2 == 1)
                      for i in range(max(1, args.repeat))]
        for r in rounds:
            c = r["conservation"]
            if c["records_in"] != args.records or r["naive_rows"] != args.records \
                    or not c["holds"]:
                print(f"count mismatch: ours read {c['records_in']} (conservation {c}), naive "
                      f"wrote {r['naive_rows']}, expected {args.records}", file=sys.stderr)
                return 1
        med = {k: statistics.median(r[k] for r in rounds)
               for k in ("ours_s", "ours_cpu_s", "naive_s", "naive_cpu_s")}
        n = args.records
        ours_rps, naive_rps = n / med["ours_s"], n / med["naive_s"]
        ratio = ours_rps / naive_rps
        c = rounds[-1]["conservation"]
        print(f"\nmedians of {len(rounds)} round(s), each in a fresh process")
        print(f"{'pipeline':<44} {'records':>9} {'wall s':>8} {'cpu s':>8} {'records/s':>10}")
        print(f"{'ours: ReadSources → WriteShards (+manifest)':<44} {n:>9} "
              f"{med['ours_s']:>8.2f} {med['ours_cpu_s']:>8.2f} {ours_rps:>10.0f}")
        print(f"{'naive: ReadFromText → json.loads → Write':<44} {n:>9} "
              f"{med['naive_s']:>8.2f} {med['naive_cpu_s']:>8.2f} {naive_rps:>10.0f}")
        print(f"ratio ours/naive: {ratio:.2f}x  (runner DirectRunner/{args.mode}, "
              f"workers {args.workers}, cpus {os.cpu_count()}; ours wrote "
              f"{c['records_out']} rows in {rounds[-1]['ours_shards']} shard(s), "
              f"{c['deadletter']} dead letter)")
        print(json.dumps({
            "bench": "ingest_emit", "records": n, "mode": args.mode,
            "workers": args.workers, "cpus": os.cpu_count(),
            "ours_records_per_s": round(ours_rps), "naive_records_per_s": round(naive_rps),
            "ratio": round(ratio, 2), "ours_s": round(med["ours_s"], 2),
            "naive_s": round(med["naive_s"], 2), "ours_cpu_s": round(med["ours_cpu_s"], 2),
            "naive_cpu_s": round(med["naive_cpu_s"], 2),
            "cpu_ratio": round(med["naive_cpu_s"] / med["ours_cpu_s"], 2),
            "rounds": len(rounds),
            "ours_rounds_s": [round(r["ours_s"], 2) for r in rounds],
            "naive_rounds_s": [round(r["naive_s"], 2) for r in rounds],
            "ours_start_load_1m": [r["ours_start_load_1m"] for r in rounds],
            "load_1m": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        }))
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
