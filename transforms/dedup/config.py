"""Config of the dedup stage (the `stages.dedup` block)."""

from __future__ import annotations

from transforms.config_base import StageConfig


class DedupConfig(StageConfig):
    """Placeholder until the stage lands: only `enabled`."""
