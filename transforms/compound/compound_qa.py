"""The authors' Compound-QA data as this project reads it: records {ID, context, com_question,
com_reference}, one file per dimension and type (`Understanding_Cause_and_Effect.jsonl`), and
the judge-free question checks (compound structure + per-type rules) that bench and eval share.

Our own synthesized rows (meta.com_question / com_reference / context / category) read as the
same record, so one evaluation runs on both. Pure, no Beam, no model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import PurePosixPath  # local-only: a file name's stem, no disk access
from typing import Any

from transforms.compound.categories import CATEGORIES
from transforms.compound.rule_check import compound_structure
from transforms.compound.type_rules import check_type

DIMENSIONS = ("Understanding", "Reasoning", "Knowledge")
_FILE = re.compile(r"^(?P<dim>[A-Za-z]+)_(?P<type>[A-Za-z_\-]+)$")


def category_of_file(path: str) -> tuple[str | None, str | None]:
    """(dimension, category) a released file's name says, e.g. 'Understanding_Cause_and_Effect'
    → ('Understanding', 'Cause-and-Effect'); (None, None) when it says neither."""
    m = _FILE.match(PurePosixPath(path).stem)
    if not m:
        return None, None
    wanted = re.sub(r"[_\-]+", "-", m.group("type")).lower()
    category = next((c for c in CATEGORIES if c.lower() == wanted), None)
    dim = m.group("dim")
    return (dim if dim in DIMENSIONS or dim == "Knowleage" else None), category


def record(raw: dict[str, Any], dimension: str | None, category: str | None
           ) -> dict[str, Any] | None:
    """One evaluation record {id, context, com_question, com_reference, category, dimension}
    from a released row or one of our output rows (meta holds the fields); None without a
    compound question."""
    meta = raw.get("meta") or {}
    question = raw.get("com_question") or meta.get("com_question")
    if not question:
        return None
    return {"id": str(raw.get("ID") or raw.get("id") or ""),
            "context": raw.get("context") or meta.get("context") or "",
            "com_question": question,
            "com_reference": raw.get("com_reference") or meta.get("com_reference") or "",
            "category": raw.get("category") or meta.get("category") or category,
            "dimension": raw.get("dimension") or dimension or "synthesized"}


def read_records(path: str, text: str) -> Iterator[dict[str, Any]]:
    """The records of one JSONL file's text (blank and question-less lines skipped)."""
    dimension, category = category_of_file(path)
    for line in text.splitlines():
        if line.strip():
            rec = record(json.loads(line), dimension, category)
            if rec is not None:
                yield rec


def question_failures(category: str, question: str, context: str | None = None
                      ) -> list[dict[str, Any]]:
    """The judge-free checks of one compound question: structure, then the type's rules."""
    return compound_structure(question, context) + check_type(category, question, [])
