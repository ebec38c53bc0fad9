"""Our self-edit variant (mode refinery) end to end: `refinery run` on
configs/rise_selfedit.yaml with both roles pointed at a deterministic math model behind a real OpenAI-compatible server on 127.0.0.1 (distinct
model names per role). Planted problems: solved, wrongly solved, unfinished, self-correcting,
edits that admit the error / are too large / change nothing / keep the correct answer / keep the
computation, a policy that never answers, an editor that never answers. Checks the pairs, that
every pair's prompt is what the server received, that each filter fires on its case, the
RISE layout in preference_steps/, and conservation (in = paired + rejected + dead letter)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.run import run_config
from tests.rise._math_server import MathServer
from tests.rise.dpo_format import assert_dpo_row

ROOT = Path(__file__).resolve().parents[2]
POLICY, EDITOR = "math-policy", "math-editor"


def _sol(*steps: str, answer: str | None) -> str:
    body = "\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1))
    return body + (f"\nThe answer is \\boxed{{{answer}}}." if answer is not None else "")


def _pages(a: int, b: int, last: int, answer: str | None = "same", word: str = "pages") -> str:
    total = a * b + last
    return _sol(f"In {b} days Sam reads {a} * {b} = {a * b} {word}.",
                f"Adding the last day gives {a * b} + {last} = {total} {word}.",
                answer=str(total) if answer == "same" else answer)


def _q(kind: str, a: int, b: int, last: int) -> str:
    return (f"Sam ({kind}) reads {a} pages a day for {b} days and then {last} pages on the last "
            "day. How many pages does he read?")


Q = {k: _q(k, 10 + i, 3 + i % 4, 5 + i) for i, k in enumerate(
    ["ok", "wrong", "unfinished", "selfcorrect", "admit", "large", "noop", "keep", "same",
     "never", "editdead"])}
GOLD = {k: 0 for k in Q}
SAMPLES: dict[str, list[str] | None] = {}
for i, k in enumerate(Q):
    a, b, last = 10 + i, 3 + i % 4, 5 + i
    GOLD[k] = a * b + last
    right, right2 = _pages(a, b, last), _pages(a, b, last, word="pages in total")
    wrong = _pages(a, b, last + 1)
    SAMPLES[k] = [right, right2]
SAMPLES["ok"] = SAMPLES["ok"] + [wrong := _pages(20, 4, 9),  # a stated wrong answer
                                 _pages(10, 3, 5, answer=None),  # unfinished: never chosen
                                 SAMPLES["ok"][0].replace("Step 2:", "Wait, let me recheck.\n"
                                                          "Step 2:")]
SAMPLES["wrong"] = [_pages(11, 4, 7), _pages(11, 4, 8)]
SAMPLES["unfinished"] = [_pages(12, 5, 7, answer=None)]  # last number right, never stated
SAMPLES["selfcorrect"] = [SAMPLES["selfcorrect"][0] + "\nWait, I made a mistake? No, it is right.",
                          _pages(13, 6, 9)]
SAMPLES["keep"] = [f"Step 1: {17} * {6} + {12} = {17 * 6 + 12} pages, so the answer is "
                   f"\\boxed{{{17 * 6 + 12}}}."]
SAMPLES["never"] = None
SAMPLES["editdead"] = SAMPLES["editdead"] + [_pages(20, 4, 9)]
BEHAVIOUR = {"ok": "good", "admit": "admit", "large": "large", "noop": "noop", "keep": "keep",
             "same": "same", "editdead": "garbage"}
PLANTED_FILTER = {"admit": "admits_error", "large": "edit_too_large", "noop": "noop_edit",
                  "keep": "keeps_correct_answer", "same": "computation_unchanged"}


@pytest.fixture
def run_output(tmp_path: Path):
    src = tmp_path / "problems.jsonl"
    with src.open("w") as f:
        for k, q in Q.items():
            f.write(json.dumps({"question": q, "answer": f"#### {GOLD[k]}"}) + "\n")
    script = {q: (SAMPLES[k], BEHAVIOUR.get(k, "good")) for k, q in Q.items()}
    with MathServer(script, POLICY, EDITOR) as server:
        role = (f"{{backend: openai, base_url: '{server.base_url}', api_key_env: null, "
                "max_retries: 0, retries: 0, cache: false, concurrency: 4, timeout_s: 20}")
        cfg = load_config(ROOT / "configs/rise_selfedit.yaml", [
            f"llm={role[:-1]}, model: {EDITOR}}}",  # the editor defaults to the run's llm
            f"stages.rise.roles={{policy: {role[:-1]}, model: {POLICY}}}}}",
        ], [str(src)], str(tmp_path / "out"))
        assert set(cfg.stages.rise.roles) == {"policy"}
        result = run_config(cfg)
    return result, server


def _read(out: Path, name: str) -> list[dict]:
    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(out / name), split="train")
    return ds.to_list()


def _pairs(out: Path) -> list[dict]:
    """The full pairs of preference/ and the step pairs of preference_steps/, both in
    conversational form (each kind has its own dataset: no step pair is in preference/)."""
    from schemas.step_pairs import conversational

    full = _read(out, "preference")
    assert all(p["meta"]["pair_kind"] == "full" for p in full if p["meta"].get("pair_kind"))
    return full + [conversational(r) for r in _read(out, "preference_steps")]


@pytest.mark.slow
def test_paper_path_through_a_loopback_math_model(run_output) -> None:
    result, server = run_output
    out = Path(result.out_dir)
    pairs = _pairs(out)
    by_q = {}
    for p in pairs:
        by_q.setdefault(p["prompt"][-1]["content"], []).append(p)
    # which problems pair, and how
    kinds = {k: sorted((p["meta"]["method"], p["meta"]["pair_kind"]) for p in by_q.get(q, []))
             for k, q in Q.items()}
    assert kinds["ok"] == [("sampled", "full"), ("self_edit", "step"), ("self_edit", "step")]
    assert kinds["editdead"] == [("sampled", "full")]
    assert all(not v for k, v in kinds.items() if k not in ("ok", "editdead"))

    # the prompt of every pair is exactly what the policy received; roles used their models
    sent = {b["messages"][-1]["content"]: b["messages"] for b in server.requests_for(POLICY)}
    for p in pairs:
        assert_dpo_row(p)  # the columns and roles trl.DPOTrainer reads
        assert p["prompt"] == sent[p["prompt"][-1]["content"]]
        assert [m["role"] for m in p["prompt"]] == ["system", "user"]
        model = p["meta"]["lineage"]["model"]
        assert model == "openai:" + (EDITOR if p["meta"]["method"] == "self_edit" else POLICY)
    assert {b["model"] for b in server.bodies} == {POLICY, EDITOR}
    assert all(b["n"] == 5 and b["temperature"] == 0.2 for b in server.requests_for(POLICY))

    # full pair: a correct sample vs the stated-wrong one (never the unfinished or self-correcting)
    (full,) = [p for p in by_q[Q["ok"]] if p["meta"]["pair_kind"] == "full"]
    assert full["chosen"][0]["content"] in SAMPLES["ok"][:2]
    assert full["rejected"][0]["content"] == wrong.replace("\\boxed{89}", "89")

    # the editor edited the policy's own samples: every step it saw is in one of them
    for b in server.requests_for(EDITOR):
        text = b["messages"][-1]["content"]
        step = text.split("Next step:\n", 1)[1].split("\n\n", 1)[0]
        q = text.split("Problem:\n", 1)[1].split("\n\n", 1)[0]
        assert any(step in s for s in SAMPLES[next(k for k, v in Q.items() if v == q)])

    # step pairs: conversational and RISE layout agree
    steps = {r["id"]: r for r in _read(out, "preference_steps")}
    step_pairs = [p for p in pairs if p["meta"]["pair_kind"] == "step"]
    assert set(steps) == {p["id"] for p in step_pairs}
    for p in step_pairs:
        r = steps[p["id"]]
        assert p["chosen"][0]["content"] == r["initial_reason_steps"] + r["chosen"]
        assert p["rejected"][0]["content"] == r["initial_reason_steps"] + r["rejected"]
        assert r["answer"] == str(GOLD["ok"]) and r["prompt"] == p["prompt"]
        assert r["edit_span"][1] > r["edit_span"][0] and "\\boxed" not in r["rejected"]
        assert any(r["initial_reason_steps"] + r["chosen"] in s for s in SAMPLES["ok"])

    # every problem accounted for: rejected with its reason, the planted filters fired
    rejected = {}
    for f in (out / "rejected").rglob("*.parquet"):
        import pyarrow.parquet as pq

        for row in pq.read_table(f).to_pylist():
            rejected[row["messages"][0]["content"]] = (row["reject_reason"],
                                                       json.loads(row["reject_detail"]))
    reason = {k: rejected[q][0] for k, q in Q.items() if q in rejected}
    assert reason == {"wrong": "no_correct_sample", "unfinished": "no_correct_sample",
                      "selfcorrect": "only_self_correcting_samples",
                      **dict.fromkeys(PLANTED_FILTER, "edits_rejected")}
    for k, filt in PLANTED_FILTER.items():
        # a word-only edit of a step that holds the final answer also keeps the correct answer
        # (which steps get edited follows the problem's id-derived seed)
        reasons = set(rejected[Q[k]][1]["edit_reasons"])
        assert filt in reasons and reasons - {filt} <= {"keeps_correct_answer"}, (k, reasons)
    assert rejected[Q["unfinished"]][1]["incorrect_unfinished"] == 1

    m = result.manifest
    rep = m["reports"]["rise"]
    dead = [json.loads(line) for f in (out / "deadletter").rglob("*.jsonl")
            for line in f.read_text().splitlines()]
    assert len(dead) == 1 and "500" in dead[0]["error"] and Q["never"] in dead[0]["raw"]
    assert (rep["problems_in"], rep["problems_paired"], rep["problems_rejected"],
            rep["problems_deadletter"]) == (11, 2, 8, 1)
    # the editor's answers without JSON are edit-level `edit_unparseable` (the kit's policy);
    # the problem keeps its full pair
    assert rep["conservation_holds"] and rep["edit_deadletter"] == 0
    assert rep["edit_rejected"]["self_edit:edit_unparseable"] == 2
    assert rep["problems_with_correct"] == 8 and rep["problems_with_incorrect"] == 5
    assert rep["pairs_by_kind"] == {"full": 2, "step": 2}
    assert rep["step_pairs_result_changed_share"] == 1.0 and rep["mean_edit_distance"] >= 1
    for filt in PLANTED_FILTER.values():
        assert rep["edit_rejected"][f"self_edit:{filt}"] >= 1
