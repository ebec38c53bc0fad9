"""report.html: one self-contained page on what a run did, regenerated from its output directory.

`write_report(out_dir)` reads the manifest, shards, `rejected/` and `deadletter/` of a finished
(or staged) run and writes `<out_dir>/report.html`: the record funnel per source, drop reasons
with example rows, signal histograms with filter thresholds, lengths before/after, dedup
clusters, decontamination matches with the matched span highlighted, synthesis samples (parent →
new example, chosen vs rejected with the edit highlighted) and run facts. Charts are Vega specs
(compiled from Vega-Lite, histograms binned here) drawn by one inline copy of the Vega runtime:
the page works offline and stays under 1 MB at any row count. Every text from the data is
HTML-escaped; JSON in <script> tags cannot close the tag.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.outputs import layout as L
from pipeline.outputs.layout import RunLayout
from pipeline.report import charts
from pipeline.report import data as rd
from pipeline.report import sections as rs
from schemas.step_pairs import conversational
from transforms.io.files import exists, join, read_json, write_text

DATASETS = (L.SFT, L.CURATED, L.PREFERENCE, L.TAG_POLICY)  # rows in conversational form
SECTIONS = ("flow", "rejected", "signals", "lengths", "dedup", "decontam", "synthesis",
            "deadletter", "facts")
CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:1.5em auto;color:#222}
nav a{margin-right:.8em}section{border-top:1px solid #ddd;margin-top:1.5em}
table{border-collapse:collapse;font-size:13px;margin:.5em 0;width:100%}
td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}
th{background:#f4f4f4}pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:12px}
.txt{white-space:pre-wrap;max-width:420px}mark{background:#ffe08a}del{background:#fbd0d0}
ins{background:#c9f2c9;text-decoration:none}.ok{color:#1e7b34}.bad{color:#b3261e}
.muted{color:#777}.grid{display:flex;flex-wrap:wrap;gap:8px}
.note{background:#fff8e1;border-left:3px solid #f0ad4e;padding:6px 10px}"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def script_json(value: Any) -> str:
    """JSON safe inside <script>: no '</' and no HTML comment openers."""
    return (json.dumps(value, ensure_ascii=False, default=str)
            .replace("</", "<\\/").replace("<!--", "<\\!--"))


class Page:
    """Collects sections and charts, then renders one HTML document."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.specs: list[tuple[str, dict[str, Any]]] = []

    def chart(self, spec: dict[str, Any] | None) -> None:
        if spec is None:
            return
        div = f"chart{len(self.specs)}"
        self.specs.append((div, spec))
        self.parts.append(f'<div class="chart" id="{div}"></div>')

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def table(self, header: list[str], rows: list[list[Any]], raw_cols: tuple[int, ...] = ()) -> None:
        head = "".join(f"<th>{esc(h.replace('_', ' '))}</th>" for h in header)
        body = "".join("<tr>" + "".join(
            f"<td class='txt'>{c if i in raw_cols else esc(c)}</td>" for i, c in enumerate(r))
            + "</tr>" for r in rows)
        self.add(f"<table><tr>{head}</tr>{body}</table>")

    def render(self, title: str) -> str:
        embeds = "".join(
            f"refineryChart(document.getElementById('{div}'), {script_json(spec)});\n"
            for div, spec in self.specs)
        nav = " ".join(f'<a href="#sec-{s}">{s}</a>' for s in SECTIONS)
        return ("<!doctype html><html><head><meta charset='utf-8'>"
                f"<title>{esc(title)}</title><style>{CSS}</style>"
                f"<script>{charts.runtime()}</script></head><body>"
                f"<nav>{nav}</nav>" + "\n".join(self.parts)
                + f"<script>\n{embeds}</script></body></html>")


def _section(page: Page, name: str, title: str) -> None:
    page.add(f'<section id="sec-{name}" data-section="{name}"><h2>{esc(title)}</h2>')


def _end(page: Page) -> None:
    page.add("</section>")


def _examples_table(page: Page, examples: list[dict[str, Any]], detail: bool = True) -> None:
    header = ["id", "source", "prompt", "response"] + (["detail"] if detail else [])
    page.table(header, [[e.get("id", "")[:12], e.get("source"), e.get("prompt"),
                         e.get("response")] + ([e.get("detail")] if detail else [])
                        for e in examples])


def _norm(word: str) -> str:
    return re.sub(r"\W+", "", re.sub(r"\d+", "0", word.lower()))


