"""Config of the rise stage (the `stages.rise` block): error-injected preference pairs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from transforms.config_base import StrictModel, SynthesisConfig
from transforms.llm.config import ModelRoles

METHODS = ("rule_edit", "self_edit", "sampled")
ERROR_TYPE_NAMES = ("change_value", "change_values", "wrong_substitution", "delete_term",
                    "change_operator", "swap_terms", "misread_question")


class SelfEditConfig(StrictModel):
    """The model rewrites the end of one step so that it contains the chosen error."""

    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature of the edit")
    max_tokens: int = Field(160, ge=16, description="tokens the model may write for the edit")
    last_sentences: int = Field(
        2, ge=1, description="how many final sentences of the step the model is asked to rewrite")
    max_edit_distance: int = Field(
        30, ge=1, description="edits farther than this (token Levenshtein, step vs edited step) "
        "are rejected as edit_too_large")


class SampledConfig(StrictModel):
    """The model solves each problem k times in "Step k:" form; answers are graded vs gold."""

    samples: int = Field(4, ge=2, description="solutions sampled per problem (k)")
    temperature: float = Field(0.8, gt=0, le=2, description="sampling temperature")
    max_tokens: int = Field(384, ge=16, description="tokens per sampled solution")
    max_pairs_per_problem: int = Field(
        1, ge=1, description="correct/incorrect pairs formed per problem at most")


class RiseConfig(SynthesisConfig, ModelRoles):
    """Subtle-error preference pairs (RISE): chosen = a correct solution, rejected = the same
    solution with one injected error (rule_edit, self_edit) or an incorrect sampled one."""

    ROLES = {"policy": "self_edit and sampled: the model whose own solutions are edited/sampled"}

    methods: list[Literal["rule_edit", "self_edit", "sampled"]] = Field(
        default_factory=lambda: ["rule_edit"],
        description="pair sources: rule_edit (deterministic, no model), self_edit (the model "
        "injects the error), sampled (correct vs incorrect sampled solutions)")
    error_types: list[Literal[ERROR_TYPE_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(ERROR_TYPE_NAMES),
        description="error types that may be injected; one is drawn per problem among those "
        "that apply to the chosen step")
    max_edit_distance: int = Field(
        12, ge=1, description="rule edits farther than this (token Levenshtein) are rejected")
    max_attempts: int = Field(
        8, ge=1, description="rule edits tried per problem before it is rejected")
    scope: Literal["full", "through_step"] = Field(
        "full", description="full: chosen/rejected are whole solutions (rejected differs only in "
        "the edited step); through_step: both end after the edited step (step-level pairs)")
    strip_boxed_rejected: bool = Field(
        True, description="remove \\boxed{} wrappers from rejected texts (content kept)")
    require_correct_solution: bool = Field(
        True, description="reject inputs whose stated final answer differs from meta.answer")
    batch_rows: int = Field(500, ge=1, description="rows per output batch on the LLM paths")
    self_edit: SelfEditConfig = Field(default_factory=SelfEditConfig,
                                      description="settings of the self_edit method")
    sampled: SampledConfig = Field(default_factory=SampledConfig,
                                   description="settings of the sampled method")

    @field_validator("methods", "error_types")
    @classmethod
    def _nonempty_unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one")
        if len(set(v)) != len(v):
            raise ValueError("names must be unique")
        return v
