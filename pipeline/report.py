"""report.html: counts per stage and drop reason as bar charts (inline SVG), stage reports."""

from __future__ import annotations

import html
import json
from typing import Any


def _bars(title: str, values: dict[str, int | float]) -> str:
    if not values:
        return f"<h3>{html.escape(title)}</h3><p>none</p>"
    top = max(values.values()) or 1
    rows = []
    for i, (label, v) in enumerate(values.items()):
        width = 360 * v / top
        y = i * 22
        rows.append(
            f'<text x="0" y="{y + 15}" font-size="12">{html.escape(str(label))[:40]}</text>'
            f'<rect x="260" y="{y + 3}" width="{width:.1f}" height="16" fill="#4a7bd0"/>'
            f'<text x="{265 + width:.1f}" y="{y + 15}" font-size="12">{v}</text>')
    return (f"<h3>{html.escape(title)}</h3><svg width='720' height='{22 * len(values) + 6}'>"
            + "".join(rows) + "</svg>")


def _llm_table(usage: dict[str, Any]) -> str:
    """Token accounting per LLM step and stage (manifest["llm"])."""
    if not usage:
        return ""
    cols = ("requests", "cache_hits", "model_calls", "failures", "prompt_tokens",
            "completion_tokens", "requests_per_s", "completion_tokens_per_s")
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in cols)
    rows = []
    for stage, entry in usage.items():
        for name, row in [(f"<b>{html.escape(stage)}</b>", entry)] + [
                (f"&nbsp;&nbsp;{html.escape(step)}", r) for step, r in entry["steps"].items()]:
            cells = "".join(f"<td>{'-' if row.get(c) is None else row[c]}</td>" for c in cols)
            rows.append(f"<tr><td>{name}</td>{cells}</tr>")
    return (f"<h2>LLM usage</h2><table border='1' cellpadding='3'><tr><th>stage / step</th>"
            f"{head}</tr>{''.join(rows)}</table>")


def render_report(manifest: dict[str, Any]) -> str:
    c = manifest["counts"]
    flow = {"records in": c["records_in"]}
    for dataset, origins in c["outputs"].items():
        for origin, n in origins.items():
            flow[f"{dataset} ← {origin}"] = n
    flow["rejected"] = sum(sum(r.values()) for r in c["rejected"].values())
    flow["dead letter"] = sum(c["deadletter"].values())
    parts = [
        "<!doctype html><meta charset='utf-8'><title>Refinery run report</title>",
        "<style>body{font-family:sans-serif;max-width:900px;margin:2em auto}"
        "pre{background:#f4f4f4;padding:1em;overflow:auto}</style>",
        f"<h1>{html.escape(manifest['name'])}</h1>",
        f"<p>config hash <code>{manifest['config_hash'][:16]}</code>; conservation holds: "
        f"<b>{manifest['conservation']['holds']}</b></p>",
        _bars("Flow of records", flow),
    ]
    for stage, reasons in c["rejected"].items():
        parts.append(_bars(f"Rejected by {stage}", reasons))
    parts.append(_bars("Dead letter by stage", c["deadletter"]))
    parts.append(_llm_table(manifest.get("llm") or {}))
    for stage, report in manifest["reports"].items():
        parts.append(f"<h2>{html.escape(stage)}</h2><pre>"
                     f"{html.escape(json.dumps(report, indent=2, sort_keys=True, default=str))}</pre>")
    return "\n".join(parts)
