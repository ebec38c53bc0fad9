"""The paper mode's model steps (`mode: paper`): the solve request, what one problem's samples
yield, the edit requests and what an edit yields. Pure code over ChatRequest / ChatResult; the
method itself is in paper_core. Our additions (config options, off in configs/rise_paper.yaml):
`sampling.drop_self_correcting` (more chosen-filter phrases), `self_edit.max_edit_distance`,
`keeps_correct_answer`, `computation_unchanged`, `drop_noop`, `pairs_per_problem` > 1.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from typing import Any

from schemas.ids import derive_seed
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.rise import paper_core as P
from transforms.rise.config import RiseConfig
from transforms.rise.errors import ARITHMETIC_TYPES
from transforms.rise.filters import computation_changed, holds_answer, token_edit_distance
from transforms.rise.pairs import Problem, make_pair
from transforms.rise.paper_grade import grade_paper
from transforms.rise.report import summarize_pairs
from transforms.rise.step_pairs import make_step_pair


def solve_request(problem: Problem, row: dict[str, Any], cfg: RiseConfig,
                  seed: int) -> ChatRequest:
    """k samples of the authors' solve prompt, the assistant turn prefilled."""
    msgs = P.solve_messages(problem.question)
    s = cfg.sampling
    sp = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                        n=s.samples, seed=derive_seed(seed, problem.id, "solve"))
    return ChatRequest(key=f"{problem.id}:solve",
                       messages=tuple((m["role"], m["content"]) for m in msgs), sampling=sp,
                       template_version=P.SOLVE_VERSION, prefill=P.SOLVE_PREFILL,
                       payload={"row": row, "problem": problem.__dict__, "prompt": msgs})


def verdicts(problem: Problem, texts: list[str], finish: tuple[str, ...] | None) -> list[str]:
    """correct / incorrect per sample; `truncated` when the token limit cut it."""
    finish = finish or ("",) * len(texts)
    return [P.TRUNCATED if f == "length" else
            "correct" if grade_paper(problem.question, t, problem.gold) else "incorrect"
            for t, f in zip(texts, finish, strict=True)]


def after_sampling(problem: Problem, prompt: list[dict[str, str]], result: ChatResult,
                   cfg: RiseConfig, seed: int) -> tuple[list[dict], list[ChatRequest],
                                                        list[str], dict[str, Any]]:
    """(full pair rows, edit requests, reasons when nothing pairs, summary counts)."""
    texts = [P.SOLVE_PREFILL + t for t in result.texts]
    v = verdicts(problem, list(result.texts), result.finish_reasons)
    rng = random.Random(f"{seed}:{problem.id}:paper")
    got = P.pick_full_pair(problem.question, texts, v, rng, cfg.sampling.drop_self_correcting)
    c = got.counts()
    summary: dict[str, Any] = {
        "samples": {"total": len(texts), **c},
        "problems_with_correct": int(c["correct"] > 0),
        "problems_with_incorrect": int(c["incorrect"] > 0)}
    if got.chosen is None or got.rejected is None:
        return [], [], got.reasons, summary
    full = make_pair(problem, got.chosen, got.rejected, "sampled", None, None,
                     strip_rejected_boxed=False, model=result.model,
                     template_version=result.template_version, prompt=prompt,
                     extra={"rejected_verdict": "incorrect"})
    reqs = []
    if "self_edit" in cfg.methods:
        jobs = P.step_jobs(got.chosen, rng, cfg.self_edit.last_sentences,
                           tuple(cfg.error_types))
        policy = {"model": result.model, "template_version": result.template_version}
        reqs = [edit_request(problem, prompt, job, i, cfg, seed, policy)
                for i, job in enumerate(jobs)]
    summary = {**summary, **summarize_pairs([full])}
    return [full], reqs, [], summary


def edit_request(problem: Problem, prompt: list[dict[str, str]], job: P.StepJob, i: int,
                 cfg: RiseConfig, seed: int, policy: dict[str, str]) -> ChatRequest:
    """The editor's request for one step (greedy by default, the edit prefill)."""
    key = f"{problem.id}:edit:{i}"
    msgs = P.edit_messages(problem.question, job)
    sp = SamplingParams(temperature=cfg.self_edit.temperature, top_p=1.0,
                        max_tokens=cfg.self_edit.max_tokens, seed=derive_seed(seed, key))
    return ChatRequest(key=key, messages=tuple((m["role"], m["content"]) for m in msgs),
                       sampling=sp, template_version=P.EDIT_VERSION, prefill=P.EDIT_PREFILL,
                       payload={"problem": problem.__dict__, "prompt": prompt,
                                "job": asdict(job), "policy": policy})


def edit_outcome(result: ChatResult, cfg: RiseConfig
                 ) -> tuple[dict[str, Any] | None, str | None, dict[str, Any]]:
    """(step pair row, None, detail) for an edit that survives, else (None, reason, detail);
    raises on an answer without the fenced edit."""
    p = result.payload
    problem, job = Problem(**p["problem"]), P.StepJob(**p["job"])
    detail: dict[str, Any] = {"error_type": job.error_type, "step": job.step}
    edit = P.extract_edit(result.texts[0] if result.texts else "")
    if edit is None:  # the kit rejects the edit as edit_unparseable, with the raw answer
        raise ValueError("no edit between the fences")
    if P.has_phrase(problem.question, edit, P.EDIT_PHRASES):
        return None, "admits_error", detail
    rejected = job.chosen.replace(job.text_to_edit, edit)
    if cfg.strip_boxed_rejected:
        rejected = P.unbox(rejected)
    se = cfg.self_edit
    dist = token_edit_distance(job.chosen, rejected)
    detail["edit_distance"] = dist
    if se.drop_noop and rejected == job.chosen:
        return None, "noop_edit", detail
    if se.max_edit_distance is not None and dist > se.max_edit_distance:
        return None, "edit_too_large", detail
    if se.keeps_correct_answer and job.last_step and holds_answer(rejected, problem.gold):
        return None, "keeps_correct_answer", detail
    if (se.computation_unchanged and job.error_type in ARITHMETIC_TYPES
            and not computation_changed(job.chosen, rejected)):
        return None, "computation_unchanged", detail
    row = make_step_pair(
        problem, p["prompt"], job.initial_reason_steps, job.chosen, rejected,
        method="self_edit", error_type=job.error_type, step_index=int(job.step) - 1,
        strip_rejected_boxed=False, model=result.model,
        template_version=result.template_version, edit_distance=dist,
        extra={"policy_model": p["policy"]["model"],
               "policy_template_version": p["policy"]["template_version"],
               "text_to_edit": job.text_to_edit, "edit": edit, "last_step": job.last_step})
    return row, None, detail


def select_step_pairs(pid: str, rows: list[dict[str, Any]], cfg: RiseConfig,
                      seed: int) -> list[dict[str, Any]]:
    """The step pairs kept for one problem: M random survivors (the paper: M = 1)."""
    if cfg.mode != "paper":
        return rows
    rows = sorted(rows, key=lambda r: r["id"])
    rng = random.Random(f"{seed}:{pid}:keep")
    return rng.sample(rows, min(cfg.self_edit.pairs_per_problem, len(rows)))
