"""Config of the quality stage (the `stages.quality` block)."""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import Field, model_validator

from transforms.config_base import StageConfig, StrictModel
from transforms.llm.config import ModelRoles

PII_KINDS = ("email", "phone", "ip", "credit_card", "api_key")
Op = Literal["<", "<=", ">", ">=", "==", "!="]
LLM_SIGNALS = ("q_judge_quality", "q_judge_complexity", "q_ifd", "quality_score")


class FilterRule(StrictModel):
    """Drop a row when `meta.<signal> <op> <value>` holds (a null signal never matches)."""

    signal: str = Field(..., description="meta field to test, e.g. q_dup_line_frac")
    op: Op = Field(..., description="comparison: <, <=, >, >=, ==, !=")
    value: bool | int | float | str = Field(..., description="threshold or value to compare with")
    reason: str | None = Field(
        None, description="reject reason (counter dropped_<reason>); default <signal>_<op>_<value>")
    min_response_words: int = Field(
        0, ge=0, description="apply the rule only to responses with at least this many words "
        "(Gopher-style repetition rules are meant for longer texts)")
    by_kind: dict[Literal["prose", "math", "code"], bool | int | float | str | None] = Field(
        default_factory=dict, description="ours: `value` per kind of response (meta.q_kind: "
        "prose, math, code); null = the rule does not apply to that kind. Math and code "
        "solutions repeat phrases by nature, so repetition rules need other thresholds there")


class CompositeTerm(StrictModel):
    """One term of meta.quality_score: weight × the signal scaled to [0, 1] between lo and hi."""

    signal: str = Field(..., description="meta field; terms whose signal is absent are skipped")
    weight: float = Field(1.0, ge=0, description="weight in the weighted mean")
    lo: float = Field(0.0, description="value mapped to 0 (before `invert`)")
    hi: float = Field(1.0, description="value mapped to 1 (before `invert`)")
    invert: bool = Field(False, description="use 1 - scaled value (for 'lower is better' signals)")
    log: bool = Field(False, description="scale log1p(value) between log1p(lo) and log1p(hi)")


