"""Config of the compound stage (the `stages.compound` block): CQ-Syn, compound questions with
reference answers in five categories, kept only when a rule check and an LLM check both pass."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from transforms.compound.categories import CATEGORIES
from transforms.config_base import StrictModel, SynthesisConfig
from transforms.llm.config import ModelRoles


def _default_weights() -> dict[str, float]:
    return dict.fromkeys(CATEGORIES, 1.0)


class RoleSampling(StrictModel):
    """One role's decoding; a field left unset falls back to the shared `sampling` value."""

    temperature: float | None = Field(None, ge=0, le=2, description="sampling temperature")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int | None = Field(None, ge=8, description="token budget of each of the "
                                   "role's calls")


STEP_BUDGET = {"question": "question_max_tokens", "question_check": "question_check_max_tokens",
               "answer": "answer_max_tokens", "answer_check": "answer_check_max_tokens"}
STEP_ROLE = {"question": "writer", "question_check": "judge", "answer": "answer",
             "answer_check": "judge"}


class CompoundSampling(StrictModel):
    """Sampling of the four LLM calls: shared values, and per role (`writer`, `judge`,
    `answer`) overrides. The answer budget fits full answers to every sub-question; the demo
    config lowers all budgets for the CPU model."""

    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature of every call")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass of every call")
    question_max_tokens: int = Field(
        384, ge=16, description="writer: token budget for the compound question and its "
        "sub-questions")
    question_check_max_tokens: int = Field(
        384, ge=8, description="judge: token budget for the question check (reasoning, then the "
        "verdict)")
    answer_max_tokens: int = Field(
        1536, ge=16, description="answer model: token budget for the reference answer (a full "
        "answer to every sub-question) and its per-sub-question parts")
    answer_check_max_tokens: int = Field(
        384, ge=8, description="judge: token budget for the optional answer check")
    writer: RoleSampling = Field(default_factory=RoleSampling,
                                 description="the writer's own decoding (question step)")
    judge: RoleSampling = Field(default_factory=RoleSampling,
                                description="the judge's own decoding (both checks)")
    answer: RoleSampling = Field(default_factory=RoleSampling,
                                 description="the reference answer's own decoding")

    def for_step(self, step: str) -> tuple[float, float, int]:
        """(temperature, top_p, max_tokens) of a step: its role's value, else the shared one."""
        role: RoleSampling = getattr(self, STEP_ROLE[step])
        return (self.temperature if role.temperature is None else role.temperature,
                self.top_p if role.top_p is None else role.top_p,
                getattr(self, STEP_BUDGET[step]) if role.max_tokens is None else role.max_tokens)


class CompoundConfig(SynthesisConfig, ModelRoles):
    """Turns QA/instruction seeds into compound questions (>= 2 sub-questions, which may depend
    on each other) over the seed's context, with reference answers; each candidate must pass
    the per-type rule check and the LLM check of the question."""

    ROLES = {"writer": "question: writes the compound question and its sub-questions",
             "answer": "answer: writes the reference answer (best a model other than the "
                       "writer)",
             "judge": "question_check and answer_check: the LLM checks"}

    category_weights: dict[str, float] = Field(
        default_factory=_default_weights,
        description="category → relative weight of the seeded mix; categories: "
        + ", ".join(CATEGORIES) + " (a weight of 0 switches a category off)",
    )
    categories_per_seed: int = Field(
        1, ge=1, le=len(CATEGORIES),
        description="distinct categories drawn per seed (by weight, without replacement); "
        f"{len(CATEGORIES)} makes every type per context, as the paper does")
    partner_categories: list[str] = Field(
        default_factory=list,
        description="categories given a second subject: a partner seed chosen among the seed's "
        "nearest neighbours by embedding (our option; the released Compound-QA data compares "
        "options inside one context, so none by default)",
    )
    require_context: bool = Field(
        False, description="seeds without a context passage are rejected (`seed_without_context`, "
        "counted in the report) instead of used on their question and answer alone")
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
    partner_bucket_target: int = Field(
        1024, ge=2, description="seeds per LSH bucket the partner search aims at: the number of "
        "random hyperplanes is ceil(log2(seeds / target)); 0 (one exact bucket) while all seeds "
        "fit in partner_max_bucket")
    partner_max_bucket: int = Field(
        4096, ge=2, description="most seeds compared in one worker step: a larger (skewed) "
        "bucket is cut into id-ordered blocks of this size, searched separately")
    partner_tables: int = Field(
        8, ge=1, description="independent LSH tables; a seed's candidates from all tables are "
        "merged (more tables: better recall, more work)")
    min_sub_questions: int = Field(2, ge=2, description="fewest sub-questions the rule check accepts")
    max_sub_questions: int = Field(4, ge=2, description="most sub-questions the rule check accepts")
    presence_min_overlap: float = Field(
        0.5, gt=0, le=1,
        description="a sub-question counts as present in the compound question when it appears "
        "verbatim (after folding) or this share of its content words appears in it (a dependent "
        "sub-question may refer back with a pronoun)",
    )
    min_seed_words: int = Field(
        1, ge=0, description="content words each sub-question must share with the seed material "
        "(context, question, answer, and the partner's): keeps it grounded in the context, not "
        "in the prompt's examples")
    min_shared_words: int = Field(
        1, ge=0, description="content words a sub-answer must share with its sub-question")
    answer_min_overlap: float = Field(
        0.5, ge=0, le=1,
        description="share of each sub-answer's content words the reference answer must contain "
        "(the reference answer covers every sub-question)",
    )
    answer_check: bool = Field(
        False, description="also ask the judge whether the reference answer covers every "
        "sub-question and agrees with the context")
    max_context_chars: int = Field(
        4000, ge=0, description="context passages longer than this are cut in prompts and in "
        "the user turn")
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
