"""Config of the quality stage (the `stages.quality` block)."""

from __future__ import annotations

from transforms.config_base import StageConfig


class QualityConfig(StageConfig):
    """Placeholder until the stage lands: only `enabled`."""
