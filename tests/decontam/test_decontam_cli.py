"""configs/decontam.yaml end to end through the CLI: ingest → decontam → emit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from decontam_helpers import BENCH_DIR, gsm_questions

from pipeline.cli import main
from pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "decontam.yaml"


def test_config_validates_and_lists_benchmarks() -> None:
    cfg = load_config(CONFIG, inputs=["x.jsonl"])
    dc = cfg.stages.decontam
    assert dc.enabled and [b.name for b in dc.benchmarks] == ["gsm8k", "math500", "humaneval"]
    assert [r.name for r in dc.rules] == ["tulu3", "gpt3"]
    replaced = load_config(CONFIG, inputs=["x.jsonl"], overrides=[
        "stages.decontam.benchmarks=[{name: mini, path: a.jsonl, preset: gsm8k}]",
        "stages.decontam.rules=[gpt3]"])
    assert [b.name for b in replaced.stages.decontam.benchmarks] == ["mini"]
    assert [r.name for r in replaced.stages.decontam.rules] == ["gpt3"]


@pytest.mark.slow
def test_cli_checks_a_file(tmp_path: Path) -> None:
    q = gsm_questions()
    rows = [{"instruction": q[0], "input": "", "output": "36"},                    # verbatim
            {"instruction": q[3].replace("150", "240"), "input": "", "output": "x"},  # numbers
            {"instruction": "Write a haiku about rain.", "input": "", "output": "Drops."},
            {"instruction": "How many dollars does she earn each morning selling eggs?",
             "input": "", "output": "It depends."}]
    src = tmp_path / "train.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    bench = (f"stages.decontam.benchmarks=[{{name: gsm8k, path: {BENCH_DIR / 'mini_gsm8k.jsonl'}}},"
             f" {{name: humaneval, path: {BENCH_DIR / 'mini_humaneval.jsonl'}}}]")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        rc = main(["run", str(CONFIG), "--input", str(src), "--out", str(out), "--set", bench])
    finally:
        os.chdir(cwd)
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["conservation"]["holds"]
    assert manifest["conservation"]["records_in"] == 4
    assert manifest["conservation"]["rejected"] == 2
    rejected = pq.read_table(out / "rejected" / "decontam.parquet").to_pylist()
    reasons = sorted((r["messages"][0]["content"][:20], r["reject_reason"]) for r in rejected)
    assert reasons == sorted([(q[0][:20], "contaminated_tulu3"),
                              (q[3][:20], "contaminated_tulu3")])
    report = manifest["reports"]["decontam"]
    assert report["benchmarks"]["gsm8k"]["item_ids_hit"] == ["0", "3"]
    assert report["benchmarks"]["humaneval"]["rows_flagged"] == 0
