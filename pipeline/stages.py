"""The order of stages and where each one lives. The pipeline knows nothing else of them."""

from __future__ import annotations

import importlib
from typing import Any

# Curation stages filter the input stream, in this order.
CURATION = {
    "quality": "transforms.quality.stage:QualityStage",
    "dedup": "transforms.dedup.stage:DedupStage",
    "decontam": "transforms.decontam.stage:DecontamStage",
}
# Synthesis stages read the curated stream and add new examples and preference pairs.
SYNTHESIS = {
    "respond": "transforms.respond.stage:RespondStage",
    "tag_instruct": "transforms.tag_instruct.stage:TagInstructStage",
    "compound": "transforms.compound.stage:CompoundStage",
    "rise": "transforms.rise.stage:RiseStage",
}


def load_stage(name: str) -> Any:
    """The stage's PTransform class, imported only when the stage is enabled."""
    target = {**CURATION, **SYNTHESIS}[name]
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
