"""`refinery inspect OUT --id ID`: one row's whole path through a finished run.

Where the row is (an output dataset, `rejected/`, the dead letter), its source file and row,
the stages it went through with the signals each wrote into `meta`, for synthesized rows the
stage, method, model and prompt version that made it and its parents (traced the same way,
recursively), and for a dropped row the stage, reason and detail that dropped it (for a
duplicate, the keeper's id: another id, its content hash often the same). Ids are unique per
row; the content hash is shown beside the id. Reads only
the published run: the id column of each file first, then the one matching row.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.outputs import layout as L
from pipeline.outputs.layout import RunLayout
from pipeline.outputs.storage import files_under, read_jsonl, read_parquet
from transforms.io.files import read_json

# where a row can be (each in the meta/source shape); second layouts hold the same ids again
OUTPUTS = tuple(d.name for d in L.DATASETS if not d.copy_of)
MAX_DEPTH = 6
SIGNALS = {"quality": ("q_", "quality_score"), "dedup": ("dup_",), "decontam": ("decontam",)}


class RowNotFound(Exception):
    pass


def _find_in(path: str, row_id: str) -> dict[str, Any] | None:
    """The row with id `row_id` (or the one id starting with it, as printed shortened)."""
    ids = read_parquet(path, columns=["id"]).column("id")
    if len(ids) == 0:  # a 0-row shard (pyarrow's kernels crash on a chunked array of none)
        return None
    match = pc.equal(ids, pa.scalar(row_id)) if len(row_id) >= 32 else pc.starts_with(
        ids, row_id)
    hits = pc.indices_nonzero(match).to_pylist()
    if not hits:
        return None
    return read_parquet(path).slice(hits[0], 1).to_pylist()[0]


def locate(out: str, row_id: str) -> tuple[str, dict[str, Any]]:
    """(where, row): where is an output dataset, 'rejected' or 'deadletter'."""
    run = RunLayout(out)
    for dataset in (*OUTPUTS, L.REJECTED):
        for path in files_under(run.dataset(dataset)):
            if path.endswith(".parquet") and (row := _find_in(path, row_id)) is not None:
                return dataset, row
    for path in files_under(run.deadletter_dir):
        for entry in read_jsonl(path):
            if (entry.get("record_id") or "\0").startswith(row_id):
                return L.DEADLETTER, entry
    raise RowNotFound(f"no row with id {row_id!r} in {out} (outputs, rejected/, dead letter)")


def _signals(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """stage → the meta fields it wrote (non-null), by name prefix."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in sorted(meta.items()):
        if value is None or key in ("lineage", "extra") or value == []:
            continue
        stage = next((s for s, prefixes in SIGNALS.items() if key.startswith(prefixes)), "row")
        out.setdefault(stage, {})[key] = round(value, 4) if isinstance(value, float) else value
    return out


def trace(out: str, row_id: str, depth: int = 0, seen: set[str] | None = None
          ) -> dict[str, Any]:
    """The path of one row (see the module docstring), parents included."""
    seen = seen if seen is not None else set()
    seen.add(row_id)
    where, row = locate(out, row_id)
    if where == L.DEADLETTER:
        return {"id": row_id, "where": L.DEADLETTER, "source": {"file": row.get("file"),
                "row": row.get("row")}, "dropped": {"stage": row.get("stage"),
                "reason": "dead letter", "detail": row.get("error")}}
    from pipeline.stages import CURATION

    row_id = row["id"]
    meta = row.get("meta") or {}
    lineage = meta.get("lineage") or {}
    config = (read_json(RunLayout(out).manifest).get("config") or {}).get("stages") or {}
    made = lineage.get("stage")
    # a source row goes through every enabled curation stage; a synthesized row is shown with
    # the stage that made it (its signals tell which checks it got)
    enabled = [] if made else [s for s in CURATION if (config.get(s) or {}).get("enabled")]
    result: dict[str, Any] = {"id": row_id, "content_hash": row.get("content_hash"),
                              "where": where, "source": row.get("source"),
                              "stages": [made if made else "ingest", *enabled],
                              "signals": _signals(meta)}
    if where == L.REJECTED:
        stage = row.get("reject_stage")
        stages = result["stages"]
        result["stages"] = stages[:stages.index(stage) + 1] if stage in stages else stages
        detail = row.get("reject_detail")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail) if detail else None
        result["dropped"] = {"stage": stage, "reason": row.get("reject_reason"),
                             "detail": detail}
        if row.get("duplicate_of"):
            result["dropped"]["duplicate_of"] = row["duplicate_of"]
    if lineage.get("stage"):
        result["made_by"] = {k: lineage.get(k) for k in ("stage", "method", "model",
                                                          "template_version")}
        parents = []
        for pid in lineage.get("parent_ids") or []:
            if pid in seen or depth >= MAX_DEPTH:
                parents.append({"id": pid, "where": "(already shown)"})
                continue
            try:
                parents.append(trace(out, pid, depth + 1, seen))
            except RowNotFound:
                parents.append({"id": pid, "where": "not in this run"})
        result["parents"] = parents
    return result


def format_trace(t: dict[str, Any], indent: str = "") -> str:
    """The trace as indented plain text."""
    src = t.get("source") or {}
    lines = [f"{indent}id: {t['id']}  [{t['where']}]"]
    if t.get("content_hash"):
        lines.append(f"{indent}  content hash: {t['content_hash']}")
    if src.get("file") is not None:
        lines.append(f"{indent}  source: {src.get('dataset') or '?'} {src['file']} row "
                     f"{src.get('row')}")
    if t.get("stages"):
        lines.append(f"{indent}  stages: {' → '.join(t['stages'])}")
    for stage, values in (t.get("signals") or {}).items():
        values = dict(sorted(values.items(), key=lambda kv: kv[0] != "quality_score"))
        shown = ", ".join(f"{k}={v}" for k, v in list(values.items())[:12])
        more = f" (+{len(values) - 12} more)" if len(values) > 12 else ""
        lines.append(f"{indent}  {stage} signals: {shown}{more}")
    if t.get("made_by"):
        m = t["made_by"]
        lines.append(f"{indent}  made by: {m['stage']} method={m['method']} model={m['model']} "
                     f"prompt={m['template_version']}")
    if t.get("dropped"):
        d = t["dropped"]
        detail = json.dumps(d["detail"], ensure_ascii=False)[:300] if d.get("detail") else ""
        lines.append(f"{indent}  DROPPED at {d['stage']}: {d['reason']} {detail}".rstrip())
        if d.get("duplicate_of"):
            lines.append(f"{indent}  duplicate of: {d['duplicate_of']}")
    for parent in t.get("parents") or []:
        lines.append(f"{indent}  parent:")
        lines.append(format_trace(parent, indent + "    "))
    return "\n".join(lines)
