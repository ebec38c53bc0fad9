"""Human review of CQ-Syn items (the paper's last step): export, then apply the decisions.

`export_review(out_dir, path)` reads the compound rows of a finished run (`<out>/sft/*.parquet`,
lineage stage `compound`) and writes one JSON line per item, sorted by id: id, category,
context, partner_context, question, sub_questions, sub_answers, reference, checks (the rule
result and the judge's verdicts with their reasoning), the user turn as trained on, and
`decision: null` plus `note: ""` for the reviewer to fill in ("accept" or "reject"). Ids are
content hashes, so rows with one id are the same item: it is listed once. When no item passed
(a small local model), the file lists the candidates the pipeline rejected instead, with
`pipeline_rejected` (the reason) and `reject_detail`, so there is something to look at;
decisions on them are ignored.

`apply_review(out_dir, decisions, dest=None)` reads the edited file (or any JSONL of
{id, decision[, note]}) and writes only the accepted rows, unchanged, to
`<out>/reviewed/compound/train-00000-of-00001.parquet` (or `dest`), with `review.json` beside
it: counts of accepted, rejected and undecided items. An unknown id, an unknown decision or two
different decisions for one id are errors (ReviewError), so a stale file never applies silently.
Paths go through Beam's FileSystems (local, gs://, s3://).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from transforms.compound.core import STAGE

DECISIONS = ("accept", "reject")


class ReviewError(ValueError):
    """The decisions file does not fit the run."""


def read_items(out_dir: str) -> pa.Table:
    """The compound rows of a run, sorted by id (empty table when there are none)."""
    pattern = FileSystems.join(out_dir.rstrip("/"), "sft", "*.parquet")
    paths = sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)
    if not paths:
        raise ReviewError(f"no Parquet shards under {out_dir}/sft: not a finished run?")
    tables = []
    for path in paths:
        with FileSystems.open(path) as f:
            table = pq.read_table(io.BytesIO(f.read()))
        stage = pc.struct_field(pc.struct_field(table.column("meta"), "lineage"), "stage")
        tables.append(table.filter(pc.equal(stage, STAGE)))
    table = pa.concat_tables(tables, promote_options="default")
    return table.sort_by("id")


def _review_line(row: dict[str, Any]) -> dict[str, Any]:
    meta = row["meta"]
    return {"id": row["id"], "category": meta.get("category"), "context": meta.get("context"),
            "partner_context": meta.get("partner_context"),
            "question": meta.get("com_question"), "sub_questions": meta.get("sub_questions"),
            "sub_answers": meta.get("sub_answers"), "reference": meta.get("com_reference"),
            "checks": json.loads(meta.get("checks") or "{}"),
            "user_turn": row["messages"][0]["content"], "decision": None, "note": ""}


def _write(path: str, data: bytes) -> None:
    with FileSystems.create(path) as f:
        f.write(data)


def read_rejected(out_dir: str) -> list[dict[str, Any]]:
    """The candidates the pipeline rejected (`rejected/compound.parquet`), sorted by id."""
    path = FileSystems.join(out_dir.rstrip("/"), "rejected", f"{STAGE}.parquet")
    if not FileSystems.exists(path):
        return []
    with FileSystems.open(path) as f:
        table = pq.read_table(io.BytesIO(f.read()))
    return table.sort_by("id").to_pylist()


def _rejected_line(row: dict[str, Any]) -> dict[str, Any]:
    line = _review_line(row)
    line.pop("decision")
    try:
        detail = json.loads(row.get("reject_detail") or "{}")
    except json.JSONDecodeError:
        detail = row.get("reject_detail")
    return {**line, "pipeline_rejected": row.get("reject_reason"), "reject_detail": detail}


def export_review(out_dir: str, path: str) -> tuple[int, int]:
    """Write the review file: the kept items, and when there are none, the candidates the
    pipeline rejected, for reference (`pipeline_rejected`: the reason; `--apply` skips
    them). Returns (kept items, rejected candidates listed)."""
    rows = list({r["id"]: r for r in read_items(out_dir).to_pylist()}.values())
    lines = [json.dumps(_review_line(r), ensure_ascii=False) for r in rows]
    rejected = [] if rows else read_rejected(out_dir)
    lines += [json.dumps(_rejected_line(r), ensure_ascii=False, default=str) for r in rejected]
    _write(path, ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"))
    return len(rows), len(rejected)


def read_decisions(path: str) -> dict[str, str]:
    """id → decision from a JSONL file; lines with `decision: null` are undecided."""
    with FileSystems.open(path) as f:
        text = f.read().decode("utf-8")
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReviewError(f"{path}:{n}: not JSON ({e.msg})") from e
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ReviewError(f"{path}:{n}: each line needs an 'id'")
        if entry.get("pipeline_rejected"):
            continue  # listed for reference: the pipeline already rejected it
        decision = entry.get("decision")
        if decision is None:
            continue
        if decision not in DECISIONS:
            raise ReviewError(f"{path}:{n}: decision {decision!r} is not one of {DECISIONS}")
        if out.get(entry["id"], decision) != decision:
            raise ReviewError(f"{path}:{n}: id {entry['id']} has two different decisions")
        out[entry["id"]] = decision
    return out


def apply_review(out_dir: str, decisions_path: str, dest: str | None = None) -> dict[str, Any]:
    """Keep only the accepted items; returns the summary written to review.json."""
    table = read_items(out_dir)
    decisions = read_decisions(decisions_path)
    ids = table.column("id").to_pylist()
    unknown = sorted(set(decisions) - set(ids))
    if unknown:
        raise ReviewError(f"{len(unknown)} decided id(s) are not compound items of this run, "
                          f"e.g. {unknown[:3]}")
    keep = [decisions.get(i) == "accept" for i in ids]
    dest = dest or FileSystems.join(out_dir.rstrip("/"), "reviewed", STAGE)
    buf = io.BytesIO()
    pq.write_table(table.filter(pa.array(keep, pa.bool_())), buf, compression="zstd")
    _write(FileSystems.join(dest, "train-00000-of-00001.parquet"), buf.getvalue())
    summary = {"stage": STAGE, "items": len(ids), "accepted": sum(keep),
               "rejected": sum(decisions.get(i) == "reject" for i in ids),
               "undecided": sum(i not in decisions for i in ids), "decisions": decisions_path}
    _write(FileSystems.join(dest, "review.json"),
           json.dumps(summary, indent=2, sort_keys=True).encode("utf-8"))
    return summary


def run_review(out_dir: str, export: str | None, apply: str | None, dest: str | None) -> int:
    """The `refinery review` command: exit code 0, or 2 with the problem on stderr."""
    import sys

    try:
        if export:
            n, rejected = export_review(out_dir, export)
            if n or not rejected:
                print(f"{n} compound items written to {export}; set each 'decision' to "
                      f"'accept' or 'reject', then run with --apply")
            else:
                print(f"no compound item passed the pipeline's checks; {export} lists the "
                      f"{rejected} candidates it rejected, each with its reason "
                      "(`pipeline_rejected`, `reject_detail`), to show what the model wrote "
                      "(--apply skips them). A served model passes more: see docs/llm.md")
        else:
            assert apply is not None
            print(json.dumps(apply_review(out_dir, apply, dest), sort_keys=True))
    except ReviewError as e:
        print(f"refinery review: {e}", file=sys.stderr)
        return 2
    return 0
