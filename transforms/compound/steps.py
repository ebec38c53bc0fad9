"""The four model steps of CQ-Syn, each a kit step (`build` item → request, `parse` answer →
item or `Rejection`):

1. question (writer) → parse, generic rules, per-type rules;
2. question_check (judge) → one natural compound question, answerable, of its type;
3. answer (answer model) → parse, answer rules;
4. answer_check (judge, optional) → covers every sub-question, agrees with the context.

An item is a JSON-able dict (core.py); a `Rejection` carries the item itself (the stage turns
it into its output row with `finish`). Reasons: `question_<parse error>` and
`answer_<parse error>` (after the serving layer's schema check only blank texts remain:
`empty_sub_questions`, `empty_compound_question`, `empty_sub_answers`, `empty_answer`),
`rule_<rule>` (rule_check.py, type_rules.py), `llm_question_not_compound`,
`llm_question_not_answerable`, `llm_question_wrong_type`, `llm_answer_not_covering`,
`llm_answer_inconsistent`; a verdict that does not parse raises, which the kit turns into
`<step>_unparseable` with the raw answer. No Beam, no model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
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
from transforms.kit import RAW_LIMIT, Rejection, StepSpec
from transforms.llm.api import ChatRequest, ChatResult

Item = dict[str, Any]
QUESTION_VERDICTS = (("single_compound_question", "llm_question_not_compound"),
                     ("answerable_from_context", "llm_question_not_answerable"),
                     ("matches_type", "llm_question_wrong_type"))
ANSWER_VERDICTS = (("covers_all_sub_questions", "llm_answer_not_covering"),
                   ("consistent_with_context", "llm_answer_inconsistent"))
LLM_REASONS = tuple(r for _, r in QUESTION_VERDICTS + ANSWER_VERDICTS)


@dataclass(frozen=True)
class Step:
    """A finished item: its output row, accepted or rejected (reason + detail)."""

    row: dict[str, Any]
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


def finish(item: Item, cfg: CompoundConfig, reason: str | None = None,
           detail: dict[str, Any] | None = None) -> Step:
    """The item's final Step: accepted without a reason, else rejected with it."""
    subs = item.get("sub_questions")
    return Step(row=core.output_row(item, cfg.max_context_chars), accepted=reason is None,
                reason=reason, detail=detail, partner_status=item.get("partner_status"),
                n_sub_questions=len(subs) if subs else None)


def finish_outcome(out: Item | Rejection, cfg: CompoundConfig) -> Step:
    """An item that passed every step (accepted) or a Rejection of one (rejected; after a
    Beam shuffle it may arrive as a plain tuple)."""
    if isinstance(out, dict):
        return finish(out, cfg)
    item, reason, detail = out
    return finish(item, cfg, reason, detail)


def _received(result: ChatResult, step: str, parse: Callable[[Any], Parsed]
              ) -> tuple[Item, Parsed]:
    item = dict(result.payload)
    item["models"] = {**item.get("models", {}), step: result.model}
    item["steps_reached"] = [*item.get("steps_reached", []), step]
    return item, parse(result_payload(result.parsed, result.texts))


def _parse_failure(item: Item, step: str, parsed: Parsed, result: ChatResult) -> Rejection:
    raw = (result.texts[0] if result.texts else "")[:RAW_LIMIT]
    return Rejection(item, f"{step}_{parsed.error}",
                     {"check": "parse", "step": step, "error": parsed.detail, "raw": raw})


def _judge_parsed(parsed: Parsed) -> None:
    """A verdict that passed its JSON Schema parses (booleans required); one that does not is
    unparseable (raised: the kit rejects the item as `<step>_unparseable`)."""
    if not parsed.ok:
        raise ValueError(f"schema-valid verdict did not parse: {parsed.error} ({parsed.detail})")


def _material(item: Item, cfg: CompoundConfig) -> tuple[str, list[str]]:
    return (templates.user_context(item["seed"], item.get("partner"), cfg.max_context_chars),
            templates.facts(item["seed"], item.get("partner"), cfg.max_seed_chars))


def read_question(result: ChatResult, cfg: CompoundConfig) -> Item | Rejection:
    """Parse the writer's answer; run the generic and the per-type rules."""
    item, parsed = _received(result, "question", parse_question)
    if not parsed.ok:
        return _parse_failure(item, "question", parsed, result)
    q = parsed.value
    item["compound_question"], item["sub_questions"] = q.compound_question, list(q.sub_questions)
    fails = check_question(q.compound_question, q.sub_questions, rule_params(cfg),
                           core.seed_text(item))
    fails += check_type(item["category"], q.compound_question, q.sub_questions)
    if fails:
        return Rejection(item, f"rule_{fails[0]['rule']}",
                         {"check": "rule", "step": "question", "failures": fails})
    item["checks"] = {"rules_question": "pass"}
    return item


