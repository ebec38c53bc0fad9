"""LLM judge ratings: the logprob expectation on crafted logprob lists, the JSON fallback parser
on malformed answers, request building, dead-lettered calls keeping their rows (fault-injected
backend), and the real local model through Beam (in range, deterministic across two runs)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.records import examples_to_batch
from tests._hypothesis import examples
from tests.llm.helpers import Collect, read_collected
from tests.quality.helpers import conv
from transforms.base import DEADLETTER, MAIN, REJECTED, RunContext
from transforms.llm.api import ChatResult
from transforms.llm.backend_base import Generation
from transforms.llm.config import LLMConfig
from transforms.quality.config import JudgeConfig
from transforms.quality.judge import (
    JUDGE_STAGE,
    JudgeScores,
    answer_schema,
    attach_ratings,
    batch_key,
    expected_rating,
    judge_requests,
    logprob_score,
    parse_rating,
    parse_request_key,
    rating_position,
    result_score,
    split_turns,
    template_version,
)

# ---------------------------------------------------------------- logprob expectation (pure)


def test_expected_rating_is_the_mean_over_rating_tokens() -> None:
    probs = {"2": 0.5, "4": 0.3, "6": 0.2}
    cands = [(t, math.log(p)) for t, p in probs.items()]
    assert expected_rating(cands, 6) == pytest.approx(sum(int(t) * p for t, p in probs.items()))
    uniform = [(str(r), math.log(1 / 6)) for r in range(1, 7)]
    assert expected_rating(uniform, 6) == pytest.approx(3.5)
    assert expected_rating([("5", -0.01)], 6) == pytest.approx(5.0)


def test_expected_rating_renormalizes_and_ignores_non_ratings() -> None:
    # non-rating tokens, out-of-scale digits, -inf and None never count; the rest renormalize
    cands = [("3", math.log(0.2)), ("5", math.log(0.2)), ("the", math.log(0.3)),
             ("7", math.log(0.2)), ("0", -0.5), ("12", -0.1), ("4", -math.inf), ("2", None)]
    assert expected_rating(cands, 6) == pytest.approx(4.0)
    # " 5" and "5" are both the rating 5; the same token text counts once
    spaced = [("5", math.log(0.25)), (" 5", math.log(0.25)), ("1", math.log(0.5)),
              ("1", math.log(0.5))]
    assert expected_rating(spaced, 6) == pytest.approx((5 * 0.5 + 1 * 0.5) / 1.0)
    assert expected_rating([("a", -0.1), ("9", -0.2)], 6) is None
    assert expected_rating([], 6) is None
    # very unlikely tokens still give a finite expectation (no underflow)
    assert expected_rating([("2", -2000.0), ("4", -2000.0)], 6) == pytest.approx(3.0)


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(2, 9), st.lists(st.tuples(st.integers(0, 12), st.floats(-50, 0)),
                                   min_size=1, max_size=12))
def test_expected_rating_is_within_the_scale(scale: int, items: list[tuple[int, float]]) -> None:
    cands = [(str(r), lp) for r, lp in items]
    got = expected_rating(cands, scale)
    in_scale = [r for r, _ in items if 1 <= r <= scale]
    if not in_scale:
        assert got is None
    else:
        assert min(in_scale) - 1e-9 <= got <= max(in_scale) + 1e-9
    for r, lp in items:  # one rating token alone: its own value, whatever its probability
        if 1 <= r <= scale:
            assert expected_rating([(str(r), lp)], scale) == pytest.approx(r)


def _entry(token: str, top: dict[str, float]) -> dict[str, Any]:
    return {"token": token, "logprob": top.get(token, -5.0), "top": [[t, v] for t, v in top.items()]}


def test_logprob_score_reads_the_rating_position_of_a_json_answer() -> None:
    at_rating = {"4": math.log(0.6), "5": math.log(0.3), "x": math.log(0.1)}
    entries = [_entry('{"', {'{"': -0.1}), _entry("rating", {"rating": -0.01}),
               _entry('":', {'":': -0.01}), _entry(" ", {" ": -0.2, "3": -1.0}),
               _entry("4", at_rating), _entry(',"', {',"': -0.1}),
               _entry("reason", {"reason": -0.1}), _entry('":"', {'":"': -0.1}),
               _entry("6", {"6": -0.1, "1": -0.2}), _entry('"}', {'"}': -0.1})]
    assert rating_position([e["token"] for e in entries], 6) == (4, "")
    assert logprob_score(entries, 6) == pytest.approx((4 * 0.6 + 5 * 0.3) / 0.9)
    # the digit shares its token with the separator: alternatives are read after that prefix
    merged = [_entry('{"rating', {}), _entry('":2', {'":2': math.log(0.5), '":3': math.log(0.5),
                                                    '":"': -0.5})]
    assert rating_position([e["token"] for e in merged], 6) == (1, '":')
    assert logprob_score(merged, 6) == pytest.approx(2.5)
    # a prose answer: the first lone digit in the scale
    prose = [_entry("I", {}), _entry(" rate", {}), _entry(" it", {}), _entry(" 10", {}),
             _entry(" 3", {" 3": math.log(0.5), " 2": math.log(0.5)})]
    assert logprob_score(prose, 6) == pytest.approx(2.5)
    assert logprob_score([_entry("no", {}), _entry(" digits", {})], 6) is None
    assert logprob_score([], 6) is None and logprob_score(None, 6) is None


def test_result_score_prefers_logprobs_then_json_then_text() -> None:
    entries = [_entry('{"rating":', {}), _entry("5", {"5": math.log(0.5), "3": math.log(0.5)})]
    with_lp = ChatResult(key="k", texts=('{"rating":5,"reason":"ok"}',),
                         parsed=({"rating": 5, "reason": "ok"},), logprobs=(entries,))
    assert result_score(with_lp, 6, True) == (pytest.approx(4.0), "logprobs", None)
    assert result_score(with_lp, 6, False) == (5.0, "json", None)
    text_only = ChatResult(key="k", texts=("Rating: 2. Weak answer.",))
    assert result_score(text_only, 6, True) == (2.0, "text", None)
    bad = ChatResult(key="k", texts=("no idea",))
    score, method, error = result_score(bad, 6, True)
    assert score is None and method == "text" and error == "no_rating_in_answer"


# ---------------------------------------------------------------- JSON fallback parser (pure)

@pytest.mark.parametrize("text, want", [
    ('{"rating": 5, "reason": "clear"}', (5, "clear", None)),
    ('```json\n{"rating": 4, "reason": "fine"}\n```', (4, "fine", None)),
    ('Sure! Here it is: {"rating": 3, "reason": "ok"} Hope that helps.', (3, "ok", None)),
    ('{"score": 2, "reason": "old key"}', (2, "old key", None)),
    ('{"rating": "6", "reason": "string digit"}', (6, "string digit", None)),
    ('{"rating": 3.0, "reason": "integral float"}', (3, "integral float", None)),
    ('{"rating": 3, "reason": "cut sho', (3, "", None)),  # truncated: regex on the text
    ("Rating: 2/6 because it is vague", (2, "", None)),
    ("score = 5", (5, "", None)),
    ("4", (4, "", None)),
])
def test_parse_rating_reads_clean_and_noisy_answers(text: str, want: tuple) -> None:
    assert parse_rating(text, 6) == want


@pytest.mark.parametrize("text, error", [
    ("", "empty_answer"),
    (None, "empty_answer"),
    ("   \n", "empty_answer"),
    ("I cannot rate this.", "no_rating_in_answer"),
    ('{"reason": "forgot the rating"}', "no_rating_in_answer"),
    ('{"rating": 9, "reason": "too high"}', "rating_out_of_range: 9"),
    ('{"rating": 0}', "rating_out_of_range: 0"),
    ('{"rating": 4.5}', "rating_out_of_range: 4.5"),
    ('{"rating": "great"}', "rating_not_a_number: great"),
    ('{"rating": true}', "no_rating_in_answer"),
    ("It deserves a 10 out of 10", "no_rating_in_answer"),
    ("{{{{", "no_rating_in_answer"),
])
def test_parse_rating_reports_malformed_answers(text: str | None, error: str) -> None:
    rating, _, got = parse_rating(text, 6)
    assert rating is None and got == error


# ---------------------------------------------------------------- requests and attach (pure)

def _row(rid: str, prompt: str | None, response: str | None) -> dict[str, Any]:
    return conv(prompt, response, rid)


def test_split_turns_takes_the_last_assistant_turn() -> None:
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye?"},
            {"role": "assistant", "content": "Bye."}]
    prompt, response = split_turns(msgs)
    assert response == "Bye." and [m["content"] for m in prompt] == ["Be brief.", "Hi", "Hello",
                                                                      "Bye?"]
    assert split_turns([{"role": "user", "content": "q"}]) == ([{"role": "user", "content": "q"}],
                                                              "")
    assert split_turns(None) == ([], "")


def test_judge_requests_keys_seeds_schema_and_skips() -> None:
    batch = examples_to_batch([_row("a", "Name a colour.", "Blue."),
                               _row("b", "Explain " + "x" * 500, "y" * 500),
                               _row("c", None, "An answer without a question."),
                               _row("d", "A question without an answer.", None)])
    cfg = JudgeConfig(enabled=True, scale=5, max_chars=100)
    reqs, skipped = judge_requests(batch, cfg, seed=7, bkey=batch_key(batch))
    keys = [parse_request_key(r.key) for r in reqs]
    bkey = batch_key(batch)
    assert keys == [(bkey, 0, "quality"), (bkey, 0, "complexity"), (bkey, 1, "quality"),
                    (bkey, 1, "complexity"), (bkey, 3, "complexity")]
    assert skipped == {(2, "quality"): "quality: no_instruction",
                       (2, "complexity"): "complexity: no_instruction",
                       (3, "quality"): "quality: no_response"}
    first = reqs[0]
    text = first.messages[0][1]
    assert "Name a colour." in text and "Blue." in text and "1 to 5" in text
    assert first.json_schema == answer_schema(5)
    assert first.json_schema["properties"]["rating"]["maximum"] == 5
    assert first.logprobs and first.sampling.temperature == 0.0
    assert first.template_version == template_version("quality")
    assert template_version("quality") != template_version("complexity")
    # texts are clipped to max_chars
    assert "x" * 101 not in reqs[2].messages[0][1] and "y" * 101 not in reqs[2].messages[0][1]
    # seeds come from the run seed and the record id: stable, and differ per row and aspect
    again, _ = judge_requests(batch, cfg, seed=7, bkey=bkey)
    assert [r.sampling.seed for r in again] == [r.sampling.seed for r in reqs]
    assert len({r.sampling.seed for r in reqs}) == len(reqs)
    other, _ = judge_requests(batch, cfg, seed=8, bkey=bkey)
    assert [r.sampling.seed for r in other] != [r.sampling.seed for r in reqs]
    no_lp, _ = judge_requests(batch, cfg.model_copy(update={"use_logprobs": False}), 7, bkey)
    assert all(r.logprobs is None for r in no_lp)


def test_attach_ratings_writes_scores_and_notes() -> None:
    batch = examples_to_batch([_row("a", "q", "r"), _row("b", "q", "r")])
    out = attach_ratings(batch, ["quality", "complexity"],
                         {(0, "quality"): (4.2, None), (0, "complexity"): (2.0, None),
                          (1, "quality"): (None, "quality: llm_deadletter (x)")})
    meta = out.column("meta")
    assert meta.field("q_judge_quality").to_pylist() == [4.2, None]
    assert meta.field("q_judge_complexity").to_pylist() == [2.0, None]
    assert meta.field("q_judge_note").to_pylist() == [
        None, "quality: llm_deadletter (x); complexity: missing"]
    assert out.column("id").to_pylist() == ["a", "b"]


# ---------------------------------------------------------------- Beam (fault injection)


def run_judge(batches: list[pa.RecordBatch], config: JudgeConfig, ctx: RunContext,
              out_dir: Path, backend_factory: Any = None
              ) -> tuple[Any, list[dict], list[dict], list[Any]]:
    """(result, kept rows, dead-letter entries, rejections) of JudgeScores on `batches`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    main_path, dead_path = out_dir / "main.pkl", out_dir / "dead.pkl"
    rej_path = out_dir / "rejected.pkl"
    p = test_pipeline.TestPipeline()
    if backend_factory is not None:
        ctx = dataclasses.replace(ctx, backend_factory=backend_factory)
    out = (p | beam.Create(batches, reshuffle=False) | JudgeScores(config, ctx))
    out[MAIN] | "CollectMain" >> beam.ParDo(Collect(str(main_path)))
    out[DEADLETTER] | "CollectDead" >> beam.ParDo(Collect(str(dead_path)))
    out[REJECTED] | "CollectRejected" >> beam.ParDo(Collect(str(rej_path)))
    result = p.run()
    result.wait_until_finish()
    rows = [r for b in read_collected(main_path) for r in b.to_pylist()]
    return result, rows, read_collected(dead_path), read_collected(rej_path)


