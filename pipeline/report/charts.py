"""Chart specs for the run report, built with Altair (Vega-Lite) from plain rows.

Each function returns a Vega spec dict (Vega-Lite compiled here by vl-convert), or None when
there is nothing to draw. The page carries one inline copy of the Vega runtime (`runtime()`,
without the Vega-Lite compiler or vega-embed: about 0.58 MB instead of 0.9 MB) and draws each
spec with `refineryChart(element, spec)`, so it needs no network. Histograms are binned here:
a chart carries counts per bin, never one value per row.
"""

from __future__ import annotations

import functools
import hashlib
import math
from typing import Any

import altair as alt
import numpy as np

from transforms.machine_cache import cached_text, machine_cache_dir

WIDTH = 620


def whole_ticks(lo: float, hi: float, most: int = 8) -> list[int]:
    """At most `most` whole-number ticks from lo to hi, a round step apart."""
    lo_i, hi_i = math.ceil(lo), math.floor(hi)
    step = _nice_step(hi_i - lo_i, max(1, most - 1), integral=True)
    start = math.ceil(lo_i / step) * step
    return [int(v) for v in np.arange(start, hi_i + step / 2, step)]


def count_axis(largest: float) -> alt.Axis:
    """An axis of counts: whole numbers only (no "0.5 rows"), labels that never run into each
    other."""
    return alt.Axis(values=whole_ticks(0, largest, 6), format=",d", labelOverlap="greedy")


# Draws a compiled Vega spec as SVG into an element; errors go to the console. vl-convert
# resolves the import to the Vega it vendors (no network, at build time or in the page).
RENDER_SNIPPET = (
    'import * as vg from "https://cdn.jsdelivr.net/npm/vega@{version}/+esm";\n'
    "window.refineryChart = function (el, spec) {{"
    " return new vg.View(vg.parse(spec), {{renderer: 'svg', container: el, hover: true}})"
    ".runAsync().catch(function (e) {{ console.error(e); }}); }};")


@functools.lru_cache(maxsize=1)
def runtime() -> str:
    """The Vega runtime with RENDER_SNIPPET, as one script: bundled by vl-convert (seconds)
    once per machine, vl-convert version and snippet, then read from the machine's cache."""
    import vl_convert
    from vl_convert import get_vega_version, javascript_bundle

    snippet = RENDER_SNIPPET.format(version=get_vega_version())
    key = hashlib.sha256(f"{vl_convert.__version__}\n{snippet}".encode()).hexdigest()[:20]
    return cached_text(machine_cache_dir("vega", f"runtime-{key}.js"),
                       lambda: javascript_bundle(snippet=snippet))


def _tooltips(*shorthands: str) -> list[alt.Tooltip]:
    """Tooltip channels. Every channel is passed to `encode` as an object, not a shorthand
    string: altair turns each string into a channel through `from_dict`, which hashes its
    whole schema first (12 ms a string, half of the report's chart time)."""
    return [alt.Tooltip(s) for s in shorthands]


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    from vl_convert import vegalite_to_vega

    # the whole spec is not checked against the JSON schema again (half of this call's
    # time): altair checked each part as it was built, and the compiler rejects the rest
    return vegalite_to_vega(chart.to_dict(validate=False))


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
    per_step: dict[str, int] = {}
    for r in rows:
        per_step[r["step"]] = per_step.get(r["step"], 0) + r["rows"]
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        y=alt.Y("step:N", sort=data["steps"], title=None),
        x=alt.X("sum(rows):Q", title="rows", axis=count_axis(max(per_step.values()))),
        color=alt.Color("source:N"),
        opacity=alt.Opacity("part:N", scale=alt.Scale(domain=["continues", "removed here"],
                                                      range=[1.0, 0.35]), title=None),
        tooltip=_tooltips("step:N", "source:N", "part:N", "sum(rows):Q"),
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
                axis=count_axis(max(counts.values())) if whole
                else alt.Axis(labelOverlap="greedy")),
        tooltip=_tooltips(f"{label}:N", "count:Q"),
    ).properties(width=WIDTH, title=title)
    return _spec(chart)


