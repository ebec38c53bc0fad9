"""The four steps of CQ-Syn for one item, each a pure function of the previous model answer:

1. question (writer) → parse, generic rules, per-type rules → question_check request;
2. question_check (judge) → one natural compound question, answerable, of its type → answer
   request;
3. answer (answer model) → parse, answer rules → answer_check request, or accepted;
4. answer_check (judge, optional) → covers every sub-question, agrees with the context.

Each `on_<step>` reads a ChatResult and returns a `Step`: the next request, a rejection (reason
+ detail naming the failing check) or the accepted row. Reasons: `question_<parse error>` and
`answer_<parse error>` (after the serving layer's schema check only blank texts remain:
`empty_sub_questions`, `empty_compound_question`, `empty_sub_answers`, `empty_answer`),
`rule_<rule>` (rule_check.py, type_rules.py), `llm_question_not_compound`,
`llm_question_not_answerable`, `llm_question_wrong_type`, `llm_answer_not_covering`,
`llm_answer_inconsistent`. No Beam, no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transforms.compound import core, templates
from transforms.compound.config import CompoundConfig
from transforms.compound.parsers import (
    Parsed,
    parse_answer,
    parse_answer_check,
    parse_question,
    parse_question_check,
    result_payload,
)
from transforms.compound.rule_check import RuleParams, check_answers, check_question
from transforms.compound.type_rules import check_type
from transforms.llm.api import ChatRequest, ChatResult

RAW_LIMIT = 2000  # characters of raw model output kept in a rejection's detail
QUESTION_VERDICTS = (("single_compound_question", "llm_question_not_compound"),
                     ("answerable_from_context", "llm_question_not_answerable"),
                     ("matches_type", "llm_question_wrong_type"))
ANSWER_VERDICTS = (("covers_all_sub_questions", "llm_answer_not_covering"),
                   ("consistent_with_context", "llm_answer_inconsistent"))
LLM_REASONS = tuple(r for _, r in QUESTION_VERDICTS + ANSWER_VERDICTS)


@dataclass(frozen=True)
class Step:
    request: ChatRequest | None = None  # the next call, when the item goes on
    row: dict[str, Any] | None = None  # the output row, when the item is finished
    accepted: bool = False
    reason: str | None = None  # why it was rejected
    detail: dict[str, Any] | None = None
    partner_status: str | None = None  # found / fallback / none, for two-subject categories
    n_sub_questions: int | None = None


def rule_params(cfg: CompoundConfig) -> RuleParams:
    return RuleParams(min_sub_questions=cfg.min_sub_questions,
                      max_sub_questions=cfg.max_sub_questions,
                      presence_min_overlap=cfg.presence_min_overlap,
                      min_shared_words=cfg.min_shared_words,
                      answer_min_overlap=cfg.answer_min_overlap,
                      min_seed_words=cfg.min_seed_words)


def finish(item: dict[str, Any], cfg: CompoundConfig, reason: str | None = None,
           detail: dict[str, Any] | None = None) -> Step:
    """The item's final Step: accepted without a reason, else rejected with it."""
    subs = item.get("sub_questions")
    return Step(row=core.output_row(item, cfg.max_context_chars), accepted=reason is None,
                reason=reason, detail=detail, partner_status=item.get("partner_status"),
                n_sub_questions=len(subs) if subs else None)


def _received(result: ChatResult, step: str, parse: Callable[[Any], Parsed]
              ) -> tuple[dict[str, Any], Parsed]:
    item = dict(result.payload)
    item["models"] = {**item.get("models", {}), step: result.model}
    item["steps_reached"] = [*item.get("steps_reached", []), step]
    return item, parse(result_payload(result.parsed, result.texts))


def _parse_failure(item: dict[str, Any], step: str, parsed: Parsed, result: ChatResult,
                   cfg: CompoundConfig) -> Step:
    raw = (result.texts[0] if result.texts else "")[:RAW_LIMIT]
    return finish(item, cfg, f"{step}_{parsed.error}",
                  {"check": "parse", "step": step, "error": parsed.detail, "raw": raw})


def _judge_parsed(parsed: Parsed) -> None:
    """A verdict that passed its JSON Schema always parses (booleans required); if it does not,
    that is a bug here, and the item goes to the dead letter (raised to `_OnStep`)."""
    if not parsed.ok:
        raise ValueError(f"schema-valid verdict did not parse: {parsed.error} ({parsed.detail})")


