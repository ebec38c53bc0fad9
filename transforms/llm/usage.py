"""Token accounting of a run: what each LLM step asked, paid and got from the cache.

`llm_usage(counters)` turns the serving layer's counters (`refinery.<stage>.<step>`, written
by `Generate`: requests, cache_hits, model_calls, prompt_tokens, completion_tokens, failures,
generate_ms) into per-step rows and per-stage totals with requests/s and completion tokens/s.
Rates are per second of generation (generate_ms: wall time a worker spent with requests in
flight, summed over workers), so they describe the serving path, not the whole run.
`query_counters(result)` reads the counters of a finished Beam pipeline.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from transforms.base import METRICS_NAMESPACE

FIELDS = ("requests", "cache_hits", "model_calls", "retries", "failures", "prompt_tokens",
          "completion_tokens", "generate_ms")


def query_counters(result: Any) -> dict[str, dict[str, int]]:
    """namespace → counter name → committed value, for every refinery.* counter."""
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for c in result.metrics().query()["counters"]:
        ns = c.key.metric.namespace
        if ns.startswith(f"{METRICS_NAMESPACE}."):
            name = c.key.metric.name
            out[ns][name] = out[ns].get(name, 0) + int(c.committed or 0)
    return dict(out)


def _rates(row: dict[str, Any]) -> dict[str, Any]:
    seconds = row["generate_ms"] / 1000
    asked = row["requests"] - row["cache_hits"]
    row["requests_per_s"] = round(asked / seconds, 2) if seconds > 0 else None
    row["completion_tokens_per_s"] = round(row["completion_tokens"] / seconds, 1) \
        if seconds > 0 else None
    return row


def llm_usage(counters: dict[str, dict[str, int]]) -> dict[str, Any]:
    """{stage: {"steps": {step: row}, **totals}} for every namespace where `Generate` counted
    requests; a stage-level namespace (no step) is the step "-"."""
    stages: dict[str, dict[str, Any]] = {}
    prefix = f"{METRICS_NAMESPACE}."
    for ns in sorted(counters):
        values = counters[ns]
        if "requests" not in values or not ns.startswith(prefix):
            continue
        stage, _, step = ns[len(prefix):].partition(".")
        entry = stages.setdefault(stage, {"steps": {}, **dict.fromkeys(FIELDS, 0)})
        row = {f: int(values.get(f, 0)) for f in FIELDS}
        entry["steps"][step or "-"] = _rates(row)
        for f in FIELDS:
            entry[f] += row[f]
    return {stage: _rates(entry) for stage, entry in stages.items()}
