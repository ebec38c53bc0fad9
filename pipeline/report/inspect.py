"""`refinery inspect OUT`: print sample rows of a finished run in the terminal.

Datasets: every dataset of the run layout (pipeline/outputs/layout.py: sft, curated,
preference, preference_steps, tag_policy, tag_policy_sharegpt), rejected (filtered by
`--stage` and `--reason`) and deadletter. On a terminal the rows are a rich table; in a pipe
they are plain `key: value` blocks with no escape codes.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any, TextIO

from pipeline.outputs import layout as L
from pipeline.outputs.layout import RunLayout
from pipeline.report import data as rd
from pipeline.report.console import is_terminal
from transforms.io.files import exists

DATASETS = L.INSPECTABLE


def printable(text: str) -> str:
    """Row text made safe for a terminal: control characters (escape sequences, bells,
    carriage returns) and bidirectional overrides are shown as `\\x1b`-style escapes, never
    sent raw; newlines and tabs stay."""
    return "".join(ch if ch in "\n\t" or not (
        unicodedata.category(ch) == "Cc" or "\u202a" <= ch <= "\u202e"
        or "\u2066" <= ch <= "\u2069") else ascii(ch)[1:-1] for ch in text)


class InspectError(Exception):
    """The output directory has no such dataset, stage or reason."""


def _rejected_rows(out_dir: str, stage: str | None, reason: str | None, n: int
                   ) -> list[dict[str, Any]]:
    counts = rd.rejected_counts(out_dir)
    if stage is not None and stage not in counts:
        raise InspectError(f"no rejected rows of stage {stage!r} in {out_dir}; stages with "
                           f"rejected rows: {', '.join(sorted(counts)) or 'none'}")
    known = sorted({r for s, c in counts.items() if stage in (None, s) for r in c["reasons"]})
    if reason is not None and reason not in known:
        raise InspectError(f"no rejected rows with reason {reason!r}; reasons: "
                           f"{', '.join(known) or 'none'}")
    by_stage = rd.read_rejected(out_dir, limit=n, reason=reason)
    return [r for s, rs in sorted(by_stage.items()) if stage in (None, s) for r in rs][:n]


def sample_rows(out_dir: str, dataset: str = L.SFT, stage: str | None = None,
                reason: str | None = None, n: int = 5) -> list[dict[str, str]]:
    """The first `n` matching rows as flat {column: text} dicts (texts truncated)."""
    run = RunLayout(out_dir)
    if not exists(run.manifest):
        raise InspectError(f"{out_dir} is not the output directory of a finished run "
                           f"(no {L.MANIFEST})")
    if dataset not in DATASETS:
        raise InspectError(f"no dataset {dataset!r}; one of {', '.join(DATASETS)}")
    if dataset == L.DEADLETTER:
        rows = [e for e in rd.read_deadletter(out_dir) if stage in (None, e.get("stage"))]
        return [{k: rd.clip(e.get(k), 300) for k in ("stage", "file", "row", "error", "raw")}
                for e in rows[:n]]
    if dataset == L.REJECTED:
        rows = _rejected_rows(out_dir, stage, reason, n)
        return [{**rd.row_summary(r), "stage": r.get("reject_stage"),
                 "reason": r.get("reject_reason"), "detail": rd.clip(r.get("reject_detail"), 300)}
                for r in rows[:n]]
    table = rd.read_dir(run.dataset(dataset))
    if table is None:
        raise InspectError(f"no {dataset} shards in {out_dir}")
    rows = table.slice(0, n).to_pylist() if stage is None else [
        r for r in table.to_pylist()
        if ((r.get("meta") or {}).get("lineage") or {}).get("stage") == stage][:n]
    return [{k: "" if v is None else str(v) for k, v in rd.row_summary(r).items()} for r in rows]


def print_rows(rows: list[dict[str, str]], title: str, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    if not rows:
        print(f"{title}: no rows", file=stream)
        return
    if is_terminal(stream):  # row text is data: plain Text (never markup), controls escaped
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(printable(title)), show_lines=True)
        for key in rows[0]:
            table.add_column(Text(printable(str(key))), overflow="fold")
        for row in rows:
            table.add_row(*(Text(printable(str(row.get(k, "")))) for k in rows[0]))
        Console(file=stream).print(table)
        return
    print(f"# {printable(title)}: {len(rows)} rows", file=stream)
    for row in rows:
        for key, value in row.items():
            text = "" if value is None else str(value)  # one line per field: \n shown escaped
            line = f"{key}: {json.dumps(text, ensure_ascii=False)[1:-1]}"
            print(printable(line), file=stream)
        print("", file=stream)
