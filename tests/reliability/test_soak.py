"""Issue #31 soak test: five short runs at once against one fault-injecting server (500s, 429
with Retry-After, slow drips cut by timeout_s, dropped connections): three into their own
folders, two into the same folder. Every record is accounted for in each published manifest,
no run outlives its deadline (llm.max_run_s, plus a guard for start-up), and exactly one of the
two same-folder runs publishes (the other is refused by the lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability._fault_server import FaultServer
from tests.reliability._helpers import OFF, manifest_of

ROOT = Path(__file__).resolve().parents[2]
SEEDS = 6
MAX_RUN_S = 90
GUARD_S = MAX_RUN_S + 200  # start-up and writing on a loaded machine; a hang only trips it
FAULTS = ("500", "ok", "429", "drip", "drop", "ok", "500", "ok")


def _start(seeds: Path, out: Path, base_url: str) -> subprocess.Popen:
    block = {"backend": "openai", "base_url": base_url, "model": "m", "timeout_s": 2,
             "max_retries": 4, "backoff_base_s": 0.1, "backoff_max_s": 1,
             "max_run_s": MAX_RUN_S, "api_key_env": None, "concurrency": 4}
    sets = ["stages.respond.enabled=true", "stages.respond.n=1",
            "stages.respond.max_error_rate=1", f"llm={json.dumps(block)}",
            "emit.include_curated=false"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "ingest", str(seeds), "--out", str(out), *OFF,
         *[a for s in sets for a in ("--set", s)]],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_five_concurrent_runs_against_a_faulty_server(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"question": f"Soak question {i}?"}) + "\n"
                             for i in range(SEEDS)))
    outs = [tmp_path / "a", tmp_path / "b", tmp_path / "c", tmp_path / "shared",
            tmp_path / "shared"]
    with FaultServer(script=lambda n: FAULTS[n % len(FAULTS)], drip_s=4.0) as server:
        procs = [_start(seeds, out, server.base_url) for out in outs]
        results = []
        for proc in procs:
            try:
                _, err = proc.communicate(timeout=GUARD_S)
            except subprocess.TimeoutExpired:
                for p in procs:
                    p.kill()
                pytest.fail("a run hung past its deadline")
            results.append((proc.returncode, err))
        assert server.calls > 0, results
    for code, err in results[:3]:
        assert code == 0, err
    shared = sorted(code for code, _ in results[3:])
    assert shared == [0, 3], results[3:]
    refused = next(err for code, err in results[3:] if code == 3)
    assert "another run is writing into" in refused
    for out in outs[:4]:
        m = manifest_of(out)
        c = m["conservation"]
        assert c["holds"] and c["records_in"] == SEEDS, c
        syn = m["synthesis"]["respond"]
        # every seed asked once: answered (published) or dead-lettered with its reason
        assert syn["out_sft"] + syn["rejected"] + syn["deadletter"] == SEEDS, syn
        dead = out / "deadletter" / "deadletter.jsonl"
        lines = dead.read_text().splitlines() if dead.exists() else []
        assert len([x for x in lines if json.loads(x)["stage"].startswith("respond")]) == \
            syn["deadletter"]
