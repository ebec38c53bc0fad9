"""Error budgets: decide from a finished run's manifest whether it may be published.

Pure functions over the manifest and the dead-letter entries. Checks, in order: files that
could not be read as a whole (`ingest.on_unreadable_file`), each file's dead-letter rate
(`ingest.max_error_rate`), ingest and each stage's rate (`stages.<name>.max_error_rate`), the
whole run's rate (`run.max_error_rate`), an empty result from non-empty input
(`run.allow_empty`) and the conservation law. Each problem names the stage and its top errors.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pipeline.config import RunConfig
from pipeline.stages import CURATION
from transforms.io.read_sources import FILE_STAGE

TOP_ERRORS = 3
ERROR_CHARS = 160


@dataclass(frozen=True)
class BudgetProblem:
    stage: str
    message: str


def stage_of(entry_stage: str) -> str:
    """'quality.judge' → 'quality'; 'ingest.file' stays itself (a file, not a record)."""
    return entry_stage if entry_stage == FILE_STAGE else entry_stage.split(".", 1)[0]


def top_errors(entries: list[dict[str, Any]], stage: str, n: int = TOP_ERRORS) -> str:
    """'12× error A; 3× error B' for the most common errors of `stage`."""
    counts = Counter((e.get("error") or "")[:ERROR_CHARS] for e in entries
                     if stage_of(e.get("stage") or "") == stage)
    return "; ".join(f"{c}× {err}" for err, c in counts.most_common(n))


def _rate(part: int, whole: int) -> float:
    """Share of dead-lettered rows, at most 1 (a row may fail in several requests)."""
    return min(part / whole, 1.0) if whole else 0.0


def _over(stage: str, bad: int, whole: int, limit: float, setting: str, entries: list
          ) -> BudgetProblem | None:
    rate = _rate(bad, whole)
    if rate <= limit:
        return None
    share = (f"{bad} of {whole} rows ({rate:.1%}) went to the dead letter" if bad <= whole
             else f"{bad} dead-letter entries for {whole} rows (several requests per row)")
    return BudgetProblem(stage, f"stage {stage}: {share}, above {setting}={limit}; top errors: "
                                f"{top_errors(entries, stage)}")


def _file_problems(cfg: RunConfig, manifest: dict[str, Any], entries: list
                   ) -> list[BudgetProblem]:
    """Files unreadable as a whole, or whose every row failed (e.g. binary data)."""
    if cfg.ingest.on_unreadable_file == "skip":
        return []
    out = []
    hint = " (set ingest.on_unreadable_file: skip to go on without it)"
    for item in manifest["inputs"]:
        if item.get("file_errors"):
            why = next((e["error"] for e in entries
                        if e.get("stage") == FILE_STAGE and e.get("file") == item["path"]), "")
            out.append(BudgetProblem("ingest", f"{item['path']}: {why}{hint}"))
        elif item["rows_read"] and item["deadletter"] == item["rows_read"]:
            errors = top_errors([e for e in entries if e.get("file") == item["path"]], "ingest")
            out.append(BudgetProblem("ingest", (
                f"{item['path']}: unreadable file: none of its {item['rows_read']} rows could "
                f"be read; top errors: {errors}{hint}")))
    return out


def _stage_counts(manifest: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """stage → (dead-lettered rows, rows it handled)."""
    dead = Counter()
    for s, n in manifest["counts"]["deadletter"].items():
        if s != FILE_STAGE:
            dead[stage_of(s)] += n
    rejected = {s: sum(r.values()) for s, r in manifest["counts"]["rejected"].items()}
    counts = {}
    entering = manifest["conservation"]["records_in"]
    for s in ("ingest", *CURATION):
        counts[s] = (dead.get(s, 0), entering)
        entering -= dead.get(s, 0) if s == "ingest" else dead.get(s, 0) + rejected.get(s, 0)
    for s, syn in manifest["synthesis"].items():
        produced = sum(n for k, n in syn.items() if k.startswith("out_")) + syn["rejected"]
        counts[s] = (dead.get(s, 0), produced + dead.get(s, 0))
    return counts


def budget_problems(cfg: RunConfig, manifest: dict[str, Any], entries: list[dict[str, Any]]
                    ) -> list[BudgetProblem]:
    """Every reason not to publish this run (empty: publish)."""
    problems = [BudgetProblem("ingest", (
        f"{i['path']} changed while the run read it ({i['changed_while_read']['planned_bytes']}"
        f" bytes when planned, {i['changed_while_read']['now_bytes']} now): its rows may mix "
        "two versions of the file; rerun once it is complete"))
        for i in manifest["inputs"] if i.get("changed_while_read")]
    problems += _file_problems(cfg, manifest, entries)
    counts = _stage_counts(manifest)
    for stage, (bad, whole) in counts.items():
        stage_cfg = getattr(cfg.stages, stage, None)
        limit, setting = ((cfg.ingest.max_error_rate, "ingest.max_error_rate") if stage == "ingest"
                          else (stage_cfg.max_error_rate, f"stages.{stage}.max_error_rate")
                          if stage_cfg is not None else (1.0, "stage budget"))
        problem = _over(stage, bad, whole, limit, setting, entries)
        if problem:
            problems.append(problem)
    total_bad = sum(b for b, _ in counts.values())
    total = manifest["conservation"]["records_in"] + sum(
        w for s, (_, w) in counts.items() if s in manifest["synthesis"])
    if cfg.run.max_error_rate is not None and _rate(total_bad, total) > cfg.run.max_error_rate:
        problems.append(BudgetProblem("run", (
            f"the run: {total_bad} dead-letter entries for {total} rows "
            f"({_rate(total_bad, total):.1%}), above run.max_error_rate={cfg.run.max_error_rate}")))
    c = manifest["conservation"]
    outputs = sum(n for d in manifest["counts"]["outputs"].values() for n in d.values())
    if c["records_in"] and not outputs and not cfg.run.allow_empty:
        problems.append(BudgetProblem("emit", (
            f"no output rows from {c['records_in']} input records (rejected: {c['rejected']}, "
            f"dead letter: {c['deadletter']}); set run.allow_empty: true if that is intended")))
    if not c["holds"]:
        problems.append(BudgetProblem("run", f"conservation law violated: {json.dumps(c)}"))
    return problems
