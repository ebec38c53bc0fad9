"""Config of the respond stage (the `stages.respond` block): answer prompt-only rows."""

from __future__ import annotations

from pydantic import Field, model_validator

from transforms.config_base import StrictModel, SynthesisConfig
from transforms.llm.config import ModelRoles
from transforms.quality.config import JudgeConfig


class RespondSampling(StrictModel):
    """Sampling of the answers (every backend)."""

    temperature: float = Field(0.7, ge=0, le=2, description="sampling temperature")
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int = Field(512, ge=1, description="token budget of one answer; an answer cut "
                            "by it (finish_reason length) is rejected as response_truncated")


class RespondConfig(SynthesisConfig, ModelRoles):
    """Answers every prompt-only row (one ending with a user turn; every row with `overwrite`)
    through the LLM layer, turn by turn for multi-turn prompts; with n > 1 samples and the
    judge, keeps the best answer and emits best-vs-worst preference pairs."""

    ROLES = {"responder": "answer: writes the n answers of each turn",
             "judge": "judge: rates each answer (the quality stage's judge prompt)"}

    system_prompt: str | None = Field(
        None, description="system message sent before the conversation (rows that have their own "
        "system turn keep it); not stored in the answered example")
    overwrite: bool = Field(
        False, description="also answer rows that already end with an answer: their assistant "
        "turns are dropped and every user turn is answered again")
    n: int = Field(1, ge=1, le=16, description="answers sampled per user turn")
    sampling: RespondSampling = Field(default_factory=RespondSampling,
                                      description="sampling of the answers")
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig, description="rate each answer with the quality stage's "
        "LLM judge (aspect quality); the best-rated answer is kept (else the first)")
    pair_margin: float = Field(
        1.0, ge=0, description="emit a best-vs-worst preference pair when their judge scores "
        "differ by at least this much")
    max_turns: int = Field(4, ge=1, le=64, description="user turns answered per row at most "
                           "(the graph has one round per turn); "
                           "rows with more are rejected as too_many_turns")

    @model_validator(mode="after")
    def _judge_rates_quality(self) -> RespondConfig:
        if self.judge.enabled and self.judge.aspects != ["quality"]:
            self.judge = self.judge.model_copy(update={"aspects": ["quality"]})
        return self
