"""Chart specs for the run report, built with Altair (Vega-Lite) from plain rows.

Each function returns a Vega-Lite spec dict, or None when there is nothing to draw. The
report embeds them with one inline copy of vega-embed, so the page needs no network.
"""

from __future__ import annotations

from typing import Any

import altair as alt

WIDTH = 620


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
        x=alt.X("sum(rows):Q", title="rows"),
        color=alt.Color("source:N"),
        opacity=alt.Opacity("part:N", scale=alt.Scale(domain=["continues", "removed here"],
                                                      range=[1.0, 0.35]), title=None),
        tooltip=["step:N", "source:N", "part:N", "sum(rows):Q"],
    ).properties(width=WIDTH, title="Records through curation, per source")
    return _spec(chart)


def bars(counts: dict[str, int | float], title: str, label: str = "reason",
         x_title: str = "rows") -> dict[str, Any] | None:
    if not counts:
        return None
    rows = [{label: str(k), "count": v} for k, v in counts.items()]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y(f"{label}:N", sort="-x", title=None),
        x=alt.X("count:Q", title=x_title, axis=alt.Axis(tickMinStep=1)),
        tooltip=[f"{label}:N", "count:Q"],
    ).properties(width=WIDTH, title=title)
    return _spec(chart)


def histogram(groups: dict[str, list[float]], title: str, x_title: str,
              thresholds: list[dict[str, Any]] | None = None, width: int = WIDTH
              ) -> dict[str, Any] | None:
    """Overlaid histograms of several groups (e.g. kept / rejected) with threshold rules."""
    rows = [{"group": g, "value": v} for g, values in groups.items() for v in values]
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).mark_bar(opacity=0.6).encode(
        x=alt.X("value:Q", bin=alt.Bin(maxbins=40), title=x_title),
        y=alt.Y("count():Q", stack=None, title="rows"),
        color=alt.Color("group:N", title=None),
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
                "seconds")
