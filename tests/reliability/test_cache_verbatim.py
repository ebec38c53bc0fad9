"""Issue #31 item 2: the response cache stores what the model said, byte for byte. A rerun
served from the cache publishes the same answers as the run that asked the model; redaction is
for what Refinery writes about errors and configuration, never for model outputs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from tests.llm._loopback import LoopbackServer
from tests.reliability._fault_server import answer_bytes
from tests.reliability._helpers import run_cli

ANSWER = "A basic understanding of arithmetic helps. The secret: practice daily. api_key: sk-abcdefgh12"


class Prose(LoopbackServer):
    """Answers every request with ANSWER (ordinary prose that looks like secrets to a regex)."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        with self.lock:
            self.calls += 1
        self.send_json(h, 200, answer_bytes(body.get("model", ""), ANSWER))


def _answers(out: Path) -> list[str]:
    rows = [r for p in sorted((out / "sft").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return [m["content"] for r in rows for m in r["messages"] if m["role"] == "assistant"]


def test_a_rerun_from_the_cache_publishes_the_models_answers_unaltered(tmp_path: Path,
                                                                       capsys) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"question": f"How do I get better at sums, {i}?"}) + "\n"
                             for i in range(3)))
    out = tmp_path / "out"
    with Prose() as server:
        block = {"backend": "openai", "base_url": server.base_url, "max_retries": 0,
                 "model": "responder"}
        sets = ["stages.respond.enabled=true", "stages.respond.n=1",
                f"llm={json.dumps(block)}", "emit.include_curated=false"]
        args = [a for s in sets for a in ("--set", s)]
        code, err = run_cli(capsys, [seeds], out, *args)
        assert code == 0, err
        first, calls = _answers(out), server.calls
        assert first == [ANSWER] * 3 and calls == 3
        code, err = run_cli(capsys, [seeds], out, *args)
        assert code == 0, err
        assert server.calls == calls  # served from the cache: no model call
    assert _answers(out) == first
    cached = [json.loads(x) for p in (out / "_work" / "llm_cache").rglob("*.jsonl")
              for x in p.read_text().splitlines()]
    assert cached and all(e["texts"] == [ANSWER] for e in cached)
