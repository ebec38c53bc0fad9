"""The names of a stage's outputs and the metrics namespace (no Beam import: the registry and
the config read them)."""

from __future__ import annotations

MAIN = "main"
EXAMPLES = "examples"
PAIRS = "pairs"
REJECTED = "rejected"
DEADLETTER = "deadletter"
REPORT = "report"
METRICS_NAMESPACE = "refinery"
