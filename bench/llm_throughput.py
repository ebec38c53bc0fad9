"""Completion tokens/s of the local LLM through the Beam stage vs direct backend calls.

Same prompts, same batch size, same process (the model is loaded once and warmed up before
timing); the cache is off so every request reaches the model. Runs alternate (direct, stage,
direct, stage, ...) so load on a shared machine hits both sides alike. The stage pays for
Beam: keying, batching, RunInference, validation, routing. Prints a table, then one JSON line:
pipeline_tokens_per_s, direct_tokens_per_s, ratio (pipeline / direct; target >= 0.9).

    .venv/bin/python bench/llm_throughput.py [--n 64] [--max-tokens 48] [--batch-size 32]
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


def run_direct(backend: LocalBackend, cfg: LLMConfig, reqs: list[ChatRequest]) -> tuple[int, float]:
    start = time.perf_counter()
    tokens = 0
    for i in range(0, len(reqs), cfg.batch_size):
        outcomes = generate_validated(backend, reqs[i:i + cfg.batch_size], cfg.retries,
                                      cfg.retry_temperature)
        tokens += sum(o.completion_tokens for o in outcomes)
    return tokens, time.perf_counter() - start


def run_stage(cfg: LLMConfig, reqs: list[ChatRequest]) -> tuple[int, float, int]:
    start = time.perf_counter()
    p = beam.Pipeline(options=PipelineOptions(runner="DirectRunner"))
    out = p | beam.Create(reqs, reshuffle=False) | Generate(cfg, stage="bench")
    _ = out[MAIN] | beam.combiners.Count.Globally()
    result = p.run()
    result.wait_until_finish()
    elapsed = time.perf_counter() - start
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(
        MetricsFilter().with_namespace("refinery.bench"))["counters"]}
    return counters.get("completion_tokens", 0), elapsed, counters.get("failures", 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="prompts per run")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=32)
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
        d_tok, d_s = run_direct(backend, cfg, reqs)
        rows.append(("direct", rep, d_tok, d_s))
        p_tok, p_s, failures = run_stage(cfg, reqs)
        rows.append(("stage", rep, p_tok, p_s))
        print(f"rep {rep}: direct {d_tok} tok in {d_s:.1f}s, stage {p_tok} tok in {p_s:.1f}s "
              f"({failures} failed)", file=sys.stderr, flush=True)

    print(f"{'side':8}{'rep':>4}{'tokens':>9}{'seconds':>10}{'tok/s':>9}")
    for side, rep, tok, sec in rows:
        print(f"{side:8}{rep:>4}{tok:>9}{sec:>10.2f}{tok / sec:>9.1f}")
    direct = sum(r[2] for r in rows if r[0] == "direct") / sum(r[3] for r in rows if r[0] == "direct")
    stage = sum(r[2] for r in rows if r[0] == "stage") / sum(r[3] for r in rows if r[0] == "stage")
    print(json.dumps({"bench": "llm_throughput", "prompts": args.n, "max_tokens": args.max_tokens,
                      "batch_size": args.batch_size, "reps": args.reps,
                      "pipeline_tokens_per_s": round(stage, 1),
                      "direct_tokens_per_s": round(direct, 1), "ratio": round(stage / direct, 3)}))


if __name__ == "__main__":
    main()
