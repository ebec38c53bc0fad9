"""Completion tokens/s of the local LLM through the Beam stage vs direct backend calls.

Same prompts, same batch size, same process (the model is loaded once and warmed up before
timing); the cache is off so every request reaches the model. Runs alternate (direct, stage,
direct, stage, ...) so load on a shared machine hits both sides alike. The stage pays for
Beam: keying, batching, RunInference, validation, routing. Prints a table, then one JSON line:
pipeline_tokens_per_s, direct_tokens_per_s, ratio (pipeline / direct; target >= 0.9), and the
same per CPU second of this process (cpu_ratio), steadier when the machine is shared.

    .venv/bin/python bench/llm_throughput.py [--n 32] [--max-tokens 40] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from transforms.base import MAIN
from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.backend_local import LocalBackend
from transforms.llm.config import LLMConfig
from transforms.llm.generate import Generate
from transforms.llm.structured import generate_validated

TOPICS = ["rivers", "volcanoes", "bread", "chess", "bees", "glass", "tides", "maps", "salt",
          "clocks", "owls", "copper", "rain", "paper", "stars", "cheese"]
SCHEMA = {"type": "object", "properties": {
    "topic": {"type": "string", "maxLength": 20},
    "fact": {"type": "string", "maxLength": 100},
    "difficulty": {"enum": ["easy", "medium", "hard"]}},
    "required": ["topic", "fact", "difficulty"], "additionalProperties": False}


def make_requests(n: int, max_tokens: int) -> list[ChatRequest]:
    return [ChatRequest(
        key=f"r{i:04d}",
        messages=(("user", f"Share fact number {i} about {TOPICS[i % len(TOPICS)]} as JSON."),),
        sampling=SamplingParams(max_tokens=max_tokens, seed=i), json_schema=SCHEMA)
        for i in range(n)]


def run_direct(backend: LocalBackend, cfg: LLMConfig, reqs: list[ChatRequest]
               ) -> tuple[int, float, float, int]:
    start, cpu = time.perf_counter(), time.process_time()
    tokens = failures = 0
    for i in range(0, len(reqs), cfg.batch_size):
        outcomes = generate_validated(backend, reqs[i:i + cfg.batch_size], cfg.retries,
                                      cfg.retry_temperature)
        tokens += sum(o.completion_tokens for o in outcomes)
        failures += sum(o.result is None for o in outcomes)
    return tokens, time.perf_counter() - start, time.process_time() - cpu, failures


def run_stage(cfg: LLMConfig, reqs: list[ChatRequest]) -> tuple[int, float, float, int]:
    start, cpu = time.perf_counter(), time.process_time()
    p = beam.Pipeline(options=PipelineOptions(runner="DirectRunner"))
    out = p | beam.Create(reqs, reshuffle=False) | Generate(cfg, stage="bench")
    _ = out[MAIN] | beam.combiners.Count.Globally()
    result = p.run()
    result.wait_until_finish()
    elapsed, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace("refinery.bench"))["counters"]}
    return counters.get("completion_tokens", 0), elapsed, cpu_s, counters.get("failures", 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="prompts per run")
    ap.add_argument("--max-tokens", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2, help="timed runs of each side")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (config default)")
    args = ap.parse_args()

    update = {"cache": False, "progress": False, "batch_size": args.batch_size}
    if args.threads:
        update["num_threads"] = args.threads
    cfg = LLMConfig().model_copy(update=update)
    reqs = make_requests(args.n, args.max_tokens)
    backend = LocalBackend(cfg)  # loads the model once for both sides (same process)
    run_direct(backend, cfg, reqs[:cfg.batch_size])  # warm-up: grammar compile, allocator

    rows = []
    for rep in range(args.reps):
        for side, fn in (("direct", lambda: run_direct(backend, cfg, reqs)),
                         ("stage", lambda: run_stage(cfg, reqs))):
            tok, sec, cpu_s, failed = fn()
            rows.append((side, rep, tok, sec, cpu_s, failed))
            print(f"rep {rep} {side}: {tok} tokens in {sec:.1f}s ({cpu_s:.1f} CPU s, "
                  f"{failed} dead-lettered)", file=sys.stderr, flush=True)

    print(f"{'side':8}{'rep':>4}{'tokens':>9}{'wall s':>9}{'CPU s':>9}{'tok/s':>9}{'tok/CPU s':>11}")
    for side, rep, tok, sec, cpu_s, _ in rows:
        print(f"{side:8}{rep:>4}{tok:>9}{sec:>9.1f}{cpu_s:>9.1f}{tok / sec:>9.1f}"
              f"{tok / cpu_s:>11.1f}")

    def rate(side: str, col: int) -> float:
        return sum(r[2] for r in rows if r[0] == side) / sum(r[col] for r in rows if r[0] == side)

    stage, direct = rate("stage", 3), rate("direct", 3)
    stage_cpu, direct_cpu = rate("stage", 4), rate("direct", 4)
    # wall-clock tokens/s is the headline; tokens per CPU second is steadier on a shared machine
    print(json.dumps({"bench": "llm_throughput", "prompts": args.n, "max_tokens": args.max_tokens,
                      "batch_size": args.batch_size, "reps": args.reps,
                      "pipeline_tokens_per_s": round(stage, 1),
                      "direct_tokens_per_s": round(direct, 1), "ratio": round(stage / direct, 3),
                      "pipeline_tokens_per_cpu_s": round(stage_cpu, 1),
                      "direct_tokens_per_cpu_s": round(direct_cpu, 1),
                      "cpu_ratio": round(stage_cpu / direct_cpu, 3)}))


if __name__ == "__main__":
    main()
