"""Report sections beyond the curation funnel: dedup clusters, decontamination hits, synthesis
samples and run facts. Pure functions over rows read by `pipeline.report.data`."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from typing import Any

from pipeline.report.data import (
    MAX_CLUSTERS,
    clip,
    prompt_text,
    response_text,
)

SECRET_KEY = re.compile(r"(key|token|secret|password|authorization)", re.IGNORECASE)
MAX_SYNTH_EXAMPLES = 4


def dedup_clusters(rejected_dedup: list[dict[str, Any]],
                   by_id: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Cluster-size histogram (keeper + removed rows) and a few example clusters."""
    members: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rejected_dedup:
        keeper = row.get("duplicate_of")
        if keeper:
            members[keeper].append(row)
    sizes = Counter(1 + len(rows) for rows in members.values())
    ranked = sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:MAX_CLUSTERS]
    clusters = []
    for keeper_id, rows in ranked:
        keeper = by_id.get(keeper_id)
        clusters.append({
            "keeper": {"id": keeper_id,
                       "prompt": clip(prompt_text(keeper.get("messages"))) if keeper else
                       "(keeper not in the outputs: removed by a later stage)"},
            "removed": [{"id": r.get("id"), "prompt": clip(prompt_text(r.get("messages"))),
                         "reason": r.get("reject_reason"),
                         "similarity": _similarity(r)} for r in rows[:5]],
            "size": 1 + len(rows)})
    return {"sizes": {str(k): v for k, v in sorted(sizes.items())}, "clusters": clusters}


def _similarity(row: dict[str, Any]) -> float | None:
    try:
        detail = json.loads(row.get("reject_detail") or "{}")
    except ValueError:
        return None
    for key in ("jaccard", "cosine", "similarity"):
        if isinstance(detail, dict) and isinstance(detail.get(key), int | float):
            return round(float(detail[key]), 4)
    return 1.0 if row.get("reject_reason") == "exact_duplicate" else None


def decontam_hits(rejected_decontam: list[dict[str, Any]], limit: int = 12) -> dict[str, Any]:
    """Per benchmark: rows flagged and by which rule; a few matches with the matched span."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    matches = []
    for row in rejected_decontam:
        try:
            detail = json.loads(row.get("reject_detail") or "{}")
        except ValueError:
            detail = {}
        bench = str(detail.get("benchmark") or "unknown")
        table[bench][row.get("reject_reason") or "unknown"] += 1
        if len(matches) < limit:
            text = prompt_text(row.get("messages"))
            matches.append({"id": row.get("id"), "benchmark": bench,
                            "reason": row.get("reject_reason"), "text": clip(text, 600),
                            "span": clip(detail.get("span") or "", 300),
                            "item": clip(detail.get("item_excerpt") or "", 300),
                            "overlap": detail.get("overlap")})
    return {"benchmarks": [{"benchmark": b, "rows": sum(c.values()), "by_rule": dict(c)}
                           for b, c in sorted(table.items())],
            "matches": matches}


def diff_ops(a: str, b: str) -> list[list[Any]]:
    """Word-level diff of two texts as [op, text] runs (op: eq, del, ins) for highlighting."""
    wa, wb = re.split(r"(\s+)", a), re.split(r"(\s+)", b)
    out: list[list[Any]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(["eq", "".join(wa[i1:i2])])
            continue
        if i2 > i1:
            out.append(["del", "".join(wa[i1:i2])])
        if j2 > j1:
            out.append(["ins", "".join(wb[j1:j2])])
    return out


def synthesized(sft_rows: list[dict[str, Any]], by_id: dict[str, dict[str, Any]],
                parents: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Stage → a few parent → synthesized examples (parent looked up by lineage id)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in sft_rows:
        lineage = (row.get("meta") or {}).get("lineage") or {}
        stage = lineage.get("stage")
        if not stage or len(out[stage]) >= MAX_SYNTH_EXAMPLES:
            continue
        parent_ids = lineage.get("parent_ids") or []
        parent = next((parents.get(p) or by_id.get(p) for p in parent_ids
                       if p in parents or p in by_id), None)
        out[stage].append({
            "id": row.get("id"), "method": lineage.get("method"),
            "parent": clip(prompt_text(parent.get("messages"))) if parent else None,
            "prompt": clip(prompt_text(row.get("messages")), 800),
            "response": clip(response_text(row.get("messages")), 800)})
    return dict(out)


def _pair_stage(meta: dict[str, Any]) -> str:
    return (meta.get("lineage") or {}).get("stage") or "input"


def pairs(pair_rows: list[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Stage → method → a few preference pairs with a word diff of chosen vs rejected."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in pair_rows:
        meta = row.get("meta") or {}
        stage = _pair_stage(meta)
        method = meta.get("method") or stage
        if len(out[stage][method]) >= MAX_SYNTH_EXAMPLES:
            continue
        chosen, rejected = response_text(row.get("chosen")), response_text(row.get("rejected"))
        out[stage][method].append({"id": row.get("id"), "error_type": meta.get("error_type"),
                                   "prompt": clip(prompt_text(row.get("prompt"))),
                                   "diff": diff_ops(clip(chosen, 1500), clip(rejected, 1500))})
    return {stage: dict(methods) for stage, methods in out.items()}


def pair_stats(pair_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Stage → error types and word edit distances of its synthesized preference pairs."""
    types: dict[str, Counter[str]] = defaultdict(Counter)
    distances: dict[str, list[int]] = defaultdict(list)
    for row in pair_rows:
        meta = row.get("meta") or {}
        stage = _pair_stage(meta)
        if meta.get("error_type"):
            types[stage][meta["error_type"]] += 1
        if stage != "input":
            a = response_text(row.get("chosen")).split()
            b = response_text(row.get("rejected")).split()
            sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
            distances[stage].append(sum(max(i2 - i1, j2 - j1) for t, i1, i2, j1, j2
                                        in sm.get_opcodes() if t != "equal"))
    return {stage: {"error_types": dict(types[stage].most_common()),
                    "edit_distance": distances[stage]} for stage in {*types, *distances}}


def redact(value: Any) -> Any:
    """The config with values under secret-looking keys replaced by '***'."""
    if isinstance(value, dict):
        return {k: "***" if SECRET_KEY.search(str(k)) and v not in (None, "") else redact(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def llm_usage(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of LLM accounting per stage and step (manifest["llm"], from the run's metrics)."""
    cols = ("requests", "cache_hits", "model_calls", "failures", "prompt_tokens",
            "completion_tokens", "requests_per_s", "completion_tokens_per_s")
    rows = []
    for stage, entry in sorted((manifest.get("llm") or {}).items()):
        for scope, row in [(stage, entry), *[(f"{stage}.{step}", r) for step, r in
                                              sorted((entry.get("steps") or {}).items())]]:
            rows.append({"scope": scope, **{c: row.get(c) for c in cols}})
    return rows


def facts(manifest: dict[str, Any]) -> dict[str, Any]:
    return {"name": manifest.get("name"), "config_hash": manifest.get("config_hash"),
            "conservation": manifest.get("conservation"),
            "inputs": [{k: v for k, v in i.items()} for i in manifest.get("inputs", [])],
            "versions": manifest.get("versions", {}),
            "timings": manifest.get("timings", {}),
            "llm": llm_usage(manifest),
            "config": redact(manifest.get("config", {}))}
