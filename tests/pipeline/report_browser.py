"""The run report in headless Chromium: its layout problems and a screenshot.

`problems_of(measure(report, work))` loads a report with a script that waits for the charts,
then lists axis tick labels that overlap (the visible ones: Vega hides the labels it drops with
opacity 0), repeated labels and fractional ones on count axes, charts without a rendered SVG,
and charts whose title names a stage other than the `data-stage` block they sit in. Also a script: the README's picture of the report,

    python -m tests.pipeline.report_browser OUT/report.html docs/img/report.png
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]

# After the charts render: every visible tick label's box per axis, chart titles and stages.
LAYOUT_HOOK = """<script>setTimeout(function(){var out=[];
document.querySelectorAll('div.chart').forEach(function(div){
 var c={id:div.id, svg:!!div.querySelector('svg'), axes:[],
        title:(div.querySelector('.role-title-text')||{}).textContent||'',
        stage:(div.closest('[data-stage]')||{dataset:{}}).dataset.stage||null};
 div.querySelectorAll('g.role-axis').forEach(function(ax){
  var boxes=[]; boxes.title=(ax.querySelector('.role-axis-title text')||{}).textContent||'';
  ax.querySelectorAll('g.role-axis-label text').forEach(function(t){
   if(t.getAttribute('opacity')==='0'||getComputedStyle(t).opacity==='0')return;
   var b=t.getBoundingClientRect(); if(!b.width)return;
   boxes.push({text:t.textContent,l:b.left,r:b.right,t:b.top,b:b.bottom});});
  c.axes.push({title:boxes.title, labels:boxes});});
 out.push(c);});
var d=document.createElement('pre');d.id='layout';d.textContent=JSON.stringify(out);
document.body.appendChild(d)},4000);</script>"""


COUNT_TITLES = ("rows", "pairs", "clusters")  # axes of counts: whole numbers only


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """Chromium's path; a failure under CI (the Makefile's test target installs it), a skip
    on a machine set up without `make test`."""
    import pytest

    path = chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: the Makefile's test target installs it")
        pytest.skip("chromium is not installed: runs under `make test`, which installs it")
    return path


def browse(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [chromium() or "chromium", *FLAGS, f"--user-data-dir={profile}",
           "--virtual-time-budget=8000", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240)


def _overlap(a: dict, b: dict, slack: float = 0.5) -> bool:
    return (min(a["r"], b["r"]) - max(a["l"], b["l"]) > slack
            and min(a["b"], b["b"]) - max(a["t"], b["t"]) > slack)


def problems_of(charts: list[dict]) -> list[str]:
    """What is wrong with the charts measured by LAYOUT_HOOK (an empty list: nothing)."""
    out = []
    for c in charts:
        if not c["svg"]:
            out.append(f"{c['id']}: no chart rendered")
        for axis in c["axes"]:
            boxes = axis["labels"]
            for i, a in enumerate(boxes):
                out += [f"{c['id']} ({c['title']}): tick labels {a['text']!r} and "
                        f"{b['text']!r} overlap" for b in boxes[i + 1:] if _overlap(a, b)]
            texts = [b["text"] for b in boxes]
            if len(set(texts)) < len(texts):  # e.g. 0.5 rows rounded: "0, 1, 1, 2"
                out.append(f"{c['id']} ({c['title']}): repeated tick labels {texts}")
            if axis["title"] in COUNT_TITLES and not all(
                    re.fullmatch(r"[\d,]+", t) for t in texts):
                out.append(f"{c['id']} ({c['title']}): fractional counts {texts}")
        stage = c["stage"]
        if stage and not c["title"].startswith(f"{stage}:"):
            out.append(f"{c['id']}: chart {c['title']!r} sits under stage {stage!r}")
    return out


def measure(report: Path, work: Path) -> list[dict]:
    """The charts of `report` as LAYOUT_HOOK measures them in Chromium."""
    page = work / "layout.html"
    page.write_text(report.read_text().replace("<head>", "<head>" + LAYOUT_HOOK, 1))
    dom = browse(page, work / "profile", "--window-size=1100,1400", "--dump-dom").stdout
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom, re.S)
    if found is None:
        raise RuntimeError("the report did not finish rendering in Chromium")
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&"))


def screenshot(report: Path, png: Path, work: Path, height: int = 1150) -> Path:
    browse(report, work / "profile", f"--screenshot={png.resolve()}",
           f"--window-size=1100,{height}")
    return png


if __name__ == "__main__":
    import tempfile

    src, dest = Path(sys.argv[1]), Path(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        problems = problems_of(measure(src, Path(tmp)))
        screenshot(src, dest, Path(tmp))
    print("\n".join(problems) or f"layout ok; wrote {dest}")
