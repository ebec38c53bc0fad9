"""Chart specs for the run report, built with Altair (Vega-Lite) from plain rows.

Each function returns a Vega-Lite spec dict, or None when there is nothing to draw. The
report embeds them with one inline copy of vega-embed, so the page needs no network.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import numpy as np

WIDTH = 620
# Count axes: whole numbers only (no "0.5 rows"), labels that never run into each other.
COUNT_AXIS = alt.Axis(tickMinStep=1, format=",d", labelOverlap="greedy")


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    return chart.to_dict()


def funnel(data: dict[str, Any]) -> dict[str, Any] | None:
    """Rows entering each curation step, stacked by source, with the removed part hatched."""
    rows = []
    for r in data["rows"]:
        rows.append({"step": r["step"], "source": r["source"], "rows": r["entering"] - r["removed"],
                     "part": "continues"})
        if r["removed"]:
            rows.append({"step": r["step"], "source": r["source"], "rows": r["removed"],
                         "part": "removed here"})
    if not rows:
        return None
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y("step:N", sort=data["steps"], title=None),
        x=alt.X("sum(rows):Q", title="rows", axis=COUNT_AXIS),
        color=alt.Color("source:N"),
        opacity=alt.Opacity("part:N", scale=alt.Scale(domain=["continues", "removed here"],
                                                      range=[1.0, 0.35]), title=None),
        tooltip=["step:N", "source:N", "part:N", "sum(rows):Q"],
    ).properties(width=WIDTH, title="Records through curation, per source")
    return _spec(chart)


def bars(counts: dict[str, int | float], title: str, label: str = "reason",
         x_title: str = "rows", whole: bool = True) -> dict[str, Any] | None:
    if not counts:
        return None
    rows = [{label: str(k), "count": v} for k, v in counts.items()]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y(f"{label}:N", sort="-x", title=None),
        x=alt.X("count:Q", title=x_title,
                axis=COUNT_AXIS if whole else alt.Axis(labelOverlap="greedy")),
        tooltip=[f"{label}:N", "count:Q"],
    ).properties(width=WIDTH, title=title)
    return _spec(chart)


def _nice_step(span: float, maxbins: int, integral: bool) -> float:
    raw = span / maxbins if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return max(1.0, math.ceil(step)) if integral else step


def bin_counts(groups: dict[str, list[float]], maxbins: int = 40) -> list[dict[str, Any]]:
    """Shared bins of round width over all groups: one row per group and non-empty bin
    (`start`, `end`, `count`), so a chart embeds at most groups × maxbins rows at any run size."""
    arrays = {g: np.asarray(v, dtype=float) for g, v in groups.items() if len(v)}
    arrays = {g: a[np.isfinite(a)] for g, a in arrays.items()}
    arrays = {g: a for g, a in arrays.items() if a.size}
    if not arrays:
        return []
    every = np.concatenate(list(arrays.values()))
    lo, hi = float(every.min()), float(every.max())
    integral = bool(np.all(every == np.round(every)))
    step = _nice_step(hi - lo, maxbins, integral)
    start = math.floor(lo / step) * step
    n = max(1, math.floor((hi - start) / step) + 1)
    edges = start + step * np.arange(n + 1)
    rows = []
    for g, a in arrays.items():
        idx = np.clip(np.floor((a - start) / step).astype(np.int64), 0, n - 1)
        for i, c in enumerate(np.bincount(idx, minlength=n)):
            if c:
                rows.append({"group": g, "start": round(float(edges[i]), 10),
                             "end": round(float(edges[i + 1]), 10), "count": int(c)})
    return rows


def histogram(groups: dict[str, list[float]], title: str, x_title: str,
              thresholds: list[dict[str, Any]] | None = None, width: int = WIDTH
              ) -> dict[str, Any] | None:
    """Overlaid histograms of several groups (e.g. kept / rejected) with threshold rules,
    binned here (the page carries counts per bin, never the values)."""
    rows = bin_counts(groups)
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).mark_bar(opacity=0.6).encode(
        x=alt.X("start:Q", title=x_title, scale=alt.Scale(zero=False, nice=False),
                axis=alt.Axis(tickCount=max(2, width // 90), labelOverlap="greedy",
                              labelFlush=True, labelSeparation=6)),
        x2="end:Q",
        y=alt.Y("count:Q", stack=None, title="rows", axis=COUNT_AXIS),
        color=alt.Color("group:N", title=None),
        tooltip=["group:N", alt.Tooltip("start:Q", title="from"),
                 alt.Tooltip("end:Q", title="to"), "count:Q"],
    )
    layers: list[Any] = [base]
    if thresholds:
        rule_rows = [{"value": t["value"], "label": f"{t['op']} {t['value']} → {t.get('reason')}"}
                     for t in thresholds]
        layers.append(alt.Chart(alt.Data(values=rule_rows)).mark_rule(
            color="#c0392b", strokeWidth=2, strokeDash=[4, 3]).encode(
            x="value:Q", tooltip=["label:N"]))
    return _spec(alt.layer(*layers).properties(width=width, height=140, title=title))


def durations(seconds: dict[str, float]) -> dict[str, Any] | None:
    return bars({k: round(v, 2) for k, v in seconds.items()}, "Busy seconds per stage", "stage",
                "seconds", whole=False)
