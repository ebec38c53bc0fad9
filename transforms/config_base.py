"""Base class of every config model: unknown keys are errors (typos never pass silently)."""

from __future__ import annotations

import re
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="after")
    def _env_fields_are_names(self) -> Self:
        """Every `*_env` field names an environment variable; a pasted secret is refused
        (without echoing it)."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name.endswith("_env") and isinstance(value, str) and value and \
                    not _ENV_NAME.fullmatch(value):
                raise ValueError(f"{name} must be the name of an environment variable "
                                 "(letters, digits, _), not its value")
        return self


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
