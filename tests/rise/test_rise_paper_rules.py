"""The paper mode's pure rules, case by case against the authors' code as read in kaishxu/RISE:
step splitting on "\\nStep k:", their sentence split and last-<=4-sentences rule, the error
types a text allows, the phrase filters and their wrong/correct exemption, fenced edit
extraction, \\boxed{} removal, and grading (DeepSeek-Math's extraction chain, GSM8K gold)."""

from __future__ import annotations

import random

import pytest

from transforms.io.adapters import adapt_row
from transforms.rise import paper_core as P
from transforms.rise.paper_grade import extract_answers, grade_paper

SOL = ("Let's think step by step.\nStep 1: We add. 2 + 3 = 5.\nStep 2: Then double it: "
       "5 * 2 = 10.\nStep 3: The answer is $\\boxed{10}$.")


def test_step_splits_keep_the_marker_in_the_prefix() -> None:
    splits = P.step_splits(SOL)
    assert [s[0] for s in splits] == ["1", "2", "3"]
    k, prefix, chosen, last = splits[1]
    assert prefix == "Let's think step by step.\nStep 1: We add. 2 + 3 = 5.\nStep 2:"
    assert chosen == " Then double it: 5 * 2 = 10." and not last
    assert splits[2][3] and splits[2][2] == " The answer is $\\boxed{10}$."
    assert all(p + c == SOL[:len(p + c)] for _, p, c, _ in splits)


def test_their_sentence_split_and_the_last_four() -> None:
    text = " One. Two is 2. Three.\nFour = 4. Five.\n\nSix."
    assert P.sentences(text) == ["One.", "Two is 2.", "Three.", "Four = 4.", "Five.", "Six."]
    assert P.text_to_edit(text) == "Three.\nFour = 4. Five.\n\nSix."
    assert P.text_to_edit(" A. B.") == "A. B."
    # located at the first occurrence, as their str.index does
    assert P.text_to_edit(" x. y. x. z. w.") == "y. x. z. w."


@pytest.mark.parametrize("text,types", [
    ("He has 12 apples and 3 pears.", ["change_values"]),
    ("He has 12 apples.", ["change_value"]),
    ("So 2 + 3 = 5.", ["change_values", "wrong_substitution", "delete_term",
                       "change_operator", "swap_terms"]),
    ("Let x = y + z.", ["wrong_substitution", "delete_term", "change_operator", "swap_terms"]),
    ("He reads the rest of the book.", ["misread_question"]),
])
def test_error_types_that_fit(text: str, types: list[str]) -> None:
    assert P.error_types_for(text) == types


def test_one_job_per_step_with_a_fitting_type() -> None:
    jobs = P.step_jobs(SOL, random.Random(0))
    assert [j.step for j in jobs] == ["1", "2", "3"]
    for j in jobs:
        assert j.error_type in P.error_types_for(j.text_to_edit)
        msgs = P.edit_messages("Q?", j)
        assert msgs[0]["content"] == "You are a helpful assistant."
        assert f"Current Step:\n```\n{j.text_to_edit}\n```" in msgs[1]["content"]
        assert f"Initial Answer:\n```\n{j.initial_reason_steps}\n```" in msgs[1]["content"]


def test_phrase_filters_and_the_exemption() -> None:
    assert P.has_phrase("How many?", "Let's reconsider this.", P.CHOSEN_PHRASES)
    assert not P.has_phrase("Is it correct?", "Let's reconsider this.", P.CHOSEN_PHRASES)
    assert not P.has_phrase("Which is wrong?", "a mistake", P.CHOSEN_PHRASES)
    assert not P.has_phrase("How many?", "This is incorrect.", P.CHOSEN_PHRASES)
    assert P.has_phrase("How many?", "This is incorrect.", P.EDIT_PHRASES)
    assert P.has_phrase("How many?", "we use python", P.EDIT_PHRASES)


def test_fenced_edit_extraction() -> None:
    assert P.extract_edit("2 + 3 = 6.\n```") == "2 + 3 = 6."
    assert P.extract_edit("a\nb\n```\nmore\n```") == "a\nb"
    assert P.extract_edit("2 + 3 = 6.") is None  # no closing fence
    assert P.extract_edit("\n```") is None  # empty edit