def judge_counters(result) -> dict[str, int]:
    query = result.metrics().query(MetricsFilter().with_namespace(f"refinery.{JUDGE_STAGE}"))
    out: dict[str, int] = {}
    for c in query["counters"]:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + c.committed
    return out


class _FaultyBackend:
    """Injects faults by prompt content: 'TIMEOUT' → backend error, 'GARBAGE' → an answer that
    never fits the schema; other prompts get a valid rating."""

    model_id = "fault-injection"

    def __init__(self, _config: LLMConfig):
        pass

    def generate(self, requests):
        out = []
        for req in requests:
            text = req.messages[0][1]
            if "TIMEOUT" in text:
                out.append(Generation(error="timeout: injected", raw=""))
            elif "GARBAGE" in text:
                out.append(Generation(texts=["<<not json>>"]))
            else:
                out.append(Generation(texts=[json.dumps({"rating": 4, "reason": "fine"})]))
        return out

    def close(self) -> None:
        pass


def test_failed_judge_calls_keep_their_rows_unreadable_ratings_reject_them(tmp_path: Path
                                                                        ) -> None:
    """The kit's failure policy: a failed call keeps its row with a null score (and its
    dead-letter entry); an unreadable rating rejects the row as `judge_unparseable`."""
    rows = [_row("ok1", "Name a colour.", "Blue."), _row("t1", "TIMEOUT here", "x."),
            _row("g1", "Say hi.", "GARBAGE"), _row("ok2", "Add 2 and 2.", "4."),
            _row("nq", None, "No question.")]
    batches = [examples_to_batch(rows[:3]), examples_to_batch(rows[3:])]
    llm = LLMConfig(cache=False, retries=1, progress=False)
    result, kept, dead, rejected = run_judge(
        batches, JudgeConfig(enabled=True, use_logprobs=False), RunContext(llm=llm), tmp_path,
        _FaultyBackend)
    by_id = {r["id"]: r["meta"] for r in kept}
    assert sorted(by_id) == ["nq", "ok1", "ok2", "t1"]  # every row but g1 is kept
    assert by_id["ok1"]["q_judge_quality"] == 4.0 and by_id["ok1"]["q_judge_complexity"] == 4.0
    assert by_id["ok1"]["q_judge_note"] is None and by_id["ok2"]["q_judge_note"] is None
    # TIMEOUT is in the instruction: both ratings fail; GARBAGE only in the response
    assert by_id["t1"]["q_judge_quality"] is None and by_id["t1"]["q_judge_complexity"] is None
    assert "llm_deadletter (timeout: injected)" in by_id["t1"]["q_judge_note"]
    assert by_id["nq"]["q_judge_quality"] is None
    assert by_id["nq"]["q_judge_note"] == "quality: no_instruction; complexity: no_instruction"
    # the dead letter holds one entry per failed call, stage and step named
    failed = sorted((e["stage"], e["step"], parse_request_key(e["record_id"])[2],
                     e["record_id"].rsplit(":", 1)[1]) for e in dead)
    assert failed == [(JUDGE_STAGE, "judge", "complexity", "t1"),
                      (JUDGE_STAGE, "judge", "quality", "t1")]
    # GARBAGE never fit the schema (after one re-ask): the row is rejected with the answer
    assert [(r.row["id"], r.reason) for r in rejected] == [("g1", "judge_unparseable")]
    detail = rejected[0].detail
    assert detail["step"] == "judge" and detail["aspect"] == "quality"
    assert detail["raw"] == "<<not json>>" and detail["error"].startswith("invalid_json")
    c = judge_counters(result)
    assert c["judge_failed"] == 1 and c["judged"] == 2 and c["judge_skipped"] == 1
    assert c["failures"] == 3
    assert c["score_json"] == 5


