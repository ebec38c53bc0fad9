"""Config of the quality stage (the `stages.quality` block)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from transforms.config_base import StageConfig, StrictModel
from transforms.llm.config import ModelRoles

PII_KINDS = ("email", "phone", "ip", "credit_card", "api_key")
Op = Literal["<", "<=", ">", ">=", "==", "!="]


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


def _default_filters() -> list[FilterRule]:
    rule = FilterRule
    gopher = [rule(signal="q_dup_line_frac", op=">", value=0.3, reason="repeated_lines",
                   min_response_words=100)]
    gopher += [rule(signal=f"q_top{n}gram_frac", op=">", value=v, reason=f"top{n}gram",
                    min_response_words=100) for n, v in ((2, 0.2), (3, 0.18), (4, 0.16))]
    gopher += [rule(signal=f"q_dup{n}gram_frac", op=">", value=v, reason=f"dup{n}gram",
                    min_response_words=100)
               for n, v in ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))]
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