class PIIConfig(StrictModel):
    redact: bool = Field(False, description="replace PII spans in every message with [EMAIL] etc.")
    kinds: list[Literal[PII_KINDS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(PII_KINDS), description="PII kinds to redact")


class JudgeConfig(StrictModel):
    """DEITA-style LLM ratings of quality and complexity through the serving layer."""

    enabled: bool = Field(False, description="rate each example with the LLM (slow)")
    aspects: list[Literal["quality", "complexity"]] = Field(
        default_factory=lambda: ["quality", "complexity"], description="ratings to ask for")
    scale: int = Field(6, ge=2, le=9, description="ratings run from 1 to `scale`")
    use_logprobs: bool = Field(
        True, description="expected score over the rating tokens when the backend returns "
        "logprobs; a JSON rating otherwise")
    max_chars: int = Field(4000, ge=100, description="truncate prompt/response to this many chars")


class IFDConfig(StrictModel):
    """Instruction-following difficulty: loss(response | instruction) / loss(response)."""

    enabled: bool = Field(False, description="compute q_ifd with the local model (slow)")
    max_tokens: int = Field(512, ge=16, description="truncate texts to this many tokens")


class SelectionConfig(StrictModel):
    """Global top-K by quality_score with a diversity constraint on embeddings."""

    enabled: bool = Field(False, description="keep only the selected rows (others: not_selected)")
    top_k: int | None = Field(None, ge=1, description="rows to keep; None keeps every diverse row")
    max_similarity: float | None = Field(
        0.95, gt=-1, le=1, description="skip a candidate whose cosine similarity to a selected "
        "row exceeds this; None disables the diversity check (no embeddings)")
    text: Literal["prompt", "conversation"] = Field(
        "prompt", description="what is embedded for the diversity check")


# Repetition thresholds per kind of response (q_kind), ours: chosen on bench/quality_gold.py
# (GSM8K, MATH-500, HumanEval, Alpaca seed solutions against planted loops). Worked math
# repeats whole phrases ("Then multiply that number by ..."), so its dup-n-gram rules only
# look at 10-grams at a high share; code repeats short lines. None = the rule is off there.
SHORT_WORDS = 30  # a line repeated as a list is bad in short responses too (ours)
_TOP = {2: (0.2, 0.3, 0.25), 3: (0.18, 0.3, 0.25), 4: (0.16, 0.3, 0.25)}  # prose, math, code
_DUP = {5: (0.15, None, None), 6: (0.14, None, None), 7: (0.13, None, None),
        8: (0.12, None, None), 9: (0.11, None, None), 10: (0.10, 0.5, 0.25)}


def _per_kind(values: tuple) -> dict:
    return {"math": values[1], "code": values[2]}


def _default_filters() -> list[FilterRule]:
    rule = FilterRule
    gopher = [rule(signal="q_dup_line_frac", op=">", value=0.3, reason="repeated_lines",
                   min_response_words=SHORT_WORDS)]
    gopher += [rule(signal=f"q_top{n}gram_frac", op=">", value=v[0], reason=f"top{n}gram",
                    min_response_words=100, by_kind=_per_kind(v))
               for n, v in _TOP.items()]
    gopher += [rule(signal=f"q_dup{n}gram_frac", op=">", value=v[0], reason=f"dup{n}gram",
                    min_response_words=100, by_kind=_per_kind(v)) for n, v in _DUP.items()]
    return [
        rule(signal="q_empty", op="==", value=True, reason="empty_response"),
        rule(signal="q_placeholder", op="==", value=True, reason="placeholder_response"),
        rule(signal="q_prompt_eq_response", op="==", value=True, reason="prompt_equals_response"),
        rule(signal="q_refusal", op=">", value=0, reason="refusal"),
        rule(signal="q_truncated", op="==", value=True, reason="truncated"),
        rule(signal="q_non_alnum_frac", op=">", value=0.6, reason="mostly_symbols",
             min_response_words=5),
        *gopher,
    ]


def _default_composite() -> list[CompositeTerm]:
    term = CompositeTerm
    return [
        term(signal="q_response_words", weight=1.0, lo=3, hi=300, log=True),
        term(signal="q_dup_line_frac", weight=1.0, lo=0.0, hi=0.3, invert=True),
        term(signal="q_top2gram_frac", weight=0.5, lo=0.0, hi=0.3, invert=True),
        term(signal="q_dup5gram_frac", weight=1.0, lo=0.0, hi=0.3, invert=True),
        term(signal="q_non_alnum_frac", weight=0.5, lo=0.2, hi=0.6, invert=True),
        term(signal="q_refusal", weight=1.0, lo=0, hi=1, invert=True),
        term(signal="q_boilerplate", weight=0.5, lo=0, hi=2, invert=True),
        term(signal="q_truncated", weight=1.0, lo=0, hi=1, invert=True),
        term(signal="q_judge_quality", weight=3.0, lo=1, hi=6),
        term(signal="q_judge_complexity", weight=1.5, lo=1, hi=6),
        term(signal="q_ifd", weight=1.0, lo=0.2, hi=1.0),
    ]


class QualityConfig(StageConfig, ModelRoles):
    """Heuristic signals (always), optional LLM ratings and IFD, a composite score written to
    meta.quality_score, filters (dropped rows → rejected with the rule's reason) and optional
    diverse top-K selection."""

    ROLES = {"judge": "the LLM ratings (judge); IFD runs the run's `llm` weights in-process"}

    filters: list[FilterRule] = Field(
        default_factory=_default_filters,
        description="drop rules, checked in order; the first matching rule names the reason")
    composite: list[CompositeTerm] = Field(
        default_factory=_default_composite, description="terms of meta.quality_score")
    pii: PIIConfig = Field(default_factory=PIIConfig, description="PII redaction")
    judge: JudgeConfig = Field(default_factory=JudgeConfig, description="LLM quality ratings")
    ifd: IFDConfig = Field(default_factory=IFDConfig, description="instruction-following difficulty")
    selection: SelectionConfig = Field(default_factory=SelectionConfig,
                                       description="diverse top-K selection after filtering")

    @model_validator(mode="after")
    def _known_signals(self) -> QualityConfig:
        problems = [p for i, r in enumerate(self.filters) if (p := rule_problem(r, f"filters.{i}"))]
        problems += [p for i, t in enumerate(self.composite)
                     if (p := term_problem(t, f"composite.{i}"))]
        if problems:
            raise ValueError("; ".join(problems))
        return self


def signal_kinds() -> dict[str, str]:
    """Every signal a filter or composite term may name → 'bool', 'number' or 'text'."""
    import pyarrow as pa

    from transforms.quality.signals import SIGNAL_TYPES

    kinds = {n: "bool" if pa.types.is_boolean(t) else "text" if pa.types.is_string(t)
             else "number" for n, t in SIGNAL_TYPES.items()}
    return {**kinds, **dict.fromkeys(LLM_SIGNALS, "number")}


def _unknown(signal: str, where: str, kinds: dict[str, str]) -> str:
    near = difflib.get_close_matches(signal, kinds, n=1)
    return f"{where}.signal: unknown signal {signal!r}" + (f" (did you mean {near[0]!r}?)"
                                                           if near else "")


def rule_problem(rule: FilterRule, where: str) -> str | None:
    """Why a filter rule can never work as written (unknown signal, wrong value type), or None."""
    kinds = signal_kinds()
    kind = kinds.get(rule.signal)
    if kind is None:
        return _unknown(rule.signal, where, kinds)
    for value in [rule.value, *(v for v in rule.by_kind.values() if v is not None)]:
        ok = {"bool": isinstance(value, bool),
              "number": isinstance(value, int | float) and not isinstance(value, bool),
              "text": isinstance(value, str) and rule.op in ("==", "!=")}[kind]
        if not ok:
            return (f"{where}.value: {value!r} cannot be compared with {rule.op} to "
                    f"{rule.signal}, a {kind} signal")
    return None


def term_problem(term: CompositeTerm, where: str) -> str | None:
    kinds = signal_kinds()
    kind = kinds.get(term.signal)
    if kind is None:
        return _unknown(term.signal, where, kinds)
    if kind == "text":
        return f"{where}.signal: {term.signal} is a text signal; a composite term needs a number"
    return None
