"""Prompt-only rows (ending with a user turn) in the quality stage's pure core: response
signals are null (not zero, not errors), filters never drop them for a missing response,
the composite score is null, the LLM judge rates only their complexity."""

from __future__ import annotations

import pyarrow as pa

from schemas.records import example_row, examples_to_batch, meta_field
from tests.quality.test_signals import assert_matches_reference
from transforms.quality.config import JudgeConfig, QualityConfig
from transforms.quality.core import heuristic_batch
from transforms.quality.judge import judge_requests, split_turns
from transforms.quality.signals import PROMPT_ONLY_NULL, SIGNAL_TYPES, compute_signals


def msgs(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in turns]


ROWS = [
    example_row("p1", msgs(("user", "Write a haiku about rain, contact me at a@b.org."))),
    example_row("full", msgs(("user", "Say hi."), ("assistant", "Hi there!"))),
    example_row("p2", msgs(("system", "Be brief."), ("user", "Explain tides."))),
    example_row("multi", msgs(("user", "Name a fruit."), ("assistant", "Apple."),
                              ("user", "Another one?"))),
    example_row("empty", msgs(("user", "Say something."), ("assistant", "  "))),
]


def test_response_signals_are_null_on_prompt_only_rows_only() -> None:
    arrays = compute_signals(examples_to_batch(ROWS))
    prompt_only = [True, False, True, True, False]
    for name in SIGNAL_TYPES:
        values = arrays[name].to_pylist()
        for value, po in zip(values, prompt_only, strict=True):
            assert (value is None) == (po and name in PROMPT_ONLY_NULL), (name, value)
    assert arrays["q_prompt_words"].to_pylist()[0] == 9
    assert arrays["q_pii_email"].to_pylist()[0] == 1  # PII is still looked for in the prompt
    assert "q_empty" in PROMPT_ONLY_NULL and "q_prompt_chars" not in PROMPT_ONLY_NULL
    assert_matches_reference(ROWS)


def test_default_filters_keep_prompt_only_rows_and_score_them_null() -> None:
    result = heuristic_batch(examples_to_batch(ROWS), QualityConfig(enabled=True))
    assert not result.deadletter
    kept = result.kept
    assert kept.column("id").to_pylist() == ["p1", "full", "p2", "multi"]
    scores = dict(zip(kept.column("id").to_pylist(),
                      meta_field(kept, "quality_score").to_pylist(), strict=True))
    assert scores["full"] is not None and scores["p1"] is scores["p2"] is scores["multi"] is None
    rejected = pa.Table.from_batches(result.rejected) if isinstance(result.rejected, list) \
        else result.rejected
    assert rejected.column("reject_reason").to_pylist() == ["empty_response"]


def test_judge_rates_complexity_of_the_pending_prompt_and_skips_quality() -> None:
    assert split_turns(ROWS[3]["messages"]) == (ROWS[3]["messages"], "")
    batch = examples_to_batch(ROWS[:4])
    requests, skipped = judge_requests(batch, JudgeConfig(enabled=True), 0, "b")
    asked = {(r.key.split(":")[1], r.key.split(":")[2]) for r in requests}
    assert asked == {("0", "complexity"), ("1", "complexity"), ("1", "quality"),
                     ("2", "complexity"), ("3", "complexity")}
    assert skipped == {(0, "quality"): "quality: no_response", (2, "quality"): "quality: no_response",
                       (3, "quality"): "quality: no_response"}
    multi = next(r for r in requests if r.key.startswith("b:3:complexity"))
    assert "Another one?" in multi.messages[0][1]