def _material(item: dict[str, Any], cfg: CompoundConfig) -> tuple[str, list[str]]:
    return (templates.user_context(item["seed"], item.get("partner"), cfg.max_context_chars),
            templates.facts(item["seed"], item.get("partner"), cfg.max_seed_chars))


def on_question(result: ChatResult, cfg: CompoundConfig, run_seed: int) -> Step:
    """Parse the writer's answer; run the generic and the per-type rules; ask the judge."""
    item, parsed = _received(result, "question", parse_question)
    if not parsed.ok:
        return _parse_failure(item, "question", parsed, result, cfg)
    q = parsed.value
    item["compound_question"], item["sub_questions"] = q.compound_question, list(q.sub_questions)
    fails = check_question(q.compound_question, q.sub_questions, rule_params(cfg),
                           core.seed_text(item))
    fails += check_type(item["category"], q.compound_question, q.sub_questions)
    if fails:
        return finish(item, cfg, f"rule_{fails[0]['rule']}",
                      {"check": "rule", "step": "question", "failures": fails})
    item["checks"] = {"rules_question": "pass"}
    context, fact_lines = _material(item, cfg)
    prompt = templates.render_question_check(item["category"], q.compound_question,
                                             item["sub_questions"], context, fact_lines)
    return Step(request=core.make_request(
        item, "question_check", prompt, templates.check_schema("question_check"),
        cfg, run_seed))


def _verdict(item: dict[str, Any], step: str, value: Any, verdicts: tuple[tuple[str, str], ...]
             ) -> tuple[dict[str, Any], str | None]:
    """Record the judge's verdict on the item; the reason of its first false verdict."""
    verdict = {name: getattr(value, name) for name, _ in verdicts}
    verdict["reasoning"] = value.reasoning
    item["checks"] = {**item.get("checks", {}), step: verdict}
    reason = next((r for name, r in verdicts if not verdict[name]), None)
    return {"check": "llm", "step": step, **verdict}, reason


def on_question_check(result: ChatResult, cfg: CompoundConfig, run_seed: int) -> Step:
    """The judge's verdict on the question; all three true → ask the answer model."""
    item, parsed = _received(result, "question_check", parse_question_check)
    _judge_parsed(parsed)
    detail, reason = _verdict(item, "question_check", parsed.value, QUESTION_VERDICTS)
    if reason:
        return finish(item, cfg, reason, detail)
    context, fact_lines = _material(item, cfg)
    prompt = templates.render_answer(item["category"], item["compound_question"],
                                     item["sub_questions"], context, fact_lines)
    return Step(request=core.make_request(
        item, "answer", prompt, templates.answer_schema(),
        cfg, run_seed))


def on_answer(result: ChatResult, cfg: CompoundConfig, run_seed: int) -> Step:
    """Parse the reference answer; run the answer rules; accept, or ask the judge when
    `answer_check` is on."""
    item, parsed = _received(result, "answer", parse_answer)
    if not parsed.ok:
        return _parse_failure(item, "answer", parsed, result, cfg)
    a = parsed.value
    item["answer"], item["sub_answers"] = a.answer, list(a.sub_answers)
    fails = check_answers(item["sub_questions"], a.answer, a.sub_answers, rule_params(cfg))
    if fails:
        return finish(item, cfg, f"rule_{fails[0]['rule']}",
                      {"check": "rule", "step": "answer", "failures": fails})
    item["checks"] = {**item.get("checks", {}), "rules_answer": "pass"}
    if not cfg.answer_check:
        return finish(item, cfg)
    context, fact_lines = _material(item, cfg)
    prompt = templates.render_answer_check(item["category"], item["compound_question"],
                                           item["sub_questions"], a.answer, context, fact_lines)
    return Step(request=core.make_request(
        item, "answer_check", prompt, templates.check_schema("answer_check"),
        cfg, run_seed))


def on_answer_check(result: ChatResult, cfg: CompoundConfig, run_seed: int) -> Step:
    """The judge's verdict on the answer: accepted only when both are true."""
    item, parsed = _received(result, "answer_check", parse_answer_check)
    _judge_parsed(parsed)
    detail, reason = _verdict(item, "answer_check", parsed.value, ANSWER_VERDICTS)
    return finish(item, cfg, reason, detail if reason else None)


ON_STEP: dict[str, Callable[[ChatResult, CompoundConfig, int], Step]] = {
    "question": on_question, "question_check": on_question_check, "answer": on_answer,
    "answer_check": on_answer_check}
