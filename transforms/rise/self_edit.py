"""Self-edit (the RISE paper's step pairs): the editor model rewrites the end of one step of the
policy's own correct solution with one subtle error. Pure code: requests out, pairs back.

Reads an edit job (sampling.edit_jobs: the correct sample, the step's span, the error type);
builds a `ChatRequest` (prompts/self_edit.jinja, JSON answer schemas/llm/rise_self_edit.json)
asking for the last <= N sentences of the step rewritten (the "Step k:" marker and the earlier
sentences stay). The answer is spliced in and filtered (filters.check_edit: admits_error,
edit_too_large, noop_edit, keeps_correct_answer for the last step, computation_unchanged for
arithmetic types); a passing edit becomes a step pair (step_pairs.make_step_pair).
"""

from __future__ import annotations

import json
import re
from typing import Any

from schemas.ids import derive_seed
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.llm.prompts import load_prompt
from transforms.rise.config import RiseConfig
from transforms.rise.errors import ARITHMETIC_TYPES, ERROR_TYPES
from transforms.rise.filters import check_edit
from transforms.rise.pairs import Problem
from transforms.rise.step_pairs import make_step_pair
from transforms.rise.steps import STEP_MARK, split_sentences


def rewrite_cut(step: str, n_sentences: int) -> int:
    """Where the rewritable tail of a step begins: its last `n_sentences` sentences, never
    before the end of its "Step k:" marker."""
    sentences = split_sentences(step)
    cut = sentences[-min(n_sentences, len(sentences))].start if sentences else 0
    marker = STEP_MARK.match(step)
    if marker is not None and cut < marker.end():
        cut = marker.end()
        while cut < len(step) and step[cut] in " \t":
            cut += 1
    return cut


def edit_request(problem: Problem, prompt: list[dict[str, str]], job: dict[str, Any],
                 cfg: RiseConfig, seed: int, policy: dict[str, str]) -> ChatRequest:
    """The editor's request for one job; `policy` holds the sampling model and prompt version
    (lineage of the chosen text)."""
    sample, s, e = job["sample"], job["step_start"], job["step_end"]
    step = sample[s:e]
    cut = rewrite_cut(step, cfg.self_edit.last_sentences)
    tpl = load_prompt("rise", "self_edit")
    text = tpl.render(
        question=problem.question, previous_steps=sample[:s].strip(), step=step,
        keep=step[:cut], rewrite=step[cut:], n_sentences=cfg.self_edit.last_sentences,
        error_type=job["error_type"], error_description=ERROR_TYPES[job["error_type"]])
    key = f"{problem.id}:edit:{job['job']}"
    sp = SamplingParams(temperature=cfg.self_edit.temperature,
                        max_tokens=cfg.self_edit.max_tokens, seed=derive_seed(seed, key))
    payload = {"problem": problem.__dict__, "prompt": prompt, "job": {**job, "cut": s + cut},
               "policy": policy}
    return ChatRequest(key=key, messages=(("user", text),), sampling=sp,
                       json_schema=tpl.answer_schema(),
                       template_version=tpl.version, payload=payload)


def parse_rewrite(result: ChatResult) -> str | None:
    """The rewritten sentences from the editor's answer (validated JSON, or JSON in text)."""
    if result.parsed and isinstance(result.parsed[0], dict):
        value = result.parsed[0].get("rewritten")
        return value.strip() if isinstance(value, str) and value.strip() else None
    text = (result.texts[0] if result.texts else "") or ""
    m = re.search(r"\{.*\}", text, re.S)
    if m is None:
        return None
    try:
        value = json.loads(m.group(0)).get("rewritten")
    except (json.JSONDecodeError, AttributeError):
        return None
    return value.strip() if isinstance(value, str) and value.strip() else None


def edit_outcome(result: ChatResult, cfg: RiseConfig
                 ) -> tuple[dict[str, Any] | None, str | None, dict[str, Any]]:
    """(pair row, None, detail) when the edit passes the filters, else
    (None, reason, detail); raises on an answer without a rewrite."""
    p = result.payload
    problem, job = Problem(**p["problem"]), p["job"]
    detail: dict[str, Any] = {"error_type": job["error_type"], "step_index": job["step_index"]}
    rewritten = parse_rewrite(result)
    if rewritten is None:  # the kit rejects the edit as edit_unparseable, with the raw answer
        raise ValueError("no rewrite in the answer")
    sample, s, e, cut = job["sample"], job["step_start"], job["step_end"], job["cut"]
    edited_step = sample[s:cut] + rewritten
    edited = sample[:s] + edited_step + sample[e:]
    reason, fdetail = check_edit(
        sample, edited, s, e,
        10**9 if cfg.self_edit.max_edit_distance is None else cfg.self_edit.max_edit_distance,
        arithmetic=job["error_type"] in ARITHMETIC_TYPES,
        last_step_gold=problem.gold if job["is_last"] else None, require_false=False)
    detail.update(fdetail, edited_step=edited_step[:1000])
    if reason is not None:
        return None, reason, detail
    row = make_step_pair(
        problem, p["prompt"], sample[:s], sample[s:e], edited_step, method="self_edit",
        error_type=job["error_type"], step_index=job["step_index"],
        strip_rejected_boxed=cfg.strip_boxed_rejected, model=result.model,
        template_version=result.template_version, edit_distance=fdetail.get("edit_distance"),
        extra={"policy_model": p["policy"]["model"],
               "policy_template_version": p["policy"]["template_version"]})
    return row, None, detail
