"""Token accounting: per-step and per-stage rows from the serving layer's counters, read from a
real run through two steps against the loopback server (one of them partly cached), and the
table in the run report."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.report.sections import llm_usage as report_rows
from tests.llm._openai_server import ChatServer
from transforms.base import MAIN
from transforms.llm.api import ChatRequest
from transforms.llm.config import LLMConfig
from transforms.llm.generate import Generate
from transforms.llm.usage import llm_usage, query_counters

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


def test_rows_and_totals_from_counters():
    usage = llm_usage({
        "refinery.compound.question": {"requests": 10, "cache_hits": 2, "model_calls": 9,
                                       "prompt_tokens": 400, "completion_tokens": 300,
                                       "generate_ms": 2000, "failures": 1},
        "refinery.compound.answer": {"requests": 8, "prompt_tokens": 100,
                                     "completion_tokens": 100, "generate_ms": 2000},
        "refinery.judge": {"requests": 4, "cache_hits": 4},
        "refinery.dedup": {"dropped_exact": 3},  # not an LLM step
    })
    assert set(usage) == {"compound", "judge"}
    q = usage["compound"]["steps"]["question"]
    assert (q["requests_per_s"], q["completion_tokens_per_s"]) == (4.0, 150.0)
    total = usage["compound"]
    assert (total["requests"], total["cache_hits"], total["prompt_tokens"],
            total["completion_tokens"], total["failures"]) == (18, 2, 500, 400, 1)
    assert total["requests_per_s"] == 4.0 and total["completion_tokens_per_s"] == 100.0
    assert usage["judge"]["steps"]["-"]["requests_per_s"] is None  # all from the cache


def test_usage_of_a_real_two_step_run(tmp_path):
    with ChatServer(delay_s=0.01) as server:
        cfg = LLMConfig(backend="openai", model="m", base_url=server.base_url, api_key_env=None,
                        cache=True, cache_dir=str(tmp_path / "c"), progress=False)

        def run() -> dict:
            p = TestPipeline()
            asked = (p | beam.Create([ChatRequest(key=f"k{i}", messages=(("user", f"q{i}"),),
                                                  json_schema=SCHEMA) for i in range(6)])
                     | "Ask" >> Generate(cfg, stage="syn.ask"))
            _ = (asked[MAIN]
                 | beam.Map(lambda r: ChatRequest(key=r.key, messages=(("user", r.texts[0]),)))
                 | "Check" >> Generate(cfg, stage="syn.check"))
            result = p.run()
            result.wait_until_finish()
            return llm_usage(query_counters(result))

        first, second = run(), run()
    ask, check = first["syn"]["steps"]["ask"], first["syn"]["steps"]["check"]
    assert (ask["requests"], ask["model_calls"], ask["cache_hits"]) == (6, 6, 0)
    assert check["requests"] == 6 and ask["prompt_tokens"] > 0 and check["completion_tokens"] > 0
    assert ask["requests_per_s"] > 0 and first["syn"]["completion_tokens_per_s"] > 0
    assert second["syn"]["cache_hits"] == 12 and second["syn"]["model_calls"] == 0
    rows = {r["scope"]: r for r in report_rows({"llm": first})}
    assert set(rows) == {"syn", "syn.ask", "syn.check"}
    assert rows["syn.ask"]["requests"] == 6 and rows["syn"]["completion_tokens"] > 0


def test_no_llm_steps_no_rows():
    assert report_rows({"llm": {}}) == [] and report_rows({}) == []