@pytest.mark.parametrize("text,out", [
    ("So \\boxed{10}.", "So 10."),
    ("So $\\boxed{10}$.", "So 10."),
    ("So \\(\\boxed{\\frac{1}{2}}\\).", "So \\frac{1}{2}."),
    ("So \\[\\boxed{7}\\]", "So 7"),
    ("So \\( \\boxed{7} \\)", "So 7"),
    ("\\[\n\\boxed{7}\n\\]", "7"),
    ("a \\boxed{1} b \\boxed{{2}}", "a 1 b {2}"),
    ("no box", "no box"),
])
def test_unbox(text: str, out: str) -> None:
    assert P.unbox(text) == out


@pytest.mark.parametrize("question,text,gold,ok", [
    ("Q", "so \\boxed{10}.", "10", True),
    ("Q", "so \\boxed{10.0}", "10", True),
    ("Q", "first \\boxed{3} then \\boxed{10}", "10", True),  # the last len(gold) predictions
    ("Q", "The answer is 10.", "10", True),
    ("Q", "we get 4 and then 10", "10", True),  # their fallback: the last number
    ("Q", "we get 10 and then 4", "10", False),
    ("Q", "so \\boxed{\\frac{1}{2}}", "0.5", True),
    ("Q", "so \\boxed{50\\%}", "0.5", True),
    ("Q", "so \\boxed{1,000}", "1000", True),
    ("Q", "so \\boxed{11}", "He has 10.\n#### 10", False),
    ("Q", "so \\boxed{10}", "He has 10.\n#### 10", True),  # GSM8K gold
    ("Q", "nothing here", "10", False),
])
def test_grading_as_the_authors(question: str, text: str, gold: str, ok: bool) -> None:
    assert grade_paper(question, text, gold) is ok


def test_answer_lists() -> None:
    q = "Give the roots, separated by commas."
    assert extract_answers(q, "\\boxed{1, 2}") == ["1", "2"]
    assert extract_answers("Q", "\\boxed{1 \\text{ and } 2}") == ["1", "2"]


def test_ingest_preset_reads_their_problem_file() -> None:
    row = {"idx": 7, "answer": "\\frac{1}{2}", "instruction": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "What is $1/2$?\nSecond line.\nPlease reason step by step, and put your final answer "
        "within \\boxed{}.<|im_end|>\n<|im_start|>assistant\nLet's think step by step.\n"
        "Step 1: ")}
    got = adapt_row("rise_prompt", row)
    assert got.messages == [{"role": "user", "content": "What is $1/2$?\nSecond line."}]
    assert got.meta["answer"] == "\\frac{1}{2}" and '"idx": 7' in got.meta["extra"]


def _edit_result(step_text: str, edit: str, error_type: str = "change_values",
                 last: bool = False) -> tuple:
    from dataclasses import asdict

    from transforms.llm.api import ChatResult
    from transforms.rise.pairs import Problem

    prefix = "Let's think step by step.\nStep 1:"
    job = P.StepJob("1", prefix, step_text, P.text_to_edit(step_text), error_type, last)
    problem = Problem("p1", [], "How many?", "", "5", None)
    payload = {"problem": problem.__dict__, "prompt": [{"role": "user", "content": "q"}],
               "job": asdict(job), "policy": {"model": "m", "template_version": "v"}}
    return ChatResult("p1:edit:0", (edit + "\n```",), payload=payload, model="m")


