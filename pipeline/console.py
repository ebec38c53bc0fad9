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


def _stage_order(names: set[str]) -> list[str]:
    from pipeline.stages import CURATION, SYNTHESIS

    known = ["ingest", *CURATION, *SYNTHESIS]
    return [n for n in known if n in names] + sorted(names - set(known))


def _stage_rows(manifest: dict[str, Any]) -> list[tuple[str, ...]]:
    counts = manifest["counts"]
    seconds = manifest.get("timings", {}).get("stages", {})
    made: dict[str, int] = {}
    for origins in counts["outputs"].values():
        for origin, n in origins.items():
            made[origin] = made.get(origin, 0) + n
    names = {*made, *counts["rejected"], *counts["deadletter"],
             *(name for name, s in seconds.items() if s >= 0.1)}
    rows = []
    for stage in _stage_order(names):
        rejected = sum(counts["rejected"].get(stage, {}).values())
        secs = seconds.get(stage)
        rows.append((stage, str(made[stage]) if made.get(stage) else "", str(rejected),
                     str(counts["deadletter"].get(stage, 0)),
                     "" if secs is None else f"{secs:.1f}"))
    return rows


def summary_table(manifest: dict[str, Any], out_dir: str) -> str:
    """A plain-text table: per stage rows produced, rejected, dead-lettered and seconds; then
    the outputs per dataset and the conservation line. No escape codes, so pipes stay clean."""
    header = ("stage", "produced", "rejected", "dead letter", "seconds")
    rows = [header, *_stage_rows(manifest)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows[1:]]
    c = manifest["conservation"]
    out.append("")
    for dataset, origins in manifest["counts"]["outputs"].items():
        out.append(f"{dataset}: {sum(origins.values())} rows "
                   f"({', '.join(f'{k} {v}' for k, v in origins.items())})")
    out.append(f"records in {c['records_in']} = out {c['records_out']} + rejected "
               f"{c['rejected']} + dead letter {c['deadletter']}: "
               f"{'holds' if c['holds'] else 'VIOLATED'}")
    total = manifest.get("timings", {}).get("total_s")
    if total is not None:
        out.append(f"run time {total:.1f} s")
    out.append(f"outputs in {out_dir} (report: {out_dir}/report.html)")
    return "\n".join(out)
