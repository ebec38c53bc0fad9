"""The run report in a real browser, `refinery report` / `refinery inspect`, and the console of a
demo run whose output is a pipe (as in `make run | cat`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.outputs.publish import published_dir
from pipeline.report.page import highlight
from tests.conftest import HOSTILE_INSTRUCTION
from tests.pipeline import report_browser as rb

SECTIONS = ("flow", "rejected", "signals", "lengths", "dedup", "decontam", "synthesis",
            "deadletter", "facts")
# Records console.error calls, uncaught errors and alert() calls, then writes them into the DOM.
ERROR_HOOK = """<script>window.__errs=[];
console.error=function(){__errs.push(Array.prototype.join.call(arguments,' '))};
window.alert=function(m){__errs.push('alert:'+m)};
window.addEventListener('error',function(e){__errs.push('uncaught:'+e.message)});
setTimeout(function(){var d=document.createElement('pre');d.id='console-errors';
d.textContent=JSON.stringify(__errs);document.body.appendChild(d)},3000);</script>"""
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def _browse(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [rb.require_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}",
           "--virtual-time-budget=6000", *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _section(dom: str, name: str) -> str:
    start = dom.index(f'id="sec-{name}"')
    return dom[start:dom.index("</section>", start)]


@pytest.mark.slow
def test_report_renders_in_chromium(demo_run, tmp_path: Path) -> None:
    html = (demo_run.out / "report.html").read_text()
    assert len(html.encode()) <= 5 * 2**20  # self-contained, small
    assert "http://" not in html.split("<script>", 1)[0] and "src=\"http" not in html
    # the hostile instruction is shown escaped, never as markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    page = tmp_path / "report.html"
    page.write_text(html.replace("<head>", "<head>" + ERROR_HOOK, 1))
    dom = _browse(page, tmp_path, "--dump-dom").stdout
    errors = re.search(r'<pre id="console-errors">(.*?)</pre>', dom)
    assert errors is not None, "the page did not finish loading"
    assert json.loads(errors.group(1).replace("&quot;", '"')) == []
    for name in SECTIONS:
        body = _section(dom, name)
        # every section shows a rendered chart (svg with marks) or a table with data rows
        assert re.search(r"<svg[^>]*>.*?<path", body, re.S) or "<td" in body, name
    assert HOSTILE_INSTRUCTION.replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;") in _section(dom, "dedup")
    shot = tmp_path / "report.png"
    _browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1100,2000")
    assert shot.exists() and shot.stat().st_size > 20_000  # a real picture, not a blank page


@pytest.mark.slow
def test_demo_console_is_plain_and_ends_with_summary(demo_run) -> None:
    for stream in (demo_run.stdout, demo_run.stderr):
        assert "\x1b" not in stream and "\r" not in stream
    assert "apitools" not in demo_run.stderr
    last = demo_run.stdout.strip().splitlines()
    assert last[0].split() == ["stage", "produced", "rejected", "dead", "letter", "seconds"]
    assert re.match(r"records in \d+ = out \d+ \+ rejected \d+ \+ dead letter \d+: holds",
                    [x for x in last if x.startswith("records in")][0])
    assert last[-1].startswith(f"outputs in {demo_run.out}")
    manifest = json.loads((demo_run.out / "manifest.json").read_text())
    assert manifest["timings"]["total_s"] > 0
    assert {"quality", "dedup"} <= set(manifest["timings"]["stages"])


@pytest.mark.slow
def test_inspect_and_report_commands(demo_run, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "run"
    shutil.copytree(published_dir(demo_run.out), copy)
    (copy / "report.html").unlink()
    assert main(["report", str(copy)]) == 0
    assert (copy / "report.html").read_text() == (demo_run.out / "report.html").read_text()
    capsys.readouterr()
    assert main(["inspect", str(copy), "--dataset", "rejected", "--reason", "refusal"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# rejected reason=refusal: 1 rows") and "reason: refusal" in text
    assert "\x1b" not in text
    assert main(["inspect", str(copy), "--dataset", "preference", "--stage", "rise"]) == 0
    assert capsys.readouterr().out == "preference stage=rise: no rows\n"  # steps: own dataset
    assert main(["inspect", str(copy), "--dataset", "preference_steps", "--stage", "rise",
                 "-n", "2"]) == 0
    blocks = [b for b in capsys.readouterr().out.split("\n\n") if b.startswith("id:")
              or "\nid:" in b]
    assert len(blocks) == 2 and all("rejected:" in b and "prefix:" in b for b in blocks)
    assert main(["inspect", str(copy), "--dataset", "deadletter", "-n", "1"]) == 0
    assert "error:" in capsys.readouterr().out
    assert main(["inspect", str(copy), "--dataset", "rejected", "--reason", "no_such"]) == 2
    assert "reasons:" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path / "missing")]) == 2


def test_highlight_marks_normalized_span_and_escapes() -> None:
    text = "A <b>big</b> garden has 6 rows of tomato plants, with 8 plants in each row."
    out = highlight(text, "garden has 0 rows of tomato plants with 0 plants")
    assert out == ("A &lt;b&gt;big&lt;/b&gt; <mark>garden has 6 rows of tomato plants, with 8 "
                   "plants</mark> in each row.")
    assert highlight("short text", "nothing in common here") == "short text"