def question_check_request(item: Item, cfg: CompoundConfig, run_seed: int) -> ChatRequest:
    context, fact_lines = _material(item, cfg)
    prompt = templates.render_question_check(item["category"], item["compound_question"],
                                             item["sub_questions"], context, fact_lines)
    return core.make_request(item, "question_check", prompt,
                             templates.check_schema("question_check"), cfg, run_seed)


def _verdict(item: Item, step: str, value: Any, verdicts: tuple[tuple[str, str], ...]
             ) -> tuple[dict[str, Any], str | None]:
    """Record the judge's verdict on the item; the reason of its first false verdict."""
    verdict = {name: getattr(value, name) for name, _ in verdicts}
    verdict["reasoning"] = value.reasoning
    item["checks"] = {**item.get("checks", {}), step: verdict}
    reason = next((r for name, r in verdicts if not verdict[name]), None)
    return {"check": "llm", "step": step, **verdict}, reason


def read_question_check(result: ChatResult, cfg: CompoundConfig) -> Item | Rejection:
    """The judge's verdict on the question: all three true → the item goes on."""
    item, parsed = _received(result, "question_check", parse_question_check)
    _judge_parsed(parsed)
    detail, reason = _verdict(item, "question_check", parsed.value, QUESTION_VERDICTS)
    return Rejection(item, reason, detail) if reason else item


def answer_request(item: Item, cfg: CompoundConfig, run_seed: int) -> ChatRequest:
    context, fact_lines = _material(item, cfg)
    prompt = templates.render_answer(item["category"], item["compound_question"],
                                     item["sub_questions"], context, fact_lines)
    return core.make_request(item, "answer", prompt, templates.answer_schema(), cfg, run_seed)


def read_answer(result: ChatResult, cfg: CompoundConfig) -> Item | Rejection:
    """Parse the reference answer; run the answer rules."""
    item, parsed = _received(result, "answer", parse_answer)
    if not parsed.ok:
        return _parse_failure(item, "answer", parsed, result)
    a = parsed.value
    item["answer"], item["sub_answers"] = a.answer, list(a.sub_answers)
    fails = check_answers(item["sub_questions"], a.answer, a.sub_answers, rule_params(cfg))
    if fails:
        return Rejection(item, f"rule_{fails[0]['rule']}",
                         {"check": "rule", "step": "answer", "failures": fails})
    item["checks"] = {**item.get("checks", {}), "rules_answer": "pass"}
    return item


def answer_check_request(item: Item, cfg: CompoundConfig, run_seed: int) -> ChatRequest:
    context, fact_lines = _material(item, cfg)
    prompt = templates.render_answer_check(item["category"], item["compound_question"],
                                           item["sub_questions"], item["answer"], context,
                                           fact_lines)
    return core.make_request(item, "answer_check", prompt,
                             templates.check_schema("answer_check"), cfg, run_seed)


def read_answer_check(result: ChatResult, cfg: CompoundConfig) -> Item | Rejection:
    """The judge's verdict on the answer: the item passes only when both are true."""
    item, parsed = _received(result, "answer_check", parse_answer_check)
    _judge_parsed(parsed)
    detail, reason = _verdict(item, "answer_check", parsed.value, ANSWER_VERDICTS)
    return Rejection(item, reason, detail) if reason else item


BUILD: dict[str, Callable[[Item, CompoundConfig, int], ChatRequest]] = {
    "question": core.question_request, "question_check": question_check_request,
    "answer": answer_request, "answer_check": answer_check_request}
READ: dict[str, Callable[[ChatResult, CompoundConfig], Item | Rejection]] = {
    "question": read_question, "question_check": read_question_check, "answer": read_answer,
    "answer_check": read_answer_check}


def _item_of(item: Item) -> Item:
    """A failed item is rejected as itself (the stage's `finish` makes its row)."""
    return item


def _parse_check(item: Item) -> dict[str, Any]:
    """An unreadable answer's detail names its check, like every compound rejection."""
    return {"check": "parse"}


def step_specs(cfg: CompoundConfig, run_seed: int) -> list[StepSpec]:
    """The kit steps in order (answer_check only when `cfg.answer_check`)."""
    names = core.STEPS if cfg.answer_check else core.STEPS[:-1]
    return [StepSpec(name=name, prompt=templates.load_template(core.TEMPLATE_OF_STEP.get(
                         name, "factual_statement")),
                     build=partial(BUILD[name], cfg=cfg, run_seed=run_seed),
                     parse=partial(READ[name], cfg=cfg), row_of=_item_of,
                     role=core.ROLE_OF_STEP[name], detail=_parse_check)
            for name in names]
