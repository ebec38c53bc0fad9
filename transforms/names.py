"""The names of a stage's outputs and the metrics namespace (no Beam import: the registry and
the config read them)."""

from __future__ import annotations

MAIN = "main"
EXAMPLES = "examples"
PAIRS = "pairs"
STEP_PAIRS = "step_pairs"  # step-level pairs in RISE's trainer layout (schemas/step_pairs.py)
TAG_PAIRS = "tag_pairs"  # TAG-INSTRUCT tag-policy pairs (emitted to `tag_policy/`)
REJECTED = "rejected"
DEADLETTER = "deadletter"
REPORT = "report"
METRICS_NAMESPACE = "refinery"
