"""The one report style of the model stages: pure `empty/add/merge/finish`, driven here
without Beam; folding the events in two halves and merging gives the one-pass report. And the
stage name a stage module uses is its registry name."""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa

from pipeline.stages import STAGES
from schemas.records import example_row, examples_to_batch, with_meta
from transforms.base import reject_rows
from transforms.quality import report as quality_report
from transforms.respond import report as respond_report
from transforms.tag_instruct import report as tag_report


def _fold(empty: Callable[[], Any], add: Callable[[Any, Any], Any],
          merge: Callable[[list[Any]], Any], events: list[Any]) -> tuple[Any, Any]:
    """(one pass, two halves merged) of `events`."""
    def run(part: Iterable[Any]) -> Any:
        acc = empty()
        for e in part:
            acc = add(acc, copy.deepcopy(e))
        return acc
    half = len(events) // 2
    return run(events), merge([run(events[:half]), run(events[half:])])


def test_respond_report_counts_every_seed_once() -> None:
    events = [("seeds", None, 5), ("not_prompt_only", None, 1), ("answered", None, 2),
              ("rejected", "empty_response", 1), ("rejected", "judge_unparseable", 1),
              ("pairs", None, 2)]
    one, two = _fold(respond_report.empty, respond_report.add, respond_report.merge, events)
    assert respond_report.finish(one) == respond_report.finish(two) == {
        "stage": "respond", "seeds": 5, "not_prompt_only": 1, "answered": 2, "pairs": 2,
        "deadletter": 0, "rejected": {"empty_response": 1, "judge_unparseable": 1},
        "conserved": True}
    lost = respond_report.finish(respond_report.add(one, ("seeds", None, 1)))
    assert not lost["conserved"]


def test_tag_instruct_report_folds_step_events() -> None:
    events = [{"round": 1, "kind": "input"}, {"round": 1, "kind": "input"},
              {"round": 1, "kind": "input"},
              {"round": 1, "kind": "compressed", "tags": ["a", "b", "c"]},
              {"round": 1, "kind": "rejected", "reason": "compress_unparseable"},
              {"round": 1, "kind": "deadletter", "step": "compress", "candidate": None},
              {"round": 1, "kind": "deadletter", "step": "expand", "candidate": "1"},
              {"round": 1, "kind": "accepted", "tags_after": ["a", "d"]}]
    one, two = _fold(tag_report.empty, tag_report.add, tag_report.merge, events)
    r1, r2 = tag_report.finish(one, 1), tag_report.finish(two, 1)
    assert r1 == r2
    (rnd,) = r1["rounds"]
    assert (rnd["inputs"], rnd["accepted"], rnd["rejected"], rnd["deadletter"]) == (3, 1, 1, 1)
    assert rnd["conserved"] and rnd["rejected_by_reason"] == {"compress_unparseable": 1}
    assert rnd["deadletter_by_step"] == {"compress": 1, "expand_candidate": 1}


def _batch(ids: list[str], scores: list[float]) -> pa.RecordBatch:
    rows = [example_row(i, [{"role": "user", "content": "q"},
                            {"role": "assistant", "content": "a"}]) for i in ids]
    return with_meta(examples_to_batch(rows), q_judge_quality=pa.array(scores, pa.float64()))


def test_quality_report_means_and_drops() -> None:
    kept = [_batch(["a", "b"], [4.0, 6.0]), _batch(["c"], [2.0])]
    dropped = reject_rows(_batch(["d"], [1.0]), "quality", "judge_unparseable")
    items = [quality_report.batch_summary(b) for b in kept]
    items.append(quality_report.rejected_summary(dropped))
    one, two = _fold(quality_report.empty, quality_report.add, quality_report.merge, items)
    out = quality_report.finish(one)
    assert out == quality_report.finish(two)
    assert out["rows_kept"] == 3 and out["signal_means"]["q_judge_quality"] == 4.0
    assert out["drops"] == {"judge_unparseable": {"unknown": 1}}


def test_stage_modules_use_their_registry_name() -> None:
    """Where a stage's module names its stage (STAGE), it is the registry's name."""
    named = 0
    for spec in STAGES:
        module = importlib.import_module(spec.target.split(":")[0])
        if hasattr(module, "STAGE"):
            named += 1
            assert spec.name == module.STAGE, spec.target
    assert named >= 6
