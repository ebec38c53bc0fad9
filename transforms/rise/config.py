"""Config of the rise stage (the `stages.rise` block): error-injected preference pairs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from transforms.config_base import StrictModel, SynthesisConfig
from transforms.llm.config import ModelRoles

METHODS = ("rule_edit", "self_edit", "sampled")
ERROR_TYPE_NAMES = ("change_value", "change_values", "wrong_substitution", "delete_term",
                    "change_operator", "swap_terms", "misread_question")


class SelfEditConfig(StrictModel):
    """The editor model rewrites the last sentences of one step of a correct self-sample so that
    it holds one error of a type that fits the step's content (step pairs)."""

    pairs_per_problem: int = Field(
        2, ge=1, description="step pairs per problem at most (M). refinery mode: one edit "
        "request per (correct sample, step) picked; paper mode: every step is edited and M "
        "random survivors are kept (the paper: 1; M > 1 is ours)")
    last_sentences: int = Field(
        4, ge=1, description="the editor rewrites at most this many final sentences of the step")
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature of the edit")
    max_tokens: int = Field(256, ge=16, description="tokens the editor may write for the edit")
    max_edit_distance: int | None = Field(
        30, ge=1, description="ours: edits farther than this (token Levenshtein, step vs edited "
        "step) are rejected as edit_too_large; null: no cap (the paper)")
    keeps_correct_answer: bool = Field(
        True, description="ours (paper mode): drop an edit of the last step that still states "
        "the gold answer (refinery mode always applies it)")
    computation_unchanged: bool = Field(
        True, description="ours (paper mode): drop an arithmetic edit that leaves what the step "
        "computes unchanged (refinery mode always applies it)")
    drop_noop: bool = Field(
        True, description="ours (paper mode): drop an edit that leaves the step unchanged (the "
        "authors keep it: chosen == rejected)")


class SamplingConfig(StrictModel):
    """The policy model solves each problem k times in "Step k:" form; each sample is graded
    against the gold answer (no stated final answer: incorrect-unfinished)."""

    samples: int = Field(5, ge=1, description="solutions sampled per problem (k)")
    temperature: float = Field(0.2, gt=0, le=2, description="sampling temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int = Field(512, ge=16, description="tokens per sampled solution")
    drop_self_correcting: bool = Field(
        True, description="ours: correct samples that correct themselves (\"wait\", \"let me "
        "recheck\", ...) are not used as chosen texts (paper mode: on top of the authors' "
        "fixed phrase list, which always applies)")


class RiseConfig(SynthesisConfig, ModelRoles):
    """Subtle-error preference pairs (RISE, arXiv 2410.06638): the policy samples its own
    solutions; a correct one is paired with an incorrect one (full pairs) and with copies whose
    step was edited to hold one subtle error (step pairs)."""

    ROLES = {"policy": "sampled and self_edit: the model that samples its own solutions (k per "
                       "problem)",
             "editor": "self_edit: the model that rewrites a step of a correct sample with one "
                       "error (the paper: the policy itself)"}

    mode: Literal["refinery", "paper"] = Field(
        "refinery", description="paper: the authors' code step for step (kaishxu/RISE: their "
        "solve prompt and prefill, grading, chosen filter, every-step edit jobs, edit prefill "
        "and fences, one step pair per problem; docs/rise.md); refinery: our variant "
        "(JSON edits of the last sentences of M steps, all filters)")
    methods: list[Literal["rule_edit", "self_edit", "sampled"]] = Field(
        default_factory=lambda: ["rule_edit"],
        description="pair sources: sampled (a correct vs an incorrect self-sample, full pairs), "
        "self_edit (the editor model injects an error into a step of a correct self-sample, "
        "step pairs), rule_edit (deterministic, no model: a correct self-sample when the model "
        "samples, else the gold solution, labelled in meta.extra.edited_solution)")
    error_types: list[Literal[ERROR_TYPE_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(ERROR_TYPE_NAMES),
        description="error types that may be injected; one is drawn per edit among those "
        "that apply to the chosen step")
    max_edit_distance: int = Field(
        12, ge=1, description="rule edits farther than this (token Levenshtein) are rejected")
    max_attempts: int = Field(
        8, ge=1, description="rule edits tried per problem before it is rejected")
    scope: Literal["step", "full"] = Field(
        "step", description="rule edits: step (prefix + edited step vs prefix + correct step, "
        "RISE's layout) or full (whole solutions; the error is carried through the dependent "
        "steps to a wrong final answer, else the problem is rejected as "
        "error_not_carried_through)")
    strip_boxed_rejected: bool = Field(
        True, description="remove \\boxed{} wrappers from rejected texts (content kept)")
    require_correct_solution: bool = Field(
        True, description="rule_edit on gold: reject inputs whose stated final answer differs "
        "from meta.answer")
    batch_rows: int = Field(500, ge=1, description="rows per output batch on the LLM paths")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig,
                                     description="how the policy samples its own solutions")
    self_edit: SelfEditConfig = Field(default_factory=SelfEditConfig,
                                      description="settings of the self_edit method")

    @property
    def samples_solutions(self) -> bool:
        """Whether the policy samples its own solutions (sampled or self_edit is on)."""
        return "sampled" in self.methods or "self_edit" in self.methods

    def roles_in_use(self) -> list[str]:
        """policy when the model samples; editor when it edits too."""
        return (["policy"] if self.samples_solutions else []) + \
            (["editor"] if "self_edit" in self.methods else [])

    @model_validator(mode="after")
    def _paper_methods(self) -> RiseConfig:
        if self.mode == "paper" and ("rule_edit" in self.methods
                                     or "sampled" not in self.methods):
            raise ValueError("mode paper: methods must be [sampled] or [sampled, self_edit] "
                             "(the authors' step pairs come from the full pair's chosen text)")
        return self

    @field_validator("methods", "error_types")
    @classmethod
    def _nonempty_unique(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("must name at least one")
        if len(set(v)) != len(v):
            raise ValueError("names must be unique")
        return v
