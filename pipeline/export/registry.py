"""`refinery export OUT --format NAME [--dataset D]... [--to PATH]`: a finished run's datasets
rewritten in the file layout another project's trainer reads. Formats live in a registry
(`EXPORTERS`); adding one is adding a function and a line. The trainer formats (trl, sharegpt,
llamafactory, openai, axolotl) are in `pipeline.export.formats` and write a folder; `rise` one file.

- `rise`: the RISE authors' training file (kaishxu/RISE train.py reads it with
  `load_dataset("json", data_files=...)`): one JSON list; per problem its full pair (from
  `preference`), then its step pair when it has one (from `preference_steps`); fields `prompt` (the question string), `initial_reason_steps`
  ("" for the full pair; the solution up to and including "\\nStep k:" for a step pair),
  `chosen`, `rejected` (for a step pair: the step's text after the marker), `answer` (gold).
  Problems in input order (source file, row).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.export import formats as exports
from pipeline.export.formats import ExportError
from pipeline.outputs import layout as L
from pipeline.outputs.layout import RunLayout
from pipeline.report import data as rd
from schemas.step_pairs import conversational
from transforms.io.files import exists, join, write_text

__all__ = ["EXPORTERS", "ExportError", "export"]


@dataclass(frozen=True)
class Exporter:
    about: str
    default_name: str  # file or folder written under OUT/export/ when --to is not given
    # (run dir, destination, datasets or None for all) → summary
    write: Callable[[str, str, Sequence[str] | None], dict[str, Any]]


def _question(prompt: list[dict[str, Any]]) -> str:
    """The question inside a solve prompt (the last user turn, less the paper's suffix)."""
    from transforms.rise.paper_core import SOLVE_SUFFIX

    user = next(m["content"] for m in reversed(prompt) if m["role"] == "user")
    return user.removesuffix(SOLVE_SUFFIX)


def rise_rows(pairs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """RISE training rows of RISE preference pairs (PAIR_SCHEMA rows), ordered per problem:
    full pair, then its step pair(s)."""
    by_problem: dict[str, list[dict[str, Any]]] = {}
    for p in pairs:
        if (p["meta"].get("lineage") or {}).get("stage") == "rise":
            by_problem.setdefault(p["meta"]["parent_id"], []).append(p)

    def order(pid: str) -> tuple[Any, ...]:
        src = by_problem[pid][0].get("source") or {}
        return (src.get("file") or "", src.get("row") if src.get("row") is not None else -1, pid)

    out = []
    for pid in sorted(by_problem, key=order):
        group = sorted(by_problem[pid], key=lambda p: (p["meta"].get("pair_kind") == "step",
                                                       p["meta"].get("step_index") or 0, p["id"]))
        for p in group:
            meta = p["meta"]
            chosen, rejected = p["chosen"][-1]["content"], p["rejected"][-1]["content"]
            k = meta.get("prefix_chars") or 0 if meta.get("pair_kind") == "step" else 0
            out.append({"prompt": _question(p["prompt"]), "initial_reason_steps": chosen[:k],
                        "chosen": chosen[k:], "rejected": rejected[k:],
                        "answer": json.loads(meta["extra"])["gold"]})
    return out


def write_rise(out_dir: str, dest: str, datasets: Sequence[str] | None = None) -> dict[str, Any]:
    kinds = (L.PREFERENCE, L.PREFERENCE_STEPS)
    if datasets and not set(datasets) <= set(kinds):
        raise ExportError(f"the rise format reads the {' and '.join(kinds)} datasets only")
    run = RunLayout(out_dir)
    pairs = []
    for name in datasets or kinds:
        table = rd.read_dir(run.dataset(name))
        rows = table.to_pylist() if table is not None else []
        pairs += [conversational(r) for r in rows] if name == L.PREFERENCE_STEPS else rows
    rows = rise_rows(pairs)
    if not rows:
        raise ExportError(f"no rise pairs in {out_dir}/{L.PREFERENCE} or "
                          f"{out_dir}/{L.PREFERENCE_STEPS} (run a rise config first)")
    write_text(dest, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    steps = sum(bool(r["initial_reason_steps"]) for r in rows)
    return {"format": "rise", "path": dest, "rows": len(rows), "full_pairs": len(rows) - steps,
            "step_pairs": steps}


def _folder(fmt: str) -> Callable[[str, str, Sequence[str] | None], dict[str, Any]]:
    def write(out_dir: str, dest: str, datasets: Sequence[str] | None) -> dict[str, Any]:
        files = exports.FORMATS[fmt](out_dir, dest, datasets)
        return {"format": fmt, "path": dest, "files": files}
    return write


EXPORTERS: dict[str, Exporter] = {
    "rise": Exporter("RISE authors' train.py file: one JSON list of prompt, "
                     "initial_reason_steps, chosen, rejected, answer", "rise.json", write_rise),
    "trl": Exporter("the Parquet shards TRL's SFT/DPO trainers read, with a README", "trl",
                    _folder("trl")),
    "sharegpt": Exporter("JSONL of `conversations` (+ chosen/rejected for pairs)", "sharegpt",
                         _folder("sharegpt")),
    "llamafactory": Exporter("sharegpt files + dataset_info.json (preference as ranking)",
                             "llamafactory", _folder("llamafactory")),
    "openai": Exporter("OpenAI chat and preference fine-tuning JSONL", "openai",
                       _folder("openai")),
    "axolotl": Exporter("chat JSONL + a datasets: block per dataset for its YAML", "axolotl",
                        _folder("axolotl")),
}


def export(out_dir: str, fmt: str, dest: str | None = None,
           datasets: Sequence[str] | None = None) -> dict[str, Any]:
    """Write `fmt` from the run in `out_dir` (an output directory, read through its published
    run, or a run directory); default destination OUT/export/<file>; returns a summary."""
    if fmt not in EXPORTERS:
        raise ExportError(f"unknown format {fmt!r}; one of {sorted(EXPORTERS)}")
    from pipeline.outputs.publish import published_dir

    src = published_dir(out_dir)  # the published run when `out_dir` publishes by pointer
    if not exists(RunLayout(src).manifest):
        raise ExportError(f"{out_dir} is not the output directory of a finished run "
                          f"(no {L.MANIFEST})")
    ex = EXPORTERS[fmt]
    return ex.write(src, dest or join(out_dir, "export", ex.default_name), datasets)
