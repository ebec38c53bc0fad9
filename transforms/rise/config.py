"""Config of the rise stage (the `stages.rise` block)."""

from __future__ import annotations

from transforms.config_base import StageConfig


class RiseConfig(StageConfig):
    """Placeholder until the stage lands: only `enabled`."""
