"""Base class of every config model: unknown keys are errors (typos never pass silently)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class StageConfig(StrictModel):
    """Every stage can be switched on and off."""

    enabled: bool = Field(False, description="run this stage")
    max_error_rate: float = Field(
        0.05, ge=0, le=1, description="abort (publish nothing) when this stage dead-letters more "
        "than this fraction of the rows it handles")


class SeedSelection(StrictModel):
    """Which curated examples feed a synthesis stage."""

    datasets: list[str] = Field(
        default_factory=list, description="source dataset names to draw seeds from; [] = all")
    max_seeds: int | None = Field(
        None, ge=1, description="at most this many seeds, a deterministic sample; null = all")


class SynthesisConfig(StageConfig):
    """A synthesis stage: `enabled` plus which curated examples it starts from."""

    seeds: SeedSelection = Field(default_factory=SeedSelection,
                                 description="which curated examples feed this stage")
    max_error_rate: float = Field(
        0.2, ge=0, le=1, description="abort (publish nothing) when more than this fraction of "
        "the stage's attempts (outputs + rejected + dead letter) went to the dead letter")