# ---------------------------------------------------------------- the real local model

REAL_ROWS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Write a haiku about autumn leaves.", "Red leaves drift and fall,\nwhispering to cold "
     "ground,\nautumn says goodbye."),
    ("Prove that the square root of 2 is irrational.", "banana"),
]


@pytest.mark.slow
@pytest.mark.model
def test_real_model_ratings_in_range_and_deterministic(tmp_path: Path) -> None:
    rows = [_row(f"real{i}", p, r) for i, (p, r) in enumerate(REAL_ROWS)]
    batches = [examples_to_batch(rows)]
    ctx = RunContext(seed=3, llm=LLMConfig(cache=False, progress=False, batch_size=8))
    cfg = JudgeConfig(enabled=True)
    runs = []
    for k in range(2):
        result, kept, dead, _ = run_judge(batches, cfg, ctx, tmp_path / f"run{k}")
        assert not dead, dead
        runs.append({r["id"]: (r["meta"]["q_judge_quality"], r["meta"]["q_judge_complexity"])
                     for r in kept})
        c = judge_counters(result)
        assert c["score_logprobs"] == 2 * len(rows) and c["judged"] == len(rows)
    first, second = runs
    assert sorted(first) == sorted(r["id"] for r in rows)
    for scores in first.values():
        for s in scores:
            assert s is not None and 1.0 <= s <= 6.0
    assert first == second  # seeded, temperature 0: identical floats on a rerun
