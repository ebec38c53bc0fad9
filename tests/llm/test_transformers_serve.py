"""A synthesis stage end to end against a real OpenAI-compatible server: `transformers serve`
(extra `serving`: transformers[serving] + openai) serving the locally converted SmolLM2 folder
on 127.0.0.1. The request's `model` must be the served path. The server ignores
`response_format` (it logs "Ignoring unsupported fields"), so answers are unconstrained: the
serving layer parses and validates them, and whatever the 135M model writes, every seed ends
in exactly one output."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import httpx
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas.records import example_row, examples_to_batch
from transforms.base import DEADLETTER, EXAMPLES, REJECTED, REPORT, RunContext
from transforms.compound.config import CompoundConfig
from transforms.compound.core import parse_key
from transforms.llm.config import LLMConfig, LocalLLMConfig

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, str, Path]]:
    """(base URL, served model path, server log) of a `transformers serve` process."""
    from transforms.llm.local_model import local_model_path

    path = local_model_path(LocalLLMConfig())
    exe = Path(sys.executable).parent / "transformers"
    exe = str(exe) if exe.exists() else shutil.which("transformers")
    assert exe, "the `transformers` command is missing: install the `serving` extra"
    port = _free_port()
    log = tmp_path_factory.mktemp("tserve") / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [exe, "serve", path, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
             "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None, f"transformers serve exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, f"transformers serve did not start: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        yield f"{base}/v1", path, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _outcomes(out) -> beam.PCollection:
    rows = lambda b: b.to_pylist()  # noqa: E731
    return ((out[EXAMPLES] | "ex" >> beam.FlatMap(rows)
             | "tex" >> beam.Map(lambda r: ("examples", r["meta"]["seed_id"], r)),
             out[REJECTED] | "rej" >> beam.FlatMap(rows)
             | "trej" >> beam.Map(lambda r: ("rejected", r["meta"]["seed_id"], r)),
             out[DEADLETTER]
             | "tdl" >> beam.Map(lambda d: ("deadletter", parse_key(d["record_id"])[2], d)),
             out[REPORT] | "trep" >> beam.Map(lambda d: ("report", None, d)))
            | "all" >> beam.Flatten())


def _check(items, seeds: set[str], model: str) -> None:
    ends = sorted(seed for kind, seed, _ in items if kind != "report")
    assert ends == sorted(seeds), items  # each seed in exactly one output
    for kind, _, item in items:
        if kind == "examples":
            assert item["meta"]["lineage"]["model"] == model
            assert len(item["meta"]["sub_answers"]) == len(item["meta"]["sub_questions"]) >= 2
        elif kind == "rejected":
            assert item["reject_reason"] and json.loads(item["reject_detail"])["check"]
        elif kind == "deadletter":
            assert item["error"] and json.loads(item["raw"])["messages"]
    (report,) = [item for kind, _, item in items if kind == "report"]
    assert report["seeds"] == len(seeds)
    assert report["accepted"] + report["rejected"] + report["deadletter"] == len(seeds)


def test_compound_stage_against_transformers_serve(served, tmp_path) -> None:
    from transforms.compound.stage import CompoundStage

    base_url, path, log = served
    rows = [example_row("eiffel", [{"role": "user", "content": "When was the Eiffel Tower "
                                    "completed?"},
                                   {"role": "assistant", "content": "In March 1889."}],
                        context="The Eiffel Tower in Paris was completed in March 1889.")]
    # one seed, tiny budgets: the claim holds whatever the model writes (a cut-off answer is
    # rejected as unparseable), and the CPU server takes seconds per request (its long prompt
    # and each token)
    cfg = CompoundConfig(enabled=True, max_sub_questions=2,
                         category_weights={"Factual-Statement": 1.0, "Cause-and-Effect": 1.0},
                         sampling={"question_max_tokens": 16, "answer_max_tokens": 16,
                                   "question_check_max_tokens": 16,
                                   "answer_check_max_tokens": 16})
    llm = LLMConfig(backend="openai", model=path, base_url=base_url, api_key_env=None,
                    timeout_s=120, max_retries=1, concurrency=4, retries=0, cache=False,
                    progress=False)
    ctx = RunContext(seed=0, work_dir=str(tmp_path), llm=llm)
    with TestPipeline() as p:
        out = p | beam.Create([examples_to_batch(rows)]) | CompoundStage(cfg, ctx)
        assert_that(_outcomes(out),
                    lambda items: _check(items, {"eiffel"}, f"openai:{path}"))
    served_calls = log.read_text().count('"POST /v1/chat/completions HTTP/1.1" 200')
    assert served_calls >= 1  # the seed's question step reached the real server