def highlight(text: str, span: str) -> str:
    """Escaped `text` with the words matching `span` wrapped in <mark>. Decontamination spans
    are normalized n-grams (lowercase, no punctuation, numbers masked), so words are compared
    after the same normalization, and the longest common run of words is marked."""
    words = list(re.finditer(r"\S+", text))
    target = [_norm(w) for w in span.split() if _norm(w)]
    if not words or not target:
        return esc(text)
    normed = [_norm(w.group()) for w in words]
    match = difflib.SequenceMatcher(a=normed, b=target, autojunk=False).find_longest_match(
        0, len(normed), 0, len(target))
    if match.size < 3:
        return esc(text)
    start, end = words[match.a].start(), words[match.a + match.size - 1].end()
    return f"{esc(text[:start])}<mark>{esc(text[start:end])}</mark>{esc(text[end:])}"


def diff_html(ops: list[list[Any]]) -> tuple[str, str]:
    chosen = "".join(esc(t) if op == "eq" else (f"<del>{esc(t)}</del>" if op == "del" else "")
                     for op, t in ops)
    rejected = "".join(esc(t) if op == "eq" else (f"<ins>{esc(t)}</ins>" if op == "ins" else "")
                       for op, t in ops)
    return chosen, rejected


def gather(out_dir: str, manifest: dict[str, Any] | None = None,
           deadletter: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the page shows, read from `out_dir` (bounded sizes; see report_data); the
    run's `manifest` and `deadletter` entries when the caller has them already."""
    run = RunLayout(out_dir)
    if manifest is None:
        if not exists(run.manifest):  # one error for every filesystem
            raise FileNotFoundError(f"no such file: {run.manifest}")
        manifest = read_json(run.manifest)
    shards = {d: rd.Shards(run.dataset(d)) for d in DATASETS}
    examples = [shards[L.SFT], shards[L.CURATED]]
    survivors: Counter[str] = Counter()
    for light in (t for s in examples for t in s.light):
        survivors += rd.value_counts(pc.filter(rd.source_column(light),
                                               pc.is_null(rd.stage_column(light))))

    def curated_rows(t: pa.Table) -> pa.Array:
        return pc.is_null(rd.stage_column(t))

    def synthesized_rows(t: pa.Table) -> pa.Array:
        return pc.is_valid(rd.stage_column(t))

    def kept_values(signal: str) -> list[float]:  # every kept input record's
        return [v for s in examples for v in s.values(curated_rows, signal)]

    kept_words = [n for s in examples for n in s.answer_words(curated_rows, rd.MAX_VALUES)]
    synthesized = [r for s in examples for r in s.rows(synthesized_rows, rd.MAX_VALUES)]
    synth_pairs = [r for d in (L.PREFERENCE, L.TAG_POLICY)
                   for r in shards[d].rows(synthesized_rows, rd.MAX_VALUES)]
    synth_pairs += [conversational(r) for r in rd.Shards(run.dataset(L.PREFERENCE_STEPS)).rows(
        synthesized_rows, rd.MAX_VALUES)]
    rejected = rd.read_rejected(out_dir)
    counts = rd.rejected_counts(out_dir)
    dead = deadletter[:rd.MAX_DEADLETTER] if deadletter is not None else rd.read_deadletter(
        out_dir)
    wanted = {r["duplicate_of"] for r in rejected.get("dedup", []) if r.get("duplicate_of")}
    wanted |= {p for r in synthesized for p in ((r.get("meta") or {}).get("lineage") or {}).get(
        "parent_ids") or []}
    wanted_ids = pa.array(sorted(wanted), pa.string())
    by_id = {r["id"]: r for s in examples
             for r in s.rows(lambda t: pc.is_in(t.column("id"), wanted_ids))} if wanted else {}
    parents = {r["id"]: r for rows in rejected.values() for r in rows if "messages" in r}
    files = rd.file_sources([t for s in examples for t in s.light])
    for stage_counts in counts.values():
        for f, name in stage_counts["files"].items():
            files.setdefault(f, name)
    return {
        "manifest": manifest,
        "funnel": rd.funnel(survivors, counts, files, dead),
        "reasons": rd.reasons(rejected, counts),
        "signals": rd.signals(manifest, kept_values, rejected),
        "lengths": rd.lengths(kept_words[:rd.MAX_VALUES], rejected),
        "dedup": rs.dedup_clusters(rejected.get("dedup", []), by_id),
        "decontam": rs.decontam_hits(rejected.get("decontam", [])),
        "synthesized": rs.synthesized(synthesized, by_id, parents),
        "pairs": rs.pairs(synth_pairs),
        "pair_stats": rs.pair_stats(synth_pairs),
        "deadletter": [{"stage": e.get("stage"), "file": e.get("file"), "row": e.get("row"),
                        "error": rd.clip(e.get("error"), 300), "raw": rd.clip(e.get("raw"), 300)}
                       for e in dead[:20]],
        "facts": rs.facts(manifest),
    }


def render_report(data: dict[str, Any]) -> str:
    m = data["manifest"]
    c = m["conservation"]
    page = Page()
    holds = "<b class='ok'>holds</b>" if c["holds"] else "<b class='bad'>VIOLATED</b>"
    page.add(f"<h1>{esc(m['name'])}</h1><p>config hash <code>{esc(m['config_hash'][:16])}</code>"
             f" · records in {c['records_in']} = out {c['records_out']} + rejected "
             f"{c['rejected']} + dead letter {c['deadletter']}: {holds}</p>")
    _section(page, "flow", "Flow of records")
    page.chart(charts.funnel(data["funnel"]))
    outputs = {f"{d} ← {o}": n for d, origins in m["counts"]["outputs"].items()
               for o, n in origins.items()}
    page.chart(charts.bars(outputs, "Output rows by dataset and origin", "output"))
    _end(page)
    _section(page, "rejected", "Rejected rows, by stage and reason")
    for stage, items in data["reasons"].items():
        page.add(f'<div class="stage" data-stage="{esc(stage)}"><h3>{esc(stage)}</h3>')
        page.chart(charts.bars({i["reason"]: i["count"] for i in items}, f"{stage}: reasons"))
        for item in items:
            page.add(f"<h4>{esc(item['reason'])} <span class='muted'>({rows_text(item['count'])})"
                     "</span></h4>")
            _examples_table(page, item["examples"])
        page.add("</div>")
    if not data["reasons"]:
        page.add("<p>No row was rejected.</p>")
    _end(page)
    _section(page, "signals", "Quality signals and filter thresholds")
    page.add("<div class='grid'>")
    for s in data["signals"]:
        page.chart(charts.histogram({"kept": s["kept"], "rejected by quality": s["rejected"]},
                                    s["signal"], s["signal"], s["thresholds"], width=300))
    page.add("</div>")
    if not data["signals"]:
        page.add("<p>The quality stage did not run.</p>")
    _end(page)
    _section(page, "lengths", "Response length (words) before and after curation")
    page.chart(charts.histogram({"before": data["lengths"]["before"],
                                 "after": data["lengths"]["after"]}, "response words", "words"))
    _end(page)
    _render_dedup(page, data["dedup"])
    _render_decontam(page, data["decontam"])
    _render_synthesis(page, data, m)
    _section(page, "deadletter", "Dead letter")
    page.chart(charts.bars(m["counts"]["deadletter"], "Dead-letter entries by stage", "stage"))
    page.table(["stage", "file", "row", "error", "raw"],
               [[e["stage"], e["file"], e["row"], e["error"], e["raw"]] for e in data["deadletter"]])
    _end(page)
    _render_facts(page, data["facts"])
    return page.render(f"Refinery run report: {m['name']}")


def _render_dedup(page: Page, dedup: dict[str, Any]) -> None:
    _section(page, "dedup", "Duplicates")
    page.chart(charts.bars(dedup["sizes"], "Clusters by size (keeper + removed)", "size",
                           "clusters"))
    for cl in dedup["clusters"]:
        page.add(f"<h4>cluster of {cl['size']}: keeper <code>{esc(cl['keeper']['id'][:12])}"
                 f"</code></h4><p class='txt'>{esc(cl['keeper']['prompt'])}</p>")
        page.table(["removed id", "reason", "similarity", "prompt"],
                   [[r["id"][:12], r["reason"], r["similarity"], r["prompt"]]
                    for r in cl["removed"]])
    if not dedup["clusters"]:
        page.add("<p>No duplicates were removed.</p>")
    _end(page)


def _render_decontam(page: Page, dc: dict[str, Any]) -> None:
    _section(page, "decontam", "Benchmark contamination")
    page.table(["benchmark", "rows flagged", "by rule"],
               [[b["benchmark"], b["rows"], json.dumps(b["by_rule"])] for b in dc["benchmarks"]])
    page.table(["id", "benchmark", "rule", "row (matched span marked)", "benchmark item"],
               [[esc(x["id"][:12]), esc(x["benchmark"]), esc(x["reason"]),
                 highlight(x["text"], x["span"]), highlight(x["item"], x["span"])]
                for x in dc["matches"]], raw_cols=(0, 1, 2, 3, 4))
    if not dc["benchmarks"]:
        page.add("<p>No row matched a benchmark.</p>")
    _end(page)


def _flat_numbers(report: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(report, dict):
        for k, v in report.items():
            out.update(_flat_numbers(v, f"{prefix}{k}."))
    elif isinstance(report, int | float | str | bool) and len(prefix) < 80:
        out[prefix.rstrip(".")] = report
    return out


def rows_text(n: int, unit: str = "row") -> str:
    return f"{n:,} {unit}" + ("" if n == 1 else "s")


def _render_synthesis(page: Page, data: dict[str, Any], m: dict[str, Any]) -> None:
    _section(page, "synthesis", "Synthesis")
    from pipeline.report.console import synthesis_notes

    notes = synthesis_notes(m)
    stages = list(m.get("synthesis", {}))
    stages += [s for s in (*data["pair_stats"], *data["pairs"]) if s not in stages]
    for stage in stages:
        page.add(f'<div class="stage" data-stage="{esc(stage)}"><h3>{esc(stage)}</h3>')
        if stage in notes:
            page.add(f"<p class='note'>{esc(notes[stage])}</p>")
        counts = m.get("synthesis", {}).get(stage)
        if counts:
            page.chart(charts.bars(counts, f"{stage}: outcome", "outcome"))
        flat = _flat_numbers(m.get("reports", {}).get(stage, {}))
        if flat:
            page.add("<details><summary>stage report</summary>")
            page.table(["field", "value"], [[k, v] for k, v in list(flat.items())[:80]])
            page.add("</details>")
        for ex in data["synthesized"].get(stage, []):
            page.table(["parent instruction", f"new ({ex['method']})", "response"],
                       [[ex["parent"] or "(parent not in outputs)", ex["prompt"], ex["response"]]])
        stats = data["pair_stats"].get(stage, {})
        page.chart(charts.bars(stats.get("error_types", {}), f"{stage}: injected error types",
                               "error type", "pairs"))
        page.chart(charts.histogram({"pairs": stats.get("edit_distance", [])},
                                    f"{stage}: edit distance chosen → rejected (words)", "words"))
        for method, items in data["pairs"].get(stage, {}).items():
            page.add(f"<h4>pairs: {esc(method)}</h4>")
            rows = []
            for p in items:
                chosen, rejected = diff_html(p["diff"])
                rows.append([esc(p["error_type"]), esc(p["prompt"]), chosen, rejected])
            page.table(["error", "prompt", "chosen (removed words struck)",
                        "rejected (inserted marked)"], rows, raw_cols=(0, 1, 2, 3))
        page.add("</div>")
    if not stages:
        page.add("<p>No synthesis stage ran.</p>")
    _end(page)


def _render_facts(page: Page, f: dict[str, Any]) -> None:
    _section(page, "facts", "Run facts")
    page.table(["input", "layout", "rows read", "dead letter", "sha256"],
               [[i.get("path"), i.get("layout"), i.get("rows_read"), i.get("deadletter"),
                 (i.get("sha256") or "")[:16]] for i in f["inputs"]])
    page.chart(charts.durations(f["timings"].get("stages", {})))
    if f["llm"]:
        page.table(list(f["llm"][0]), [list(r.values()) for r in f["llm"]])
    page.table(["library", "version"], [[k, v] for k, v in sorted(f["versions"].items())])
    page.add(f"<details><summary>config (secrets redacted)</summary><pre>"
             f"{esc(json.dumps(f['config'], indent=2, sort_keys=True))}</pre></details>")
    _end(page)


def write_report(out_dir: str, redact: Callable[[str], str] | None = None,
                 manifest: dict[str, Any] | None = None,
                 deadletter: list[dict[str, Any]] | None = None) -> str:
    """Render `<out_dir>/report.html` from the run's files (through `redact`, which removes
    secrets), or from the `manifest` and `deadletter` entries the driver read already;
    returns its path."""
    path = RunLayout(out_dir).report
    page = render_report(gather(out_dir, manifest, deadletter))
    if redact is not None:  # the inline Vega runtime (0.6 MB, ours, constant) is not scanned
        runtime = charts.runtime()
        page = runtime.join(redact(part) for part in page.split(runtime, 1))
    write_text(path, page)
    return path


def rewrite_report(out: str) -> str:
    """`refinery report OUT`: regenerate the report of the published run of `out` (or of `out`
    itself when it is a run directory). On object stores the top-level copy is refreshed too
    (on local disk `OUT/report.html` is a link into the published run)."""
    from pipeline.outputs.publish import published_dir
    from transforms.io.files import copy_file, is_local

    run = published_dir(out)
    path = write_report(run)
    if run != out and not is_local(out):
        top = join(out, L.REPORT)
        copy_file(path, top)
        return top
    return path
