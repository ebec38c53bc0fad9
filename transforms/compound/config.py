"""Config of the compound stage (the `stages.compound` block)."""

from __future__ import annotations

from transforms.config_base import StageConfig


class CompoundConfig(StageConfig):
    """Placeholder until the stage lands: only `enabled`."""
