"""Config of the compound stage (the `stages.compound` block): CQ-Syn, compound questions with
reference answers in five categories, kept only when a rule check and an LLM check both pass."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from transforms.compound.categories import CATEGORIES
from transforms.config_base import StrictModel, SynthesisConfig
from transforms.llm.config import ModelRoles


def _default_weights() -> dict[str, float]:
    return dict.fromkeys(CATEGORIES, 1.0)


class CompoundSampling(StrictModel):
    """Sampling of the three LLM calls. Small token budgets keep the CPU demo fast."""

    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature of every call")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass of every call")
    question_max_tokens: int = Field(
        160, ge=16, description="token budget for the compound question and its sub-questions")
    answer_max_tokens: int = Field(
        256, ge=16, description="token budget for the reference answer and its sub-answers")
    check_max_tokens: int = Field(
        64, ge=8, description="token budget for the LLM check verdict")


class CompoundConfig(SynthesisConfig, ModelRoles):
    """Turns QA/instruction seeds into compound questions (>= 2 sub-questions) with reference
    answers; each candidate must pass the rule check and the LLM check."""

    ROLES = {"writer": "question: writes the compound question", "answerer": "answer: the "
             "reference answer", "judge": "check: the LLM check of question and answer"}

    category_weights: dict[str, float] = Field(
        default_factory=_default_weights,
        description="category → relative weight of the seeded mix; categories: "
        + ", ".join(CATEGORIES) + " (a weight of 0 switches a category off)",
    )
    partner_categories: list[str] = Field(
        default_factory=lambda: ["Comparison-and-Selection"],
        description="categories that need a second subject: a partner seed chosen among the "
        "seed's nearest neighbours by embedding",
    )
    partner_min_similarity: float = Field(
        0.3, ge=-1, le=1,
        description="lowest cosine similarity a partner may have (related enough to compare)",
    )
    partner_max_similarity: float = Field(
        0.9, ge=-1, le=1,
        description="highest cosine similarity a partner may have (above: a near-duplicate)",
    )
    partner_neighbours: int = Field(
        8, ge=1, description="how many nearest neighbours of a seed are considered as partners")
    partner_fallback: bool = Field(
        True,
        description="when no partner falls in the window: decompose the single seed (true) or "
        "reject the seed with reason `no_partner` (false)",
    )
    min_sub_questions: int = Field(2, ge=2, description="fewest sub-questions the rule check accepts")
    max_sub_questions: int = Field(4, ge=2, description="most sub-questions the rule check accepts")
    presence_min_overlap: float = Field(
        0.75, gt=0, le=1,
        description="a sub-question counts as present in the compound question when it appears "
        "verbatim (after folding) or this share of its content words appears in it",
    )
    min_seed_words: int = Field(
        1, ge=0, description="content words each sub-question must share with the seed material "
        "(question, answer, context, partner): keeps it about the seed, not the prompt's example")
    min_shared_words: int = Field(
        1, ge=1, description="content words a sub-answer must share with its sub-question")
    answer_min_overlap: float = Field(
        0.5, ge=0, le=1,
        description="share of each sub-answer's content words the reference answer must contain "
        "(the answer addresses every sub-question in turn)",
    )
    max_context_chars: int = Field(
        1200, ge=0, description="context passages longer than this are cut in prompts")
    max_seed_chars: int = Field(
        1500, ge=16, description="seed questions/answers longer than this are cut in prompts")
    output_batch_rows: int = Field(256, ge=1, description="rows per output Arrow batch")
    sampling: CompoundSampling = Field(
        default_factory=CompoundSampling, description="sampling of the LLM calls")

    @field_validator("category_weights")
    @classmethod
    def _known_categories(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(v) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {list(CATEGORIES)}")
        if any(w < 0 for w in v.values()):
            raise ValueError("weights must be >= 0")
        if not any(w > 0 for w in v.values()):
            raise ValueError("at least one category needs a weight > 0")
        return v

    @field_validator("partner_categories")
    @classmethod
    def _known_partner_categories(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown categories {unknown}; known: {list(CATEGORIES)}")
        return v

    @model_validator(mode="after")
    def _windows(self) -> CompoundConfig:
        if self.partner_min_similarity > self.partner_max_similarity:
            raise ValueError("partner_min_similarity must be <= partner_max_similarity")
        if self.min_sub_questions > self.max_sub_questions:
            raise ValueError("min_sub_questions must be <= max_sub_questions")
        return self
