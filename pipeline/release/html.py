"""The explained release diff as one self-contained HTML page (the run report's look): counts
per reason, the config change behind each, and example rows per reason, with the old and new
text side by side for rows whose content changed."""

from __future__ import annotations

import difflib
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.outputs.storage import read_parquet
from pipeline.report.page import CSS, esc
from transforms.io.files import join

MAX_TEXT = 600


def _text(row: dict[str, Any]) -> str:
    if row.get("messages") is not None:
        turns = row["messages"]
    else:
        turns = [*(row.get("prompt") or []), *(row.get("chosen") or [])]
    return "\n".join(f"{m['role']}: {m['content']}" for m in turns)[:MAX_TEXT]


def texts(out: str | None, shards: dict[str, list[str]]) -> dict[str, str]:
    """id → its text, reading only the shards the ids are in (shard path → ids)."""
    found: dict[str, str] = {}
    for shard, ids in shards.items():
        if out is None or not ids:
            continue
        table = read_parquet(join(out, shard))
        table = table.filter(pc.is_in(table.column("id"), value_set=pa.array(ids)))
        cols = [c for c in ("id", "messages", "prompt", "chosen") if c in table.column_names]
        for row in table.select(cols).to_pylist():
            found[row["id"]] = _text(row)
    return found


def _where(run: Any, ids: set[str]) -> dict[str, list[str]]:
    """shard path → the ones of `ids` published in it (a run's rows, column-wise)."""
    shards: dict[str, list[str]] = {}
    if not ids:
        return shards
    for dataset in run.datasets():
        rows = run.rows(dataset).filter(pl.col("id").is_in(list(ids)))
        for i, shard in rows.select("id", "shard").iter_rows():
            shards.setdefault(shard, []).append(i)
    return shards


def diff_page(old: Any, new: Any, diff: dict[str, Any], title: str) -> str:
    """The page for a diff of two `pipeline.release.runs.Run`s, with the examples' texts read."""
    want_old: set[str] = set()
    want_new: set[str] = set()
    for d in diff["datasets"].values():
        for kind, mine, theirs in (("removed", want_old, want_new), ("added", want_new, want_old),
                                   ("kept", want_new, want_old)):
            for rows in d["examples"].get(kind, {}).values():
                for e in rows:
                    mine.add(e["id"])
                    if e.get("new_id") or e.get("old_id"):
                        theirs.add(e.get("new_id") or e.get("old_id"))
    return render_diff(diff, texts(old.out, _where(old, want_old)),
                       texts(new.out, _where(new, want_new)), title)


def side_by_side(old: str, new: str) -> tuple[str, str]:
    """Old and new text, escaped, with removed words in <del> and added words in <ins>."""
    a, b = old.split(" "), new.split(" ")
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            left.append(esc(" ".join(a[i1:i2])))
            right.append(esc(" ".join(b[j1:j2])))
            continue
        if i2 > i1:
            left.append(f"<del>{esc(' '.join(a[i1:i2]))}</del>")
        if j2 > j1:
            right.append(f"<ins>{esc(' '.join(b[j1:j2]))}</ins>")
    return " ".join(left), " ".join(right)


def render_diff(diff: dict[str, Any], old_texts: dict[str, str], new_texts: dict[str, str],
                title: str) -> str:
    """The page: one section per dataset, one table of examples per reason."""
    parts = [f"<h1>{esc(title)}</h1>",
             f"<p class='muted'>against {esc(diff.get('previous') or 'no previous release')}</p>"]
    for name, d in diff["datasets"].items():
        parts.append(f"<section data-dataset='{esc(name)}'><h2>{esc(name)}: +{d['added']} "
                     f"added, −{d['removed']} removed, {d['kept']} kept</h2>")
        for kind in ("removed", "added", "kept"):
            for why, n in d.get("reasons", {}).get(kind, {}).items():
                change = "; ".join(d.get("config_change", {}).get(why, []))
                parts.append(f"<h3 data-kind='{kind}' data-reason='{esc(why)}' data-count='{n}'>"
                             f"{kind} · {esc(why)} · {n} row(s)</h3>")
                if change:
                    parts.append(f"<p class='muted'>config change: {esc(change)}</p>")
                rows = []
                for e in d["examples"][kind].get(why, []):
                    mine = (old_texts if kind == "removed" else new_texts).get(e["id"], "")
                    other_id = e.get("new_id" if kind == "removed" else "old_id")  # kept: moved
                    other = (new_texts if kind == "removed" else old_texts).get(other_id or "", "")
                    if other_id and other:
                        old, new = (mine, other) if kind == "removed" else (other, mine)
                        left, right = side_by_side(old, new)
                    else:
                        left, right = esc(mine), esc(", ".join(e.get("parents") or []))
                    where = f"{esc(e.get('file'))}:{esc(e.get('row'))}"
                    if e.get("old_file") is not None:  # a moved row: from → to
                        where = f"{esc(e['old_file'])}:{esc(e.get('old_row'))} → {where}"
                    rows.append(f"<tr data-id='{esc(e['id'])}'><td>{esc(e['id'][:16])}</td>"
                                f"<td>{where}</td>"
                                f"<td class='txt'>{left}</td><td class='txt'>{right}</td></tr>")
                head = ("<tr><th>id</th><th>source</th><th>old text</th><th>new text</th></tr>"
                        if any(e.get("new_id") or e.get("old_id")
                               for e in d["examples"][kind].get(why, []))
                        else "<tr><th>id</th><th>source</th><th>text</th><th>parents</th></tr>")
                parts.append(f"<table>{head}{''.join(rows)}</table>")
        parts.append("</section>")
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
