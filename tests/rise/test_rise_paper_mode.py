"""configs/rise_paper.yaml end to end (mode: paper, the authors' method) against a scripted
policy and editor behind a real OpenAI-compatible server on 127.0.0.1. Asserts on what the
server received (solve messages and prefill byte for byte, n=5, T=0.2, top_p 0.9, 2,048
tokens; one greedy edit request per step of the chosen text with the edit prefill and an error
type the step allows) and on the outputs (one full pair and at most one step pair per problem,
full-pair texts untouched, no \\boxed{ in step-pair rejected texts, truncated samples in no
pair), then exports the `rise` file and feeds it through a re-implementation of their
`apply_step_wise_chat_template` (qwen2-boxed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.export.registry import export
from pipeline.run import run_config
from tests.rise._paper_server import PaperServer, bump_last_number
from tests.rise.dpo_format import assert_dpo_row
from transforms.rise.paper_core import EDIT_INSTRUCTIONS

ROOT = Path(__file__).resolve().parents[2]
POLICY, EDITOR = "qwen2-policy", "qwen2-editor"
SYSTEM = "You are a helpful assistant."
SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
PREFILL = "Let's think step by step.\nStep 1: "
EDIT_PREFILL = "The edited Current Step:\n```\n"

RIGHT = ("Sam reads 12 pages a day. He reads for 4 days. Each day is the same. So far he has "
         "read nothing else. Over 4 days that is 12 * 4 = 48 pages.\nStep 2: Then he reads 7 "
         "more pages, and 48 + 7 = 55.\nStep 3: The answer is \\boxed{55}.")
RIGHT2 = ("In 4 days he reads 12 * 4 = 48 pages.\nStep 2: Adding the last day, 48 + 7 = 55."
          "\nStep 3: So he reads \\boxed{55} pages.")
WRONG = ("In 4 days he reads 12 * 4 = 48 pages.\nStep 2: Adding the last day, 48 + 8 = 56."
         "\nStep 3: So he reads \\boxed{56} pages.")
CUT_RIGHT = "In 4 days he reads 12 * 4 = 48 pages.\nStep 2: So he reads \\boxed{55"
CUT_WRONG = "In 4 days he reads 12 * 4 = 4"
FLAGGED = RIGHT.replace("Step 2:", "Let's reconsider.\nStep 2:")
EXEMPT_RIGHT = RIGHT.replace("Step 3:", "The correct total follows.\nStep 3:")


def _q(tag: str, extra: str = "") -> str:
    return (f"Sam ({tag}) reads 12 pages a day for 4 days and then 7 pages on the last day. "
            f"How many pages does he read?{extra}")


# question → ([(continuation, finish_reason)], editor behaviour, gold)
CASES = {
    "ok": ([(RIGHT, "stop"), (RIGHT2, "stop"), (WRONG, "stop"), (CUT_WRONG, "length"),
            (FLAGGED, "stop")], "good", "55"),
    "cut_right": ([(CUT_RIGHT, "length"), (WRONG, "stop"), (WRONG, "stop")], "good", "55"),
    "truncated_only_wrong": ([(RIGHT, "stop"), (CUT_WRONG, "length")], "good",
                             "The total is 48 + 7 = 55.\n#### 55"),
    "all_wrong": ([(WRONG, "stop")], "good", "55"),
    "flagged_only": ([(FLAGGED, "stop"), (WRONG, "stop")], "good", "55"),
    "admit": ([(RIGHT2, "stop"), (WRONG, "stop")], "admit", "55"),
    "nofence": ([(RIGHT2, "stop"), (WRONG, "stop")], "nofence", "55"),
    "exempt": ([(EXEMPT_RIGHT, "stop"), (WRONG, "stop")], "good", "55"),
}
QUESTIONS = {k: _q(k, " Is 55 correct?" if k == "exempt" else "") for k in CASES}


def _chat_prompt(question: str) -> str:
    """Their Qwen2 solve prompt, as in the problem file (kaishxu/RISE self-sample-qwen2.jsonl)."""
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{question}{SUFFIX}"
            f"<|im_end|>\n<|im_start|>assistant\n{PREFILL}")


def apply_step_wise_chat_template(example: dict[str, str]) -> dict[str, str]:
    """Their train.py for the `qwen2-boxed` prompt, re-implemented: the Qwen2 chat prompt of the
    question with an open assistant turn, followed by the shared steps of a step pair."""
    head = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{example['prompt']}"
            f"{SUFFIX}<|im_end|>\n<|im_start|>assistant\n")
    return {"prompt": head + example["initial_reason_steps"], "chosen": example["chosen"],
            "rejected": example["rejected"]}


def _allowed_instructions(text: str) -> set[str]:
    digits = len(re.findall(r"\d+", text))
    kinds = ["change_values"] if digits > 1 else ["change_value"] if digits else []
    if "=" in text:
        kinds += ["wrong_substitution", "delete_term", "change_operator", "swap_terms"]
    return {EDIT_INSTRUCTIONS[k] for k in kinds or ["misread_question"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("rise_paper")
    src = tmp / "problems.jsonl"
    with src.open("w") as f:
        for i, (k, q) in enumerate(QUESTIONS.items()):
            f.write(json.dumps({"idx": i, "instruction": _chat_prompt(q),
                                "answer": CASES[k][2]}) + "\n")
    script = {q: (CASES[k][0], CASES[k][1]) for k, q in QUESTIONS.items()}
    with PaperServer(script, POLICY, EDITOR) as server:
        def role(model: str) -> str:
            return (f"{{backend: openai, base_url: '{server.base_url}', api_key_env: null, "
                    f"max_retries: 0, cache: false, concurrency: 4, timeout_s: 20, "
                    f"model: {model}}}")
        cfg = load_config(ROOT / "configs/rise_paper.yaml", [
            f"sources.0.path={src}", f"stages.rise.roles.policy={role(POLICY)}",
            f"stages.rise.roles.editor={role(EDITOR)}"], None, str(tmp / "out"))
        result = run_config(cfg)
    return result, server, tmp


def _read(out: Path, name: str) -> list[dict]:
    import datasets

    return datasets.load_dataset("parquet", data_dir=str(out / name), split="train").to_list()


def _pairs(out: Path) -> list[dict]:
    """The full pairs of preference/ and the step pairs of preference_steps/, both in
    conversational form (each kind has its own dataset: no step pair is in preference/)."""
    from schemas.step_pairs import conversational

    full = _read(out, "preference")
    assert all(p["meta"]["pair_kind"] == "full" for p in full if p["meta"].get("pair_kind"))
    return full + [conversational(r) for r in _read(out, "preference_steps")]


@pytest.mark.slow
def test_requests_are_the_authors(run) -> None:
    _, server, _ = run
    solves = server.requests_for(POLICY)
    assert len(solves) == len(CASES)
    for b in solves:
        q = b["messages"][1]["content"].removesuffix(SUFFIX)
        assert q in QUESTIONS.values()
        assert b["messages"] == [{"role": "system", "content": SYSTEM},
                                 {"role": "user", "content": q + SUFFIX},
                                 {"role": "assistant", "content": PREFILL}]
        assert b["continue_final_message"] is True and b["add_generation_prompt"] is False
        assert (b["n"], b["temperature"], b["top_p"], b["max_tokens"]) == (5, 0.2, 0.9, 2048)
    edits = server.requests_for(EDITOR)
    for b in edits:
        assert b["messages"][0] == {"role": "system", "content": SYSTEM}
        assert b["messages"][2] == {"role": "assistant", "content": EDIT_PREFILL}
        assert b["continue_final_message"] is True
        assert (b["n"], b["temperature"], b["max_tokens"]) == (1, 0.0, 2048)
        user = b["messages"][1]["content"]
        text = user.split("Current Step:\n```\n", 1)[1].split("\n```\n\n", 1)[0]
        instruction = user.rsplit("\n\n", 1)[1].removesuffix(" Do not say that an error was made.")
        assert instruction in _allowed_instructions(text), (text, instruction)
    # the step with five sentences: only its last four are to be edited
    texts = [b["messages"][1]["content"] for b in edits]
    assert any("Current Step:\n```\nHe reads for 4 days. Each day is the same. So far he has "
               "read nothing else. Over 4 days that is 12 * 4 = 48 pages.\n```" in t
               for t in texts)


@pytest.mark.slow
def test_outputs_one_full_pair_and_at_most_one_step_pair(run) -> None:
    result, server, tmp = run
    out = Path(result.out_dir)
    pairs = _pairs(out)
    by_q: dict[str, list[dict]] = {}
    for p in pairs:
        assert_dpo_row(p)  # conversational rows as trl's DPOTrainer reads them
        by_q.setdefault(p["prompt"][-1]["content"].removesuffix(SUFFIX), []).append(p)
    paired = {k for k, q in QUESTIONS.items() if q in by_q}
    assert paired == {"ok", "admit", "nofence", "exempt"}
    cut = {PREFILL + CUT_RIGHT, PREFILL + CUT_WRONG}
    edits = server.requests_for(EDITOR)
    for k in paired:
        group = by_q[QUESTIONS[k]]
        full = [p for p in group if p["meta"]["pair_kind"] == "full"]
        steps = [p for p in group if p["meta"]["pair_kind"] == "step"]
        assert len(full) == 1 and len(steps) <= 1
        chosen, rejected = full[0]["chosen"][0]["content"], full[0]["rejected"][0]["content"]
        scripted = {PREFILL + t for t, _ in CASES[k][0]}
        assert chosen in scripted and rejected in scripted  # texts untouched (\boxed kept)
        assert chosen not in cut and rejected not in cut
        assert rejected == PREFILL + WRONG and "\\boxed{56}" in rejected
        # one edit request per "\nStep k:" of the chosen text
        n_steps = len(re.findall(r"\nStep \d+:", chosen))
        mine = [b for b in edits if b["messages"][1]["content"].startswith(
            f"Question:\n```\n{QUESTIONS[k]}\n```")]
        assert len(mine) == n_steps == 3
        for s in steps:
            c, r = s["chosen"][0]["content"], s["rejected"][0]["content"]
            assert "\\boxed{" not in r[s["meta"]["prefix_chars"]:]
            assert chosen.startswith(c) and c not in cut
            prefix = c[:s["meta"]["prefix_chars"]]
            assert re.search(r"\nStep \d+:$", prefix) and r.startswith(prefix)
    assert len(by_q[QUESTIONS["ok"]]) == 2 and len(by_q[QUESTIONS["exempt"]]) == 2
    assert len(by_q[QUESTIONS["admit"]]) == 1 and len(by_q[QUESTIONS["nofence"]]) == 1
    assert by_q[QUESTIONS["exempt"]][0]["chosen"][0]["content"] in (
        PREFILL + EXEMPT_RIGHT, by_q[QUESTIONS["exempt"]][1]["chosen"][0]["content"])
    # the kept step pair of `ok`: the scripted edit in place, \boxed{} removed
    (step,) = [p for p in by_q[QUESTIONS["ok"]] if p["meta"]["pair_kind"] == "step"]
    extra = json.loads(step["meta"]["extra"])
    k = step["meta"]["prefix_chars"]
    c_step = step["chosen"][0]["content"][k:]
    assert extra["edit"] == bump_last_number(extra["text_to_edit"])
    assert step["rejected"][0]["content"][k:] == c_step.replace(
        extra["text_to_edit"], extra["edit"]).replace("\\boxed{56}", "56")
    # preference_steps holds step pairs only
    step_rows = _read(out, "preference_steps")
    assert step_rows and all(r["meta"]["pair_kind"] == "step" for r in step_rows)
    rep = result.manifest["reports"]["rise"]
    assert rep["conservation_holds"] and rep["problems_in"] == len(CASES)
    assert rep["samples"]["truncated"] == 5  # ok 1, cut_right 2, truncated_only_wrong 2 (n=5)
    rej = rep["rejected"]
    assert rej == {"no_correct_sample": 2, "no_incorrect_sample": 1,
                   "no_usable_correct_sample": 1}
    assert rep["edit_rejected"] == {"self_edit:admits_error": 3, "self_edit:edit_unparseable": 3}


@pytest.mark.slow
def test_rise_export_is_their_training_file(run) -> None:
    import datasets

    result, _, tmp = run
    dest = tmp / "rise_train.json"
    summary = export(str(result.out_dir), "rise", str(dest))
    rows = json.loads(dest.read_text())
    assert isinstance(rows, list) and summary["rows"] == len(rows) == 6
    assert [bool(r["initial_reason_steps"]) for r in rows] == [False, True, False, False, False,
                                                                True]
    for r in rows:
        assert set(r) == {"prompt", "initial_reason_steps", "chosen", "rejected", "answer"}
        assert r["prompt"] in QUESTIONS.values()
    for full, step in ((rows[0], rows[1]), (rows[4], rows[5])):
        assert step["prompt"] == full["prompt"]
        assert full["chosen"].startswith(step["initial_reason_steps"] + step["chosen"])
        assert step["initial_reason_steps"].startswith(PREFILL.split("\n")[0])
    ds = datasets.load_dataset("json", data_files=str(dest), split="train")
    assert ds.num_rows == 6
    mapped = ds.map(apply_step_wise_chat_template, remove_columns=ds.column_names)
    for r, m in zip(rows, mapped, strict=True):
        assert m["prompt"] == (_chat_prompt(r["prompt"])[:-len(PREFILL)]
                               + r["initial_reason_steps"])
        assert (m["chosen"], m["rejected"]) == (r["chosen"], r["rejected"])
        if r["initial_reason_steps"]:
            assert m["prompt"].endswith(":") and "\\boxed{" not in m["rejected"]
        else:
            assert m["chosen"].startswith(PREFILL)


@pytest.mark.slow
def test_export_command(run, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    result, _, tmp = run
    out = Path(result.out_dir)  # the output directory; its published run is read
    assert main(["export", str(out), "--format", "rise"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["full_pairs"], summary["step_pairs"]) == (6, 4, 2)
    assert Path(summary["path"]) == out / "export" / "rise.json"
    assert json.loads(Path(summary["path"]).read_text()) == json.loads(
        (tmp / "rise_train.json").read_text())
    assert main(["export", str(tmp), "--format", "rise"]) == 2  # not a finished run
    with pytest.raises(SystemExit):
        main(["export", str(result.out_dir), "--format", "nope"])


def test_paper_config_names_every_role() -> None:
    with pytest.raises(ConfigError, match="editor"):
        load_config(ROOT / "configs/rise_paper.yaml",
                    ["stages.rise.roles={policy: {backend: local}}"])
    cfg = load_config(ROOT / "configs/rise_paper.yaml")
    rise = cfg.stages.rise
    assert rise.mode == "paper" and rise.require_roles and set(rise.roles) == {"policy",
                                                                               "editor"}
    assert cfg.sources[0].preset == "rise_problems"
    s, e = rise.sampling, rise.self_edit  # the authors' settings; our additions off
    assert (s.samples, s.temperature, s.top_p, s.max_tokens) == (5, 0.2, 0.9, 2048)
    assert (e.temperature, e.max_tokens, e.last_sentences, e.pairs_per_problem) == (0, 2048, 4, 1)
    assert e.max_edit_distance is None and not (s.drop_self_correcting or e.keeps_correct_answer
                                                or e.computation_unchanged or e.drop_noop)
    assert rise.methods == ["sampled", "self_edit"] and rise.strip_boxed_rejected
