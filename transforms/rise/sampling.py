"""The policy's own solutions: grade them, pair a correct with an incorrect one, pick the steps
to edit. Pure code over one problem's k samples.

Reads a Problem, the messages its samples were generated from, and the sample texts. Writes
the full-solution pair (a random usable correct sample vs a random incorrect one: a stated wrong
answer, else an unfinished sample), rule-edit pairs of a correct sample when rule_edit is on,
and up to M edit jobs (sample, step, error type drawn among those that fit the step) for the
editor. Correct samples that correct themselves are not used. The summary counts samples by
verdict; `reason` says why a problem can yield nothing (no_correct_sample, ...).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from transforms.rise.answers import CORRECT, INCORRECT, UNFINISHED, grade_sample, stated_answer
from transforms.rise.config import RiseConfig
from transforms.rise.errors import types_for_step
from transforms.rise.filters import self_corrects
from transforms.rise.pairs import Problem, make_pair
from transforms.rise.rule_pairs import rule_edit_pairs
from transforms.rise.steps import split_steps


@dataclass
class Sample:
    text: str
    verdict: str  # CORRECT / INCORRECT / UNFINISHED
    self_correcting: bool


@dataclass
class SampleOutcome:
    pairs: list[dict[str, Any]] = field(default_factory=list)
    edit_jobs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # why a method yields nothing here
    detail: dict[str, Any] = field(default_factory=dict)


def grade_samples(texts: list[str] | tuple[str, ...], gold: str) -> list[Sample]:
    """Each distinct non-empty sample (sorted, so the order of the answers does not matter)."""
    uniq = sorted({t.strip() for t in texts if t and t.strip()})
    return [Sample(t, grade_sample(t, gold), self_corrects(t)) for t in uniq]


def _summary(samples: list[Sample], n_texts: int) -> dict[str, Any]:
    verdicts = [s.verdict for s in samples]
    return {
        "samples": {"total": n_texts, "distinct": len(samples),
                    **{v: verdicts.count(v) for v in (CORRECT, INCORRECT, UNFINISHED)},
                    "self_correcting": sum(s.self_correcting and s.verdict == CORRECT
                                           for s in samples)},
        "problems_with_correct": int(CORRECT in verdicts),
        "problems_with_incorrect": int(INCORRECT in verdicts or UNFINISHED in verdicts),
    }


def edit_jobs(problem: Problem, usable: list[Sample], cfg: RiseConfig,
              rng: random.Random) -> list[dict[str, Any]]:
    """Up to M (sample, step, error type) picks, spread over the usable correct samples."""
    options = []
    for k, sample in enumerate(usable):
        steps = split_steps(sample.text)
        for step in steps:
            types = [t for t in types_for_step(step.text) if t in cfg.error_types]
            if types:
                options.append((k, sample, step, types, step.index == len(steps) - 1))
    rng.shuffle(options)
    by_sample: dict[int, list[Any]] = {}
    for o in options:
        by_sample.setdefault(o[0], []).append(o)
    spread = [o for group in zip_longest(*by_sample.values()) for o in group if o is not None]
    jobs: list[dict[str, Any]] = []
    for _, sample, step, types, last in spread[:cfg.self_edit.pairs_per_problem]:
        jobs.append({"sample": sample.text, "step_index": step.index, "step_start": step.start,
                     "step_end": step.end, "error_type": rng.choice(types), "is_last": last,
                     "job": len(jobs)})
    return jobs


def after_sampling(problem: Problem, prompt: list[dict[str, str]], texts: tuple[str, ...],
                   cfg: RiseConfig, seed: int, model: str = "",
                   template_version: str = "",
                   finish_reasons: tuple[str, ...] | None = None) -> SampleOutcome:
    """Everything one problem's samples yield: pairs, edit jobs, counts and reasons. A sample
    whose finish reason is "length" (cut by the token limit) is `truncated`: counted, never
    chosen, never rejected."""
    finish = finish_reasons or ()
    cut = [i < len(finish) and finish[i] == "length" for i in range(len(texts))]
    samples = grade_samples([t for t, c in zip(texts, cut, strict=True) if not c], problem.gold)
    out = SampleOutcome(summary=_summary(samples, len(texts)))
    out.summary["samples"]["truncated"] = sum(cut)
    rng = random.Random(f"{seed}:{problem.id}:samples")
    correct = [s for s in samples if s.verdict == CORRECT]
    usable = [s for s in correct if not (cfg.sampling.drop_self_correcting and s.self_correcting)]
    wrong = [s for s in samples if s.verdict == INCORRECT] or \
        [s for s in samples if s.verdict == UNFINISHED]
    out.detail = {k: v for k, v in out.summary["samples"].items() if k != "total"}
    if not usable:
        out.reasons.append("only_self_correcting_samples" if correct else "no_correct_sample")
        return _rule_on_gold(problem, cfg, seed, out)
    if "sampled" in cfg.methods:
        if wrong:
            chosen, rejected = rng.choice(usable), rng.choice(wrong)
            out.pairs.append(make_pair(
                problem, chosen.text, rejected.text, "sampled", None, None,
                cfg.strip_boxed_rejected, model=model, template_version=template_version,
                prompt=prompt, extra={"rejected_verdict": rejected.verdict,
                                      "rejected_answer": stated_answer(rejected.text)}))
        else:
            out.reasons.append("no_incorrect_sample")
    if "self_edit" in cfg.methods:
        out.edit_jobs = edit_jobs(problem, usable, cfg, rng)
        if not out.edit_jobs:
            out.reasons.append("no_applicable_step")
    if "rule_edit" in cfg.methods:
        res = rule_edit_pairs(problem, rng.choice(usable).text, prompt, "self_sample", cfg, seed)
        _add_rule(out, res)
    return out


def _rule_on_gold(problem: Problem, cfg: RiseConfig, seed: int,
                  out: SampleOutcome) -> SampleOutcome:
    """No usable sample: rule_edit falls back to the gold solution (labelled gold)."""
    if "rule_edit" in cfg.methods and problem.solution:
        _add_rule(out, rule_edit_pairs(problem, problem.solution, problem.prompt, "gold", cfg,
                                       seed))
    return out


def _add_rule(out: SampleOutcome, res: dict[str, Any] | str) -> None:
    if isinstance(res, str):
        out.reasons.append(res)
    else:
        out.pairs.append(res)
