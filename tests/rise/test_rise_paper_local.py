"""configs/rise_selfedit.yaml with the real embedded local model (SmolLM2-135M on CPU) over the
first 10 GSM8K-shaped problems of data/gsm8k_20.jsonl: the mechanics end to end (sampling, grading,
editing, emit). A model this small solves few problems, so nothing is asserted about how many
pairs come out; every problem must be accounted for exactly once (paired, rejected with a
reason, or dead-lettered), and what comes out must be well formed. rule_edit is on too, so
problems without a usable sample fall back to a rule edit of the gold solution (labelled gold).
Kept short for the CPU: one sample of 16 tokens per problem."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.run import run_config
from schemas.step_pairs import conversational
from tests.rise._math_server import MathServer
from tests.rise.dpo_format import assert_dpo_row

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.model
def test_rise_paper_config_with_the_local_model(tmp_path: Path) -> None:
    # 10 problems, one batch: the mechanics do not need all 20 (each decode step of the CPU
    # model costs in proportion to the rows in the batch)
    lines = (ROOT / "data/gsm8k_20.jsonl").read_text().splitlines()[:10]
    src = tmp_path / "gsm8k_10.jsonl"
    src.write_text("\n".join(lines) + "\n")
    cfg = load_config(ROOT / "configs/rise_selfedit.yaml", [
        "stages.rise.methods=[sampled, self_edit, rule_edit]",
        "stages.rise.sampling.samples=1", "stages.rise.sampling.max_tokens=16",
        "stages.rise.self_edit.pairs_per_problem=1", "stages.rise.self_edit.max_tokens=64",
        "stages.rise.roles.policy.batch_size=20", "llm.batch_size=20",
        f"llm.cache_dir={tmp_path / 'cache'}",
        f"stages.rise.roles.policy.cache_dir={tmp_path / 'c'}",
    ], [str(src)], str(tmp_path / "out"))
    result = run_config(cfg)
    out, rep = Path(result.out_dir), result.manifest["reports"]["rise"]
    print("rise report:", json.dumps({k: rep[k] for k in (
        "problems_in", "problems_paired", "problems_rejected", "problems_deadletter",
        "samples", "pairs_by_kind", "rejected", "edit_rejected")}))

    ids = [json.loads(line)["question"] for line in lines]
    assert rep["problems_in"] == len(ids) == 10 and rep["samples"]["total"] == 10
    paired = set()
    full = [r for f in (out / "preference").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    steps = [conversational(r) for f in (out / "preference_steps").glob("*.parquet")
             for r in pq.read_table(f).to_pylist()]  # step pairs live in their own dataset
    assert all(r["meta"]["pair_kind"] == "full" for r in full)
    for row in full + steps:
        assert_dpo_row(row)
        edited = json.loads(row["meta"]["extra"]).get("edited_solution")
        # the sampling prompt for the model's own solutions, the input's for gold edits
        assert [m["role"] for m in row["prompt"]] == (
            ["user"] if edited == "gold" else ["system", "user"])
        paired.add(row["prompt"][-1]["content"])
    rejected = [r["messages"][0]["content"] for f in (out / "rejected").rglob("*.parquet")
                for r in pq.read_table(f).to_pylist()]
    dead = [json.loads(line) for f in (out / "deadletter").rglob("*.jsonl")
            for line in f.read_text().splitlines()]
    assert len(rejected) == len(set(rejected)) and not paired & set(rejected)
    assert len(paired) + len(rejected) + len(dead) == 10
    assert paired | set(rejected) <= set(ids)
    assert rep["problems_paired"] == len(paired) and rep["conservation_holds"]
    assert paired  # at least the rule edits of the gold solutions pair


def _step_solution(gsm8k_answer: str, prefix: str = "") -> str:
    """A GSM8K answer rewritten as "Step k:" lines ending in a boxed answer."""
    lines, final = gsm8k_answer.split("\n#### ")
    steps = [re.sub(r"<<[^>]*>>", "", s) for s in lines.split("\n")]
    body = "\n".join(f"Step {i}: {prefix}{s}" for i, s in enumerate(steps, 1))
    return f"{body}\nThe answer is \\boxed{{{final}}}."


@pytest.mark.slow
@pytest.mark.model
def test_local_model_as_the_editor_of_scripted_correct_samples(tmp_path: Path) -> None:
    """The editor role on the real local model (structured JSON answer), the policy a scripted
    loopback model that solves every problem: each edit becomes a step pair, an edit-level
    rejection with a filter's reason, or a dead letter; every problem is accounted for."""
    problems = [json.loads(line) for line in (ROOT / "data/gsm8k_20.jsonl").open()][:4]
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(p) + "\n" for p in problems))
    script = {p["question"]: ([_step_solution(p["answer"]), _step_solution(p["answer"], "So ")],
                              "garbage") for p in problems}
    with MathServer(script, "math-policy", "unused-editor") as server:
        cfg = load_config(ROOT / "configs/rise_selfedit.yaml", [
            f"stages.rise.roles={{policy: {{backend: openai, base_url: '{server.base_url}', "
            "api_key_env: null, model: math-policy, cache: false}}",
            "stages.rise.methods=[self_edit]", "stages.rise.sampling.samples=2",
            "stages.rise.self_edit.pairs_per_problem=1", "stages.rise.self_edit.max_tokens=48",
            "llm.retries=0", f"llm.cache_dir={tmp_path / 'cache'}",
            # the 135M editor often writes no JSON: mechanics are checked, not its error rate
            "stages.rise.max_error_rate=1.0",
        ], [str(src)], str(tmp_path / "out"))
        rep = run_config(cfg).manifest["reports"]["rise"]
    print("rise report:", json.dumps({k: rep[k] for k in (
        "pairs_by_method", "rejected", "edit_rejected", "edit_deadletter", "self_edit_filter")}))
    assert rep["problems_in"] == 4 and rep["problems_with_correct"] == 4
    edits = rep["self_edit_filter"]["checked"] + rep["edit_deadletter"]
    assert edits == 4  # one edit per problem: judged by the filters, or dead-lettered
    assert rep["problems_paired"] == rep["pairs_by_method"].get("self_edit", 0)
    assert rep["conservation_holds"]
    assert {b["model"] for b in server.bodies} == {"math-policy"}  # edits went to the local model
