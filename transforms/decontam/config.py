"""Config of the decontam stage (the `stages.decontam` block)."""

from __future__ import annotations

from transforms.config_base import StageConfig


class DecontamConfig(StageConfig):
    """Placeholder until the stage lands: only `enabled`."""