@pytest.mark.parametrize("edit,opts,reason", [
    ("2 + 3 = 6.", {}, None),
    ("2 + 3 = 5.", {}, None),  # the authors keep an edit that changed nothing
    ("2 + 3 = 5.", {"drop_noop": True}, "noop_edit"),
    ("2 + 3 = 5, so 3 + 2 = 5 and 2 * 3 = 6 and more words here.", {"max_edit_distance": 3},
     "edit_too_large"),
    ("3 + 2 = 5.", {"computation_unchanged": True}, "computation_unchanged"),
    ("2 + 3 = 6. That is wrong.", {}, "admits_error"),
])
def test_edit_outcome_and_our_options(edit: str, opts: dict, reason: str | None) -> None:
    from transforms.rise.config import RiseConfig
    from transforms.rise.paper_steps import edit_outcome

    cfg = RiseConfig(enabled=True, mode="paper", methods=["sampled", "self_edit"],
                     self_edit={"max_edit_distance": None, "keeps_correct_answer": False,
                                "computation_unchanged": False, "drop_noop": False, **opts})
    row, got, _ = edit_outcome(_edit_result(" 2 + 3 = 5.", edit), cfg)
    assert got == reason and (row is None) == (reason is not None)
    if row is not None:
        assert row["meta"]["pair_kind"] == "step" and row["meta"]["prefix_chars"] == len(
            "Let's think step by step.\nStep 1:")


def test_keeps_correct_answer_is_ours_and_off_by_default_in_the_paper() -> None:
    from transforms.rise.config import RiseConfig
    from transforms.rise.paper_steps import edit_outcome

    res = _edit_result(" So the total is \\boxed{5}.", "So the total is 5 apples.", last=True)
    off = {"max_edit_distance": None, "computation_unchanged": False, "drop_noop": False}
    paper = RiseConfig(enabled=True, mode="paper", methods=["sampled", "self_edit"],
                       self_edit={**off, "keeps_correct_answer": False})
    ours = RiseConfig(enabled=True, mode="paper", methods=["sampled", "self_edit"],
                      self_edit=off)  # keeps_correct_answer: on by default
    assert edit_outcome(res, paper)[1] is None
    assert edit_outcome(res, ours)[1] == "keeps_correct_answer"


def test_paper_mode_needs_the_full_pair() -> None:
    from pydantic import ValidationError

    from transforms.rise.config import RiseConfig

    with pytest.raises(ValidationError, match="mode paper"):
        RiseConfig(enabled=True, mode="paper", methods=["self_edit"])
    with pytest.raises(ValidationError, match="require_roles"):
        RiseConfig(enabled=True, mode="paper", methods=["sampled", "self_edit"],
                   require_roles=True, roles={"policy": {"backend": "local"}})


def test_paper_prompts_match_golden_file() -> None:
    from pathlib import Path

    sol = ("Let's think step by step.\nStep 1: Sam reads 12 pages a day. He reads for 4 days. "
           "Each day is the same. So far he has read nothing else. Over 4 days that is "
           "12 * 4 = 48 pages.\nStep 2: Then 48 + 7 = 55.\nStep 3: The answer is \\boxed{55}.")
    job = P.step_jobs(sol, random.Random(0))[0]
    job.error_type = "change_values"
    msgs = P.edit_messages("How many pages does Sam read?", job)
    golden = Path(__file__).parent / "golden" / "paper_edit.txt"
    assert msgs[1]["content"] + "\n" == golden.read_text()
    assert P.solve_messages("Q?") == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Q?\nPlease reason step by step, and put your final answer "
                                    "within \\boxed{}."}]
    assert P.SOLVE_VERSION.startswith("rise.paper_solve@")
    assert P.EDIT_VERSION.startswith("rise.paper_edit@")


def test_their_8888_problems_round_trip_to_their_prompts(evaldata_dir) -> None:
    """Every problem of their file: the question the preset takes out, put back into the paper
    solve messages + prefill in Qwen2's chat template, is their instruction byte for byte."""
    import json

    path = evaldata_dir / "rise_math_step_dpo_problems.jsonl"
    n = 0
    for line in path.open():
        row = json.loads(line)
        sys_msg, user = P.solve_messages(adapt_row("rise_prompt", row).messages[0]["content"])
        qwen2 = (f"<|im_start|>system\n{sys_msg['content']}<|im_end|>\n<|im_start|>user\n"
                 f"{user['content']}<|im_end|>\n<|im_start|>assistant\n{P.SOLVE_PREFILL}")
        assert qwen2 == row["instruction"], row["idx"]
        n += 1
    assert n == 8888
