"""Config of the example stage (kept apart from the stage: the run config imports it without
Beam)."""

from __future__ import annotations

from pydantic import Field

from transforms.config_base import StageConfig


class LengthFilterConfig(StageConfig):
    """Drops examples whose answer is too short."""

    min_chars: int = Field(1, ge=0, description="shortest first assistant answer kept")