def _nice_step(span: float, maxbins: int, integral: bool) -> float:
    raw = span / maxbins if span > 0 else 1.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return max(1.0, math.ceil(step)) if integral else step


def bin_counts(groups: dict[str, list[float]], maxbins: int = 40
               ) -> tuple[list[dict[str, Any]], bool]:
    """Shared bins of round width over all groups: one row per group and non-empty bin
    (`start`, `end`, `count`), so a chart embeds at most groups × maxbins rows at any run size;
    and whether the values are whole numbers (then each bin of width 1 is centred on one)."""
    arrays = {g: np.asarray(v, dtype=float) for g, v in groups.items() if len(v)}
    arrays = {g: a[np.isfinite(a)] for g, a in arrays.items()}
    arrays = {g: a for g, a in arrays.items() if a.size}
    if not arrays:
        return [], False
    every = np.concatenate(list(arrays.values()))
    lo, hi = float(every.min()), float(every.max())
    integral = bool(np.all(every == np.round(every))) and (hi > lo or lo != 0)
    if hi == lo and not integral:  # one value (e.g. a fraction that is 0 everywhere)
        step = 0.1 * max(1.0, abs(lo))
    else:
        step = _nice_step(hi - lo, maxbins, integral)
    start = math.floor(lo / step) * step - (step / 2 if integral and step == 1 else 0)
    n = max(1, math.floor((hi - start) / step) + 1)
    edges = start + step * np.arange(n + 1)
    rows = []
    for g, a in arrays.items():
        idx = np.clip(np.floor((a - start) / step).astype(np.int64), 0, n - 1)
        for i, c in enumerate(np.bincount(idx, minlength=n)):
            if c:
                rows.append({"group": g, "start": round(float(edges[i]), 10),
                             "end": round(float(edges[i + 1]), 10), "count": int(c)})
    return rows, integral


def histogram(groups: dict[str, list[float]], title: str, x_title: str,
              thresholds: list[dict[str, Any]] | None = None, width: int = WIDTH
              ) -> dict[str, Any] | None:
    """Overlaid histograms of several groups (e.g. kept / rejected) with threshold rules,
    binned here (the page carries counts per bin, never the values)."""
    rows, whole = bin_counts(groups)
    if not rows:
        return None
    base = alt.Chart(alt.Data(values=rows)).mark_rect(opacity=0.6).encode(
        x=alt.X("start:Q", title=x_title, scale=alt.Scale(zero=False, nice=False),
                axis=alt.Axis(tickCount=max(2, width // 90), labelOverlap="greedy",
                              labelFlush=True, labelSeparation=6, **({
                                  "values": whole_ticks(min(r["start"] for r in rows),
                                                        max(r["end"] for r in rows),
                                                        max(2, width // 80)),
                                  "format": ",d"} if whole else {}))),
        x2=alt.X2("end:Q"),
        y=alt.Y("count:Q", title="rows", scale=alt.Scale(zero=True),
                axis=count_axis(max(r["count"] for r in rows))),
        y2=alt.Y2Datum(0),
        color=alt.Color("group:N", title=None),
        tooltip=[alt.Tooltip("group:N"), alt.Tooltip("start:Q", title="from"),
                 alt.Tooltip("end:Q", title="to"), alt.Tooltip("count:Q")],
    )
    layers: list[Any] = [base]
    if thresholds:
        rule_rows = [{"value": t["value"], "label": f"{t['op']} {t['value']} → {t.get('reason')}"}
                     for t in thresholds]
        layers.append(alt.Chart(alt.Data(values=rule_rows)).mark_rule(
            color="#c0392b", strokeWidth=2, strokeDash=[4, 3]).encode(
            x=alt.X("value:Q"), tooltip=_tooltips("label:N")))
    return _spec(alt.layer(*layers).properties(width=width, height=140, title=title))


def durations(seconds: dict[str, float]) -> dict[str, Any] | None:
    return bars({k: round(v, 2) for k, v in seconds.items()}, "Busy seconds per stage", "stage",
                "seconds", whole=False)
