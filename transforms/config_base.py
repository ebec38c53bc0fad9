"""Base class of every config model: unknown keys are errors (typos never pass silently)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class StageConfig(StrictModel):
    """Every stage can be switched on and off."""

    enabled: bool = Field(False, description="run this stage")
