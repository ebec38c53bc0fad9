"""Helpers shared by the decontam tests (imported by name): fixture benchmarks, batches."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.records import example_row, examples_to_batch
from transforms.decontam.benchmarks import BenchmarkItems, load_benchmarks
from transforms.decontam.config import BenchmarkSpec

BENCH_DIR = Path(__file__).resolve().parents[2] / "data" / "benchmarks"


def fixture_specs() -> list[BenchmarkSpec]:
    return [
        BenchmarkSpec(name="gsm8k", path=str(BENCH_DIR / "mini_gsm8k.jsonl")),
        BenchmarkSpec(name="humaneval", path=str(BENCH_DIR / "mini_humaneval.jsonl")),
        BenchmarkSpec(name="mt_bench", path=str(BENCH_DIR / "mini_mt_bench.json")),
        BenchmarkSpec(name="mmlu", path=str(BENCH_DIR / "mini_mmlu.csv")),
    ]


def gsm_questions() -> list[str]:
    lines = (BENCH_DIR / "mini_gsm8k.jsonl").read_text().splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def make_batch(rows: list[tuple[str, str]], answer: str = "Sure, here is the answer."):
    """(id, user prompt) pairs → an Example batch with one assistant reply each."""
    return examples_to_batch([
        example_row(rid, [{"role": "user", "content": prompt},
                          {"role": "assistant", "content": answer}])
        for rid, prompt in rows])


def fixture_items() -> BenchmarkItems:
    return load_benchmarks(fixture_specs())
