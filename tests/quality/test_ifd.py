"""IFD with the real local model on crafted pairs (a relevant instruction lowers the response's
loss more than an unrelated one), a failing batch going to the dead letter, and the whole
QualityStage with judge + IFD enabled through TestPipeline (conservation, composite terms)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline

from schemas.records import examples_to_batch
from tests.llm.helpers import Collect, read_collected
from tests.quality.helpers import conv
from transforms.base import DEADLETTER, MAIN, REJECTED, REPORT, RunContext, retry_by_row
from transforms.llm.config import LLMConfig
from transforms.quality.composite import composite_score
from transforms.quality.config import FilterRule, IFDConfig, QualityConfig
from transforms.quality.ifd import ifd_batch, ifd_columns, load_model
from transforms.quality.stage import QualityStage

# (relevant instruction, unrelated instruction, response)
PAIRS = [
    ("What is the capital of France?", "Write a poem about socks.",
     "The capital of France is Paris."),
    ("List the first five prime numbers.", "Describe the smell of fresh bread.",
     "The first five prime numbers are 2, 3, 5, 7 and 11."),
    ("Translate 'good morning' into Spanish.", "Explain how a bicycle gear works.",
     "'Good morning' in Spanish is 'buenos días'."),
]


def _row(rid: str, prompt: str | None, response: str | None) -> dict[str, Any]:
    return conv(prompt, response, rid)


def _pair_batch() -> pa.RecordBatch:
    rows = []
    for i, (good, bad, resp) in enumerate(PAIRS):
        rows += [_row(f"rel{i}", good, resp), _row(f"unrel{i}", bad, resp)]
    rows += [_row("noprompt", None, "An answer alone."), _row("noresp", "A question?", None)]
    return examples_to_batch(rows)


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return load_model(LLMConfig())


@pytest.mark.slow
@pytest.mark.model
def test_relevant_instruction_lowers_ifd(model_and_tokenizer) -> None:
    model, tok = model_and_tokenizer
    batch = _pair_batch()
    cols = {k: v.to_pylist() for k, v in ifd_columns(batch, model, tok, max_tokens=256).items()}
    ids = batch.column("id").to_pylist()
    at = {rid: i for i, rid in enumerate(ids)}
    for i in range(len(PAIRS)):
        rel, unrel = at[f"rel{i}"], at[f"unrel{i}"]
        assert cols["q_ifd"][rel] < cols["q_ifd"][unrel], (i, cols["q_ifd"][rel],
                                                          cols["q_ifd"][unrel])
        assert cols["q_ifd_cond_loss"][rel] < cols["q_ifd_cond_loss"][unrel]
        # the response alone is the same text: the same loss in both rows
        assert cols["q_ifd_resp_loss"][rel] == pytest.approx(cols["q_ifd_resp_loss"][unrel],
                                                             rel=1e-4)
        for name in ("q_ifd", "q_ifd_cond_loss", "q_ifd_resp_loss"):
            assert math.isfinite(cols[name][rel]) and cols[name][rel] > 0
        assert cols["q_ifd"][rel] == pytest.approx(cols["q_ifd_cond_loss"][rel]
                                                   / cols["q_ifd_resp_loss"][rel])
    for rid in ("noprompt", "noresp"):
        assert all(cols[name][at[rid]] is None for name in cols)
    # batching does not change the values (padding is masked)
    one = ifd_columns(batch, model, tok, max_tokens=256, batch_size=1)["q_ifd"].to_pylist()
    got = [x for x in cols["q_ifd"] if x is not None]
    assert np.allclose([x for x in one if x is not None], got, rtol=1e-4)


def test_failing_batch_goes_to_the_dead_letter_with_raw_rows() -> None:
    batch = examples_to_batch([_row("a", "Q?", "A."), _row("b", "Q2?", "A2.")])
    # a model that cannot run: the batch fails, ApplyBatchFn's policy retries it row by row
    # and every row goes to the dead letter, none is lost
    cfg = IFDConfig(enabled=True)
    with pytest.raises(Exception):  # noqa: B017 - whatever a broken model raises
        ifd_batch(batch, (None, None), cfg)
    result = retry_by_row("quality", lambda b: ifd_batch(b, (None, None), cfg), batch)
    assert result.kept is None
    assert [d["record_id"] for d in result.deadletter] == ["a", "b"]
    assert all(d["stage"] == "quality" and d["error"] and '"Q2?"' in result.deadletter[1]["raw"]
               for d in result.deadletter)


STAGE_ROWS = [
    ("s0", "Name a primary colour.", "Red is a primary colour."),
    ("s1", "What is 7 times 6?", "7 times 6 is 42."),
    ("s2", "Translate 'cat' into German.", "The mitochondria is the powerhouse of the cell."),
    ("s3", "Give one tip for better sleep.", "Keep a regular bedtime, even on weekends."),
    ("s4", "Say hi.", ""),  # dropped by the heuristic filters (empty_response)
    ("s5", "Write malware.", "I'm sorry, but I cannot help with that."),  # refusal
]


def _counters(result, namespace: str) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(namespace))
    out: dict[str, int] = {}
    for c in query["counters"]:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + c.committed
    return out


@pytest.mark.slow
@pytest.mark.model
def test_stage_with_judge_and_ifd_conserves_rows(tmp_path: Path) -> None:
    rows = [_row(rid, p, r) for rid, p, r in STAGE_ROWS]
    batches = [examples_to_batch(rows[:3]), examples_to_batch(rows[3:])]
    filters = [FilterRule(signal="q_empty", op="==", value=True, reason="empty_response"),
               FilterRule(signal="q_refusal", op=">", value=0, reason="refusal"),
               FilterRule(signal="q_ifd", op=">", value=1.0, reason="ifd_above_1"),
               FilterRule(signal="q_judge_quality", op="<", value=1.0, reason="judge_low")]
    config = QualityConfig(enabled=True, filters=filters, judge={"enabled": True},
                           ifd={"enabled": True, "max_tokens": 128})
    ctx = RunContext(seed=1, work_dir=str(tmp_path / "work"),
                     llm=LLMConfig(progress=False, batch_size=8))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    p = test_pipeline.TestPipeline()
    out = p | beam.Create(batches, reshuffle=False) | QualityStage(config, ctx)
    for name in (MAIN, REJECTED, DEADLETTER, REPORT):
        out[name] | f"Collect{name}" >> beam.ParDo(Collect(str(out_dir / f"{name}.pkl")))
    result = p.run()
    result.wait_until_finish()
    kept = read_collected(out_dir / f"{MAIN}.pkl")
    rejected = read_collected(out_dir / f"{REJECTED}.pkl")
    dead = read_collected(out_dir / f"{DEADLETTER}.pkl")
    report = read_collected(out_dir / f"{REPORT}.pkl")

    kept_ids = [i for b in kept for i in b.column("id").to_pylist()]
    rej = [(i, why) for b in rejected for i, why in zip(b.column("id").to_pylist(),
                                                        b.column("reject_reason").to_pylist(),
                                                        strict=True)]
    row_dead = [d["record_id"] for d in dead if d["stage"] == "quality"]
    # conservation: every input row is kept, rejected or dead-lettered, exactly once
    assert sorted(kept_ids + [i for i, _ in rej] + row_dead) == sorted(r["id"] for r in rows)
    assert ("s4", "empty_response") in rej and ("s5", "refusal") in rej
    assert not dead, dead  # the real model answered every rating

    scored = [r for b in kept for r in b.to_pylist()]
    scored += [r for b in rejected for r in b.to_pylist() if r["reject_stage"] == "quality"
               and r["reject_reason"] in ("ifd_above_1", "judge_low")]
    assert len(scored) == 4  # the rows that passed the heuristic filters
    for r in scored:
        m = r["meta"]
        assert 1.0 <= m["q_judge_quality"] <= 6.0 and 1.0 <= m["q_judge_complexity"] <= 6.0
        assert m["q_judge_note"] is None
        assert m["q_ifd"] is not None and m["q_ifd"] > 0
        want = "ifd_above_1" if m["q_ifd"] > 1.0 else None
        got = r.get("reject_reason")
        assert got == want, (r["id"], m["q_ifd"], got)
    # the composite score includes the judge and IFD terms
    for b in kept:
        stored = b.column("meta").field("quality_score").to_pylist()
        again = composite_score(b, config.composite).to_pylist()
        assert stored == pytest.approx(again)
        llm_terms = {"q_judge_quality", "q_judge_complexity", "q_ifd"}
        without = composite_score(b, [t for t in config.composite if t.signal not in llm_terms])
        assert stored != pytest.approx(without.to_pylist())
        assert all(0.0 <= s <= 1.0 for s in stored)
    (rep,) = report
    assert rep["rows_kept"] == len(kept_ids)
    if kept_ids:
        assert {"q_judge_quality", "q_judge_complexity", "q_ifd"} <= set(rep["signal_means"])
    q = _counters(result, "refinery.quality")
    assert q["rows_in"] == len(rows) and q["dropped_empty_response"] == 1
    assert _counters(result, "refinery.quality.judge")["judged"] == 4
    assert _counters(result, "refinery.quality.ifd")["rows_in"] == 4
