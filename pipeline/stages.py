"""The stage registry: one `StageSpec` line per stage, in run order. The pipeline knows nothing
else of a stage: `pipeline.config.StagesConfig` is built from `STAGES`, the graph wires each
enabled stage by its spec, and tests/pipeline/test_stage_contract.py checks every spec.

A spec names the stage, its Beam label, its kind (curation stages filter the input stream in order; synthesis
stages read the curated stream and add examples / pairs, each from its own `seeds`), the
PTransform and the config model (both "module:Class", imported on use), what it reads and
writes in a row's `meta` (`reads` entries warn when no earlier enabled stage writes them;
`prefers` entries are used when present, with a documented fallback, and are only logged) and
which outputs its `expand` returns.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from transforms.names import (
    DEADLETTER,
    EXAMPLES,
    MAIN,
    PAIRS,
    REJECTED,
    REPORT,
    STEP_PAIRS,
    TAG_PAIRS,
)

CURATION_OUTPUTS = frozenset({MAIN, REJECTED, DEADLETTER, REPORT})


def _import(target: str) -> Any:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class StageSpec:
    """What the pipeline knows of a stage (see the module docstring)."""

    name: str
    label: str  # its Beam label (steps, and the stage timings grouped by them): CamelCase
    kind: Literal["curation", "synthesis"]
    target: str  # "module:Class" of the PTransform, built as Class(config, ctx, label=...)
    config: str  # "module:Class" of its pydantic config (a StageConfig)
    reads: tuple[str, ...] = ()  # meta fields it uses that an earlier stage should write
    writes: tuple[str, ...] = ()  # meta fields it sets on the rows it outputs
    prefers: tuple[str, ...] = ()  # meta fields it uses when present (it has a fallback)
    outputs: frozenset[str] = CURATION_OUTPUTS

    @property
    def config_class(self) -> Any:
        return _import(self.config)

    def load(self) -> Any:
        """The stage's PTransform class, imported only when the stage is enabled."""
        return _import(self.target)


STAGES: tuple[StageSpec, ...] = (
    StageSpec("quality", "Quality", "curation", "transforms.quality.stage:QualityStage",
              "transforms.quality.config:QualityConfig", writes=("meta.quality_score",)),
    StageSpec("dedup", "Dedup", "curation", "transforms.dedup.stage:DedupStage",
              "transforms.dedup.config:DedupConfig", prefers=("meta.quality_score",),
              writes=("meta.dup_cluster",), outputs=frozenset({MAIN, REJECTED, REPORT})),
    StageSpec("decontam", "Decontam", "curation", "transforms.decontam.stage:DecontamStage",
              "transforms.decontam.config:DecontamConfig"),
    StageSpec("length_filter", "LengthFilter", "curation",
              "transforms.length_filter.stage:LengthFilterStage",
              "transforms.length_filter.config:LengthFilterConfig", writes=("meta.answer_chars",)),
    StageSpec("respond", "Respond", "synthesis", "transforms.respond.stage:RespondStage",
              "transforms.respond.config:RespondConfig",
              writes=("meta.lineage", "meta.respond_score"),
              outputs=frozenset({EXAMPLES, PAIRS, REJECTED, DEADLETTER, REPORT})),
    StageSpec("tag_instruct", "TagInstruct", "synthesis",
              "transforms.tag_instruct.stage:TagInstructStage",
              "transforms.tag_instruct.config:TagInstructConfig", writes=("meta.lineage",),
              outputs=frozenset({EXAMPLES, TAG_PAIRS, REJECTED, DEADLETTER, REPORT})),
    StageSpec("compound", "Compound", "synthesis", "transforms.compound.stage:CompoundStage",
              "transforms.compound.config:CompoundConfig",
              writes=("meta.lineage", "meta.category"),
              outputs=frozenset({EXAMPLES, REJECTED, DEADLETTER, REPORT})),
    StageSpec("rise", "Rise", "synthesis", "transforms.rise.stage:RiseStage",
              "transforms.rise.config:RiseConfig", writes=("meta.method",),
              outputs=frozenset({PAIRS, STEP_PAIRS, REJECTED, DEADLETTER, REPORT})),
)
_KINDS = [s.kind for s in STAGES]
if sorted(_KINDS) != _KINDS:  # "curation" < "synthesis": synthesis reads the curated stream
    raise RuntimeError(f"pipeline/stages.py: curation stages must come first, got {_KINDS}")
BY_NAME: dict[str, StageSpec] = {s.name: s for s in STAGES}
CURATION: tuple[str, ...] = tuple(s.name for s in STAGES if s.kind == "curation")
SYNTHESIS: tuple[str, ...] = tuple(s.name for s in STAGES if s.kind == "synthesis")


def load_stage(name: str) -> Any:
    """The PTransform class of the stage `name`."""
    return BY_NAME[name].load()
