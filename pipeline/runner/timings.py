"""Busy time per stage, from the runner's own per-transform execution-time metrics.

The Fn API runners (DirectRunner in-memory and multi-process, the portable runner) report
`ptransform_execution_time:total_msecs` for every step: time spent in that step's own code
(downstream steps are timed separately). Steps are grouped by the top-level label the graph gives
each stage (its StageSpec label: "Quality", "TagInstruct", "TagInstructSeeds", "EmitSft", ...). Runners without
these metrics give an empty dict; the run's wall time is recorded either way.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)
TOTAL_MSECS = "ptransform_execution_time:total_msecs"


def stage_of_step(step: str, labels: Mapping[str, str]) -> str:
    """The stage a step belongs to, from its top-level label (`labels`: label → stage)."""
    top = step.split("/", 1)[0]
    for label, name in labels.items():
        if top in (label, f"{label}Seeds"):
            return name
    top = top.lower()
    if top.startswith("emit") or top.startswith("all"):
        return "emit"
    if top.startswith("ingest"):
        return "ingest"
    return "other"


def step_msecs(result: Any) -> dict[str, int]:
    """Step name → busy milliseconds, or {} when the runner does not report them."""
    try:
        counters = result.monitoring_metrics().query()["counters"]
    except Exception as e:  # runners without monitoring metrics
        log.debug("no per-step timings from %s: %s", type(result).__name__, e)
        return {}
    out: dict[str, int] = defaultdict(int)
    for metric in counters:
        if TOTAL_MSECS in str(metric.key.metric.name) and metric.key.step:
            out[metric.key.step] += int(metric.committed or 0)
    return dict(out)


def stage_seconds(msecs: dict[str, int], labels: Mapping[str, str]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for step, ms in msecs.items():
        totals[stage_of_step(step, labels)] += ms / 1000
    return {k: round(v, 3) for k, v in sorted(totals.items()) if v > 0}
