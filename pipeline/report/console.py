"""What a run prints: quiet start-up, plain text when not on a terminal, a final summary table.

`quiet_startup()` runs before Beam or transformers are imported: it silences the warnings that
say nothing to a user (Beam's "apitools not found" on import) and, when stderr is not a
terminal, every tqdm progress bar (their carriage returns and cursor codes garble CI logs).
`summary_table(manifest)` is the table printed at the end of `refinery run`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

from pipeline.outputs.layout import REPORT, SECOND_LAYOUTS  # no Beam import

# Log messages emitted at import time by libraries, useless to a Refinery user.
NOISE_PREFIXES = (
    "apitools not found",
    "Using fallback coders",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOISE_PREFIXES)


def quiet_startup(stream: TextIO | None = None) -> None:
    """Install the noise filter; off a terminal, turn progress bars off (TQDM_DISABLE,
    HF_HUB_DISABLE_PROGRESS_BARS) unless the user set those variables."""
    root = logging.getLogger()
    if not any(isinstance(f, _DropNoise) for f in root.filters):
        root.addFilter(_DropNoise())
        for handler in root.handlers:
            handler.addFilter(_DropNoise())
    stream = stream or sys.stderr
    if not is_terminal(stream):
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


FILE_STAGE = "ingest.file"  # whole unreadable files: dead-letter entries that are not records


def _stage_order(names: set[str]) -> list[str]:
    from pipeline.stages import CURATION, SYNTHESIS

    known = ["ingest", *CURATION, *SYNTHESIS]
    return [n for n in known if n in names] + sorted(names - set(known))


def _cells(name: str, made: int | str, rejected: int, dead: int, secs: float | None
           ) -> tuple[str, ...]:
    return (name, f"{made:,}" if isinstance(made, int) else made, f"{rejected:,}", f"{dead:,}",
            "" if secs is None else f"{secs:.1f}")


def _stage_rows(manifest: dict[str, Any]) -> list[tuple[str, ...] | None]:
    """Input records (ingest and curation stages) with their total, which is the conservation
    line's out, rejected and dead letter; then synthesis stages with their own total. None
    marks a rule."""
    from pipeline.stages import CURATION, SYNTHESIS

    counts = manifest["counts"]
    seconds = manifest.get("timings", {}).get("stages", {})
    made: dict[str, int] = {}
    for dataset, origins in counts["outputs"].items():
        if dataset not in SECOND_LAYOUTS:
            for origin, n in origins.items():
                made[origin] = made.get(origin, 0) + n
    names = {*made, *counts["rejected"], *counts["deadletter"],
             *(name for name, s in seconds.items() if s >= 0.1)} - {FILE_STAGE}
    curation = {"ingest", *CURATION}
    order = _stage_order(names)
    blocks = [("input", [n for n in order if n in curation]),
              ("synthesis", [n for n in order if n in SYNTHESIS])]
    others = [n for n in order if n not in curation and n not in SYNTHESIS]  # emit: seconds
    rows: list[tuple[str, ...] | None] = []
    for title, stages in blocks:
        if not stages:
            continue
        sums = [0, 0, 0]
        for stage in stages:
            cells = (made.get(stage, 0) if stage not in curation or stage == "ingest" else "",
                     sum(counts["rejected"].get(stage, {}).values()),
                     counts["deadletter"].get(stage, 0))
            sums = [a + (b if isinstance(b, int) else 0) for a, b in zip(sums, cells, strict=True)]
            rows.append(_cells(stage, *cells, seconds.get(stage)))
        rows += [None, _cells(f"{title} total", *sums, None), None]
    for stage in others:
        rows.append(_cells(stage, made.get(stage, 0) or "",
                           sum(counts["rejected"].get(stage, {}).values()),
                           counts["deadletter"].get(stage, 0), seconds.get(stage)))
    return rows if others else rows[:-1]


def summary_table(manifest: dict[str, Any], out_dir: str) -> str:
    """A plain-text table: per stage rows produced, rejected, dead-lettered and seconds, with a
    total line per block (input records: the conservation law; synthesis); then the outputs
    per dataset and the conservation line. No escape codes, so pipes stay clean."""
    header = ("stage", "produced", "rejected", "dead letter", "seconds")
    body = _stage_rows(manifest)
    rows = [header, *(r for r in body if r is not None)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(cells: tuple[str, ...] | None) -> str:
        if cells is None:
            return "  ".join("-" * w for w in widths)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [line(header), line(None)]
    out += [line(r) for r in body]
    c = manifest["conservation"]
    out.append("")
    for dataset, origins in manifest["counts"]["outputs"].items():
        out.append(f"{dataset}: {sum(origins.values())} rows "
                   f"({', '.join(f'{k} {v}' for k, v in origins.items())})")
    files = manifest["counts"]["deadletter"].get(FILE_STAGE, 0)
    if files:
        out.append(f"unreadable files: {files} (dead letter, stage {FILE_STAGE})")
    out.append(f"records in {c['records_in']} = out {c['records_out']} + rejected "
               f"{c['rejected']} + dead letter {c['deadletter']}: "
               f"{'holds' if c['holds'] else 'VIOLATED'}")
    total = manifest.get("timings", {}).get("total_s")
    if total is not None:
        out.append(f"run time {total:.1f} s")
    out.append(f"outputs in {out_dir} (report: {out_dir}/{REPORT})")
    return "\n".join(out)


def synthesis_notes(manifest: dict[str, Any]) -> dict[str, str]:
    """Stage → one plain line for each synthesis stage that produced none of its main output
    (examples; pairs for a pairs-only stage like RISE): what it tried,
    why nothing passed (its top reject reasons) and how to point its roles at a served model."""
    from pipeline.stages import BY_NAME

    llm = manifest.get("config", {}).get("llm") or {}
    model = llm.get("model") or f"the {llm.get('backend', 'configured')} model"
    notes = {}
    from transforms.names import EXAMPLES

    for stage, s in manifest.get("synthesis", {}).items():
        spec = BY_NAME.get(stage)
        kind = "example" if spec is None or EXAMPLES in spec.outputs else "pair"
        made = s.get("out_sft", 0) if kind == "example" else sum(
            n for k, n in s.items() if k.startswith("out_"))
        if made:
            continue
        reasons = sorted(manifest["counts"]["rejected"].get(stage, {}).items(),
                         key=lambda kv: (-kv[1], kv[0]))
        tried = s.get("rejected", 0) + s.get("deadletter", 0)
        why = ", ".join(f"{r} {n}" for r, n in reasons[:3]) or "no candidate reached the checks"
        if s.get("deadletter"):
            why += f", dead letter {s['deadletter']}"
        roles = sorted(getattr(spec.config_class, "ROLES", {})) if spec else []
        per_role = (f" (or one per role: stages.{stage}.roles.{{{','.join(roles)}}})"
                    if roles else "")
        notes[stage] = (
            f"{stage}: no {kind} passed: {tried:,} candidates tried with {model}, rejected as "
            f"{why}. Small local models rarely pass these checks; point the roles at a served "
            f"model: --set llm.backend=openai --set llm.base_url=http://HOST:PORT/v1 "
            f"--set llm.model=NAME{per_role}; see docs/llm.md.")
    return notes
