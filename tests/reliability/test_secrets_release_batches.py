"""Issue #13 items 8, 10 and 11: secrets echoed by an endpoint never reach a stored file or
the console; check_release accepts empty datasets and any split name; a failing row costs only
itself, not its batch (one policy for every batch stage)."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.util import assert_that, equal_to

import transforms.quality.core as core
from pipeline.release.check import check_release
from schemas.records import example_row, examples_to_batch
from tests.llm._loopback import LoopbackServer
from tests.reliability._helpers import run_cli, write_jsonl
from transforms.base import DEADLETTER, MAIN, RunContext
from transforms.quality.config import QualityConfig
from transforms.quality.stage import QualityStage

SECRET = "sk-test-0123456789abcdefSECRET"


class EchoHeaders(LoopbackServer):
    """An OpenAI-compatible endpoint that answers with the request's headers (a proxy that
    reflects them), so the API key comes back in the model's answer."""

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        content = "headers: " + json.dumps(dict(h.headers.items()))
        reply = {"id": "x", "object": "chat.completion", "model": body.get("model"),
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
        self.send_json(h, 200, json.dumps(reply).encode())


def test_an_echoed_api_key_is_redacted_everywhere(tmp_path: Path, capsys, monkeypatch,
                                                 caplog) -> None:
    monkeypatch.setenv("REFINERY_TEST_KEY", SECRET)
    src = write_jsonl(tmp_path / "in.jsonl", 4)
    out = tmp_path / "out"
    with EchoHeaders() as server:
        sets = ["llm.backend=openai", f"llm.base_url={server.base_url}",
                "llm.api_key_env=REFINERY_TEST_KEY", "llm.max_retries=0", "llm.retries=0",
                "stages.quality.enabled=true", "stages.quality.judge.enabled=true",
                "stages.quality.judge.use_logprobs=false", "stages.quality.filters=[]",
                "stages.quality.max_error_rate=1", "run.max_error_rate=1",
                "run.allow_empty=true"]
        code, err = run_cli(capsys, [src], out, *[a for s in sets for a in ("--set", s)])
    assert code == 0, err
    # the echo is no rating: each row is rejected as judge_unparseable with the raw answer
    # (the kit's policy), and that answer is stored redacted
    import pyarrow.parquet as pq

    rejected = pq.read_table(out / "rejected" / "quality.parquet").to_pylist()
    assert [r["reject_reason"] for r in rejected] == ["judge_unparseable"] * 4
    assert all("Bearer [REDACTED]" in r["reject_detail"] and SECRET not in r["reject_detail"]
               for r in rejected)
    stored = [p for p in out.rglob("*") if p.is_file()] + [
        p for p in (out / "current").resolve().rglob("*") if p.is_file()]
    assert stored
    for path in stored:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in err and SECRET not in caplog.text


def test_check_release_accepts_empty_datasets_and_other_splits(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 7)
    out = tmp_path / "out"
    assert run_cli(capsys, [src], out, "--set", "emit.split=validation")[0] == 0
    assert sorted((out / "preference").iterdir())[0].name.startswith("validation-")
    assert check_release(str(out))["rows"] == {"preference": {"validation": 0},
                                               "sft": {"validation": 7}}


def test_one_failing_row_costs_only_itself(monkeypatch) -> None:
    """Fault injection: the quality core raises on any batch holding row 'boom'; the stage
    retries row by row and dead-letters that row alone, the other 199 of its batch go on."""
    real = core.score_batch

    def faulty(batch: pa.RecordBatch, config: Any) -> Any:
        if "boom" in batch.column("id").to_pylist():
            raise RuntimeError("injected fault")
        return real(batch, config)

    monkeypatch.setattr(core, "score_batch", faulty)
    rows = [example_row(f"r{i:03d}" if i != 123 else "boom",
                        [{"role": "user", "content": f"Question {i}?"},
                         {"role": "assistant", "content": f"A helpful answer number {i}."}])
            for i in range(200)]
    cfg = QualityConfig(enabled=True, filters=[])
    with beam.Pipeline() as p:
        out = p | beam.Create([examples_to_batch(rows)]) | QualityStage(cfg, RunContext())
        assert_that(out[MAIN] | "N" >> beam.Map(lambda b: b.num_rows)
                    | beam.CombineGlobally(sum), equal_to([199]), label="kept")
        assert_that(out[DEADLETTER] | beam.Map(lambda d: (d["record_id"], d["error"])),
                    equal_to([("boom", "RuntimeError: injected fault")]), label="dead")


def test_the_response_cache_stores_no_secret(tmp_path: Path, monkeypatch) -> None:
    """An answer echoing a secret variable's value is not cached (never stored altered)."""
    from transforms.llm.cache import read_entries, write_entries

    monkeypatch.setenv("REFINERY_TEST_KEY", SECRET)
    entries = [{"key": "k", "texts": [f"echo: {SECRET}"]}, {"key": "j", "texts": ["fine"]}]
    path = write_entries(str(tmp_path), entries, secret_envs=["REFINERY_TEST_KEY"])
    assert SECRET not in Path(path).read_text()
    assert [e["texts"] for _, e in read_entries(path)] == [["fine"]]
