"""Config of the tag_instruct stage (the `stages.tag_instruct` block)."""

from __future__ import annotations

from transforms.config_base import StageConfig


class TagInstructConfig(StageConfig):
    """Placeholder until the stage lands: only `enabled`."""
