"""Issue #31 item 6: `llm.timeout_s` is the total deadline of one request (a server trickling
its answer is cut off at it), and `llm.max_run_s` bounds a run's model calls as a whole, so a
server that never stops sending cannot hold a run. The only clock in these tests is a guard
against a hang (pytest's timeout), never an assertion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability._fault_server import FaultServer
from tests.reliability._helpers import manifest_of, run_cli
from transforms.llm.api import ChatRequest
from transforms.llm.backend_openai import OpenAIBackend
from transforms.llm.config import LLMConfig

# the run's time for model calls: room for the run to reach its model calls on a loaded
# machine (then the held request waits for it)
MAX_RUN_S = 8


def test_a_trickled_answer_is_cut_off_at_timeout_s() -> None:
    with FaultServer(drip_s=4.0) as server:
        cfg = LLMConfig(backend="openai", base_url=server.base_url, model="m", timeout_s=1,
                        max_retries=0, api_key_env=None)
        backend = OpenAIBackend(cfg)
        try:
            [slow, fast] = backend.generate([
                ChatRequest(key="a", messages=(("user", "take your time [drip]"),)),
                ChatRequest(key="b", messages=(("user", "quick"),))])
        finally:
            backend.close()
    assert slow.error is not None and slow.error.startswith("timeout: no complete answer "
                                                            "within timeout_s=1")
    assert fast.error is None and fast.texts == ["Answer: quick"]


@pytest.mark.slow
def test_max_run_s_ends_a_run_held_by_a_server_that_never_stops_sending(tmp_path: Path,
                                                                        capsys) -> None:
    """The run (in this process: the deadline is the driver's, read by every backend call)
    sends the held request, which the server answers one byte at a time until max_run_s."""
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"question": q}) + "\n"
                             for q in ("Fine?", "Hold on [forever]", "Also fine?")))
    out = tmp_path / "out"
    with FaultServer() as server:
        block = {"backend": "openai", "base_url": server.base_url, "model": "m",
                 "timeout_s": 3600, "max_retries": 0, "max_run_s": MAX_RUN_S,
                 "api_key_env": None}
        sets = ["stages.respond.enabled=true", "stages.respond.n=1",
                "stages.respond.max_error_rate=1", f"llm={json.dumps(block)}",
                "emit.include_curated=false"]
        code, err = run_cli(capsys, [seeds], out, *[a for s in sets for a in ("--set", s)])
    assert code == 0, err
    assert any("[forever]" in seen for seen in server.seen)  # it was on the wire, held
    m = manifest_of(out)
    assert m["conservation"]["holds"] and m["synthesis"]["respond"]["deadletter"] >= 1
    dead = [json.loads(x) for x in (out / "deadletter" / "deadletter.jsonl").read_text()
            .splitlines()]
    assert any("[forever]" in d["raw"] for d in dead)  # the held request, cut at the deadline
    assert all(d["error"].startswith(
        "max_run_s: the run's time for model calls is over (llm.max_run_s)") for d in dead)
