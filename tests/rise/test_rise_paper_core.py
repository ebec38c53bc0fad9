"""The paper path's pure core: grading samples, full pairs, edit jobs, the editor's request and
its parser, edit filters on model answers, step pairs in both layouts, carried-through rule
edits. Model answers here are hand-written ChatResults, as a backend returns them."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from rise_fixtures import GSM8K, gsm8k_row

from transforms.llm.api import ChatResult
from transforms.llm.prompts import load_prompt
from transforms.rise.carry import carry_through
from transforms.rise.config import RiseConfig
from transforms.rise.pairs import Problem, read_problem
from transforms.rise.sampling import after_sampling, grade_samples
from transforms.rise.self_edit import edit_outcome, edit_request, parse_rewrite, rewrite_cut
from transforms.rise.step_pairs import step_row
from transforms.rise.templates import solve_messages

GOLDEN = Path(__file__).with_name("golden")
Q = "Sam reads 15 pages a day for 6 days and then 20 pages on the last day. How many pages?"
RIGHT = ("Step 1: In six days Sam reads 15 * 6 = 90 pages.\n"
         "Step 2: Adding the last day gives 90 + 20 = 110 pages.\n"
         "Step 3: The answer is \\boxed{110}.")
RIGHT_WORDY = ("Step 1: We count the pages of the first six days first.\n"
               "Step 2: Those are 15 * 6 = 90 pages, and 90 + 20 = 110 with the last day.\n"
               "The answer is \\boxed{110}.")
WRONG = RIGHT.replace("90 + 20 = 110", "90 + 2 = 92").replace("{110}", "{92}")
UNFINISHED = "Step 1: In six days Sam reads 15 * 6 = 90 pages.\nStep 2: Then 90 + 20 = 110"
SELF_CORRECTING = RIGHT.replace("Step 2:", "Wait, let me recheck.\nStep 2:")
CFG = RiseConfig(enabled=True, methods=["sampled", "self_edit"])


def _problem() -> Problem:
    p = read_problem(gsm8k_row(Q, "", "110"), need_solution=False)
    assert isinstance(p, Problem)
    return p


def _prompt() -> list[dict[str, str]]:
    return solve_messages(Q)[0]


def test_prompts_match_golden_files() -> None:
    msgs, version = solve_messages(Q)
    assert [m["role"] for m in msgs] == ["system", "user"] and msgs[1]["content"] == Q
    assert version.startswith("rise.solve@") and len(version) == len("rise.solve@") + 12
    assert msgs[0]["content"] + "\n" == (GOLDEN / "solve_system.txt").read_text()
    p = _problem()
    job = {"sample": RIGHT, "step_index": 1, "step_start": RIGHT.index("Step 2"),
           "step_end": RIGHT.index("\nStep 3"), "error_type": "change_operator",
           "is_last": False, "job": 0}
    req = edit_request(p, _prompt(), job, CFG, 0, {"model": "p", "template_version": "v"})
    assert req.messages[0][1] + "\n" == (GOLDEN / "self_edit_steps.txt").read_text()
    assert req.template_version == load_prompt("rise", "self_edit").version
    assert req.json_schema == load_prompt("rise", "self_edit").schema
    assert req.key == f"{p.id}:edit:0"


def test_grading_is_strict_and_full_pair_uses_the_sampling_prompt() -> None:
    graded = {s.text: s.verdict for s in grade_samples([RIGHT, WRONG, UNFINISHED, RIGHT], "110")}
    assert graded == {RIGHT: "correct", WRONG: "incorrect", UNFINISHED: "incorrect_unfinished"}
    out = after_sampling(_problem(), _prompt(), (RIGHT, WRONG, UNFINISHED), CFG, 0, "pol", "v")
    (pair,) = [r for r in out.pairs if r["meta"]["method"] == "sampled"]
    assert pair["prompt"] == _prompt()
    assert pair["chosen"][0]["content"] == RIGHT
    assert pair["rejected"][0]["content"] == WRONG.replace("\\boxed{92}", "92")
    assert pair["meta"]["pair_kind"] == "full" and pair["meta"]["lineage"]["model"] == "pol"
    assert out.summary["samples"]["incorrect_unfinished"] == 1
    assert 1 <= len(out.edit_jobs) <= CFG.self_edit.pairs_per_problem


def test_unfinished_is_never_chosen_and_self_corrections_are_dropped() -> None:
    out = after_sampling(_problem(), _prompt(), (UNFINISHED, WRONG), CFG, 0)
    assert out.pairs == [] and out.edit_jobs == [] and out.reasons == ["no_correct_sample"]
    out = after_sampling(_problem(), _prompt(), (SELF_CORRECTING, WRONG), CFG, 0)
    assert out.pairs == [] and out.reasons == ["only_self_correcting_samples"]
    out = after_sampling(_problem(), _prompt(), (RIGHT, RIGHT), CFG, 0)
    assert "no_incorrect_sample" in out.reasons and out.edit_jobs  # step pairs still possible


def test_truncated_samples_are_counted_and_never_paired() -> None:
    # a correct-looking and a wrong sample, both cut by the token limit: neither side of a pair
    out = after_sampling(_problem(), _prompt(), (RIGHT, WRONG, RIGHT), CFG, 0,
                         finish_reasons=("length", "length", "stop"))
    assert out.summary["samples"]["truncated"] == 2 and out.summary["samples"]["total"] == 3
    assert not out.pairs and out.reasons == ["no_incorrect_sample"]
    assert all(j["sample"] == RIGHT for j in out.edit_jobs)
    out = after_sampling(_problem(), _prompt(), (RIGHT, WRONG), CFG, 0,
                         finish_reasons=("length", "stop"))
    assert not out.pairs and out.reasons == ["no_correct_sample"]


def test_edit_jobs_pick_types_that_fit_the_step() -> None:
    cfg = RiseConfig(enabled=True, methods=["self_edit"])
    cfg.self_edit.pairs_per_problem = 6
    seen = set()
    for seed in range(6):
        for job in after_sampling(_problem(), _prompt(), (RIGHT_WORDY,), cfg, seed).edit_jobs:
            step = job["sample"][job["step_start"]:job["step_end"]]
            if "=" not in step and not any(c.isdigit() for c in step.split(":", 1)[1]):
                assert job["error_type"] == "misread_question"
            seen.add(job["error_type"])
            assert job["is_last"] == (job["step_index"] == 1)
    assert "misread_question" in seen and len(seen) >= 3


def test_rewrite_keeps_the_step_marker() -> None:
    step = "Step 2: First we add. Then 90 + 20 = 110. So 110 pages."
    assert step[rewrite_cut(step, 2):] == "Then 90 + 20 = 110. So 110 pages."
    assert step[rewrite_cut(step, 9):] == "First we add. Then 90 + 20 = 110. So 110 pages."


def _edit(rewritten_json: str, step: int = 1, etype: str = "change_operator") -> ChatResult:
    p, sample = _problem(), RIGHT
    starts = [sample.index(f"Step {k}") for k in (1, 2, 3)] + [len(sample) + 1]
    job = {"sample": sample, "step_index": step, "step_start": starts[step],
           "step_end": starts[step + 1] - 1, "error_type": etype, "is_last": step == 2,
           "job": 0}
    req = edit_request(p, _prompt(), job, CFG, 0, {"model": "pol", "template_version": "v"})
    parsed = None
    with contextlib.suppress(json.JSONDecodeError):
        parsed = (json.loads(rewritten_json),)
    return ChatResult(key=req.key, texts=(rewritten_json,), parsed=parsed, model="ed",
                      payload=req.payload, template_version=req.template_version)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"rewritten": "Adding gives 90 - 20 = 70 pages."}', "Adding gives 90 - 20 = 70 pages."),
    ('Sure:\n{"rewritten": " x = 1 "}\nDone.', "x = 1"),
    ('{"rewritten": "Adding gives 9', None), ("", None), ('{"other": "x"}', None),
    ('{"rewritten": ""}', None),
])
def test_parse_rewrite(text: str, expected: str | None) -> None:
    res = _edit(text)
    res = ChatResult(key=res.key, texts=res.texts, payload=res.payload)  # unparsed: find JSON
    assert parse_rewrite(res) == expected


def test_edit_outcome_step_pair_and_its_layout() -> None:
    row, reason, _ = edit_outcome(_edit('{"rewritten": "Adding the last day gives 90 - 20 = '
                                        '70 pages."}'), CFG)
    assert reason is None
    meta = row["meta"]
    assert (meta["method"], meta["pair_kind"], meta["error_type"]) == \
        ("self_edit", "step", "change_operator")
    assert meta["result_changed"] is True and meta["lineage"]["model"] == "ed"
    assert json.loads(meta["extra"])["policy_model"] == "pol"
    assert row["prompt"] == _prompt()
    s = step_row(row)
    assert s["initial_reason_steps"] == RIGHT[:RIGHT.index("Step 2")]
    assert s["chosen"] == "Step 2: Adding the last day gives 90 + 20 = 110 pages."
    assert s["rejected"] == "Step 2: Adding the last day gives 90 - 20 = 70 pages."
    assert s["answer"] == "110" and s["id"] == row["id"]
    a, b = s["edit_char_span"]
    assert s["rejected"][a:b] == "- 20 = 7"  # the minimal character diff ("110" → "70")
    # whole tokens: '-', '20', '=', '70' after 'Step', '2', ':', 'Adding', ..., 'gives', '90'
    assert s["edit_span"] == [9, 13]


@pytest.mark.parametrize(("rewritten", "step", "etype", "reason"), [
    ("Adding the last day gives 90 + 20 = 110 pages.", 1, "change_operator", "noop_edit"),
    ("Adding the last day gives 90 - 20 = 70 pages, which is wrong.", 1, "change_operator",
     "admits_error"),
    ("Adding the last day gives 90 + 20 = 110 books.", 1, "change_value",
     "computation_unchanged"),
    ("Adding the last day gives 90 + 20 = 111 pages, more than before, as many as he could "
     "ever read in a single week of holidays at the lake house, where the evenings are long, "
     "quiet and warm, and the old shelves hold novels, atlases and comics.", 1,
     "change_value", "edit_too_large"),
    ("The answer is \\boxed{110} pages.", 2, "misread_question", "keeps_correct_answer"),
])
def test_edit_filters_fire(rewritten: str, step: int, etype: str, reason: str) -> None:
    assert edit_outcome(_edit(json.dumps({"rewritten": rewritten}), step, etype), CFG)[1] == reason


def test_consistent_but_wrong_edit_is_kept() -> None:
    res = _edit(json.dumps({"rewritten": "Adding the last day gives 90 + 25 = 115 pages."}), 1,
                "change_value")
    row, reason, _ = edit_outcome(res, CFG)
    assert reason is None and row["meta"]["result_changed"] is True


def test_rule_edit_carried_through_to_a_wrong_final_answer() -> None:
    q, sol = GSM8K[2]
    edited = sol.replace("3 x 84 = $<<3*84=252>>252", "3 x 84 = $<<3*84=262>>262")
    carried = carry_through(sol, edited, sol.index("\n"))
    assert carried is not None
    assert "262 + 32 = $<<262+32=294>>294" in carried and carried.endswith("#### 294")
    assert carry_through(sol, sol.replace("3 x 84", "3 x 85").replace("3*84", "3*85"),
                         sol.index("\n")) is None  # result unchanged: nothing carried


def test_rule_edit_uses_the_models_own_sample_else_gold() -> None:
    cfg = RiseConfig(enabled=True, methods=["sampled", "rule_edit"])
    out = after_sampling(_problem(), _prompt(), (RIGHT, WRONG), cfg, 0)
    (rule,) = [r for r in out.pairs if r["meta"]["method"] == "rule_edit"]
    assert json.loads(rule["meta"]["extra"])["edited_solution"] == "self_sample"
    assert rule["prompt"] == _prompt() and rule["meta"]["pair_kind"] == "step"
    assert RIGHT.startswith(rule["chosen"][0]["content"])
    gold = read_problem(gsm8k_row(*GSM8K[2]), need_solution=False)
    out = after_sampling(gold, _prompt(), (WRONG,), cfg, 0)  # no correct sample: edit gold
    (rule,) = out.pairs
    assert json.loads(rule["meta"]["extra"])["edited_solution"] == "gold"
    assert rule["prompt"] == gold.prompt and gold.solution.startswith(rule["chosen"][0]["content"])
    assert out.reasons == ["no_correct_sample"]
