"""Self-edit (the RISE paper's method) and sampled pairs: requests out, pairs back. Pure code.

Self-edit reads a Problem, picks a step and an applicable error type (seeded), and builds a
`ChatRequest` asking the model to rewrite the step's last sentences with that error (JSON answer,
schemas/llm/rise_self_edit.json). Its answer is spliced in, filtered (filters.py) and becomes a
pair or a rejection reason. Sampled reads k "Step k:" solutions, grades them against the gold
answer and pairs a correct one with an incorrect one.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.rise.answers import grade, stated_answer
from transforms.rise.config import RiseConfig
from transforms.rise.equations import find_equations, numbers_in
from transforms.rise.errors import ERROR_TYPES, NUMERIC_TYPES, applicable_types_for_text
from transforms.rise.filters import check_edit
from transforms.rise.pairs import Problem, make_pair
from transforms.rise.steps import split_steps

PROMPTS = Path(__file__).with_name("prompts")
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "llm" / "rise_self_edit.json"
SELF_EDIT_VERSION = "rise_self_edit@1"
SOLVE_VERSION = "rise_solve@1"


@lru_cache(maxsize=4)
def _template(name: str):  # -> jinja2.Template
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROMPTS)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                             autoescape=False)
    return env.get_template(name)


@lru_cache(maxsize=1)
def self_edit_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def render_self_edit(question: str, previous_steps: str, step: str, error_type: str,
                     last_sentences: int) -> str:
    return _template("self_edit.jinja").render(
        question=question, previous_steps=previous_steps, step=step, error_type=error_type,
        error_description=ERROR_TYPES[error_type], last_sentences=last_sentences).strip()


def render_solve(question: str) -> str:
    return _template("solve.jinja").render(question=question).strip()


def _seed_int(seed: int, key: str) -> int:
    return random.Random(f"{seed}:{key}").randrange(2 ** 31)


def plan_self_edit(problem: Problem, cfg: RiseConfig, seed: int) -> ChatRequest | str:
    """The self-edit request for a problem, or a rejection reason (no_applicable_step)."""
    rng = random.Random(f"{seed}:{problem.id}:self_edit")
    qnums = set(numbers_in(problem.question))
    options = []
    for step in split_steps(problem.solution):
        nums = numbers_in(step.text)
        types = applicable_types_for_text(step.text, bool(find_equations(step.text)), len(nums),
                                          any(n in qnums for n in nums))
        types = [t for t in types if t in cfg.error_types]
        if types:
            options.append((step, types))
    if not options:
        return "no_applicable_step"
    step, types = rng.choice(options)
    error_type = rng.choice(types)
    prompt = render_self_edit(problem.question, problem.solution[:step.start].strip(), step.text,
                              error_type, cfg.self_edit.last_sentences)
    sp = SamplingParams(temperature=cfg.self_edit.temperature, max_tokens=cfg.self_edit.max_tokens,
                        seed=_seed_int(seed, problem.id))
    payload = {"problem": problem.__dict__, "step_index": step.index, "step_start": step.start,
               "step_end": step.end, "error_type": error_type}
    return ChatRequest(key=f"{problem.id}:self_edit", messages=(("user", prompt),), sampling=sp,
                       json_schema=self_edit_schema(), template_version=SELF_EDIT_VERSION,
                       payload=payload)


def parse_edited_step(result: ChatResult) -> str | None:
    """The edited step from the model's answer (validated JSON, or JSON found in the text)."""
    if result.parsed and isinstance(result.parsed[0], dict):
        value = result.parsed[0].get("edited_step")
        return value.strip() if isinstance(value, str) and value.strip() else None
    text = (result.texts[0] if result.texts else "") or ""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start:end + 1]).get("edited_step")
    except (json.JSONDecodeError, AttributeError):
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def self_edit_outcome(result: ChatResult, cfg: RiseConfig) -> tuple[dict | None, str | None, dict]:
    """(pair row, None, detail) when the edit passes the filters, else (None, reason, detail)."""
    p = result.payload
    problem = Problem(**p["problem"])
    edited_step = parse_edited_step(result)
    detail: dict[str, Any] = {"error_type": p["error_type"], "step_index": p["step_index"]}
    if edited_step is None:
        return None, "unparseable_edit", {**detail, "raw": (result.texts or [""])[0][:500]}
    sol, s, e = problem.solution, p["step_start"], p["step_end"]
    edited = sol[:s] + edited_step + sol[e:]
    arithmetic = p["error_type"] in NUMERIC_TYPES or p["error_type"] in (
        "delete_term", "change_operator", "swap_terms")
    arithmetic = arithmetic and bool(find_equations(sol[s:e]))
    reason, fdetail = check_edit(sol, edited, s, e, cfg.self_edit.max_edit_distance, arithmetic)
    detail.update(fdetail, edited_step=edited_step[:1000])
    if reason is not None:
        return None, reason, detail
    end = s + len(edited_step)
    chosen, rejected = (sol, edited) if cfg.scope == "full" else (sol[:e], edited[:end])
    row = make_pair(problem, chosen, rejected, "self_edit", p["error_type"], p["step_index"],
                    cfg.strip_boxed_rejected, model=result.model,
                    template_version=SELF_EDIT_VERSION,
                    edit_distance=fdetail.get("edit_distance"),
                    extra={"edited_step": edited_step})
    return row, None, detail


def plan_sampled(problem: Problem, cfg: RiseConfig, seed: int) -> ChatRequest:
    sp = SamplingParams(temperature=cfg.sampled.temperature, max_tokens=cfg.sampled.max_tokens,
                        n=cfg.sampled.samples, seed=_seed_int(seed, problem.id))
    return ChatRequest(key=f"{problem.id}:sampled", messages=(("user", render_solve(
        problem.question)),), sampling=sp, template_version=SOLVE_VERSION,
        payload={"problem": problem.__dict__})


def sampled_outcome(result: ChatResult, cfg: RiseConfig, seed: int
                    ) -> tuple[list[dict], str | None, dict]:
    """(pair rows, None, detail), or ([], reason, detail): no_correct_sample /
    no_incorrect_sample. Samples stating no final answer are not used as rejected."""
    problem = Problem(**result.payload["problem"])
    texts = sorted({t.strip() for t in result.texts if t and t.strip()})
    correct = [t for t in texts if grade(t, problem.gold)]
    wrong = [t for t in texts if t not in correct and stated_answer(t) is not None]
    detail = {"samples": len(result.texts), "correct": len(correct), "incorrect": len(wrong)}
    if not correct:
        return [], "no_correct_sample", detail
    if not wrong:
        return [], "no_incorrect_sample", detail
    rng = random.Random(f"{seed}:{problem.id}:sampled")
    combos = [(c, w) for c in correct for w in wrong]
    picked = rng.sample(combos, min(cfg.sampled.max_pairs_per_problem, len(combos)))
    rows = []
    for c, w in picked:
        cs, ws = split_steps(c), split_steps(w)
        first_diff = next((i for i, (a, b) in enumerate(zip(cs, ws, strict=False))
                           if a.text != b.text), min(len(cs), len(ws)))
        rows.append(make_pair(problem, c, w, "sampled", None, first_diff,
                              cfg.strip_boxed_rejected, model=result.model,
                              template_version=SOLVE_VERSION,
                              extra={"rejected_answer": stated_answer(w)}))
    return rows, None, detail
