"""WriteDeadLetter: dead-letter dicts from every stage → one JSONL file (the run layout names it).

Each line: {stage, file, row, record_id, error, raw}; sorted so reruns give the same bytes.
Always writes the file (empty when nothing failed) and returns its info dict. Secrets are
redacted (transforms/redact.py)."""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam

from transforms.io.files import write_bytes
from transforms.io.shards import sha256
from transforms.redact import Redactor


def _sort_key(e: dict[str, Any]) -> tuple:
    return (e.get("stage") or "", e.get("file") or "", e.get("row") if e.get("row") is not None
            else -1, e.get("record_id") or "", e.get("error") or "", e.get("raw") or "")


def _write(entries: list[dict[str, Any]], path: str, redactor: Redactor) -> dict[str, Any]:
    entries = [redactor.entry(e) for e in entries]
    lines = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in sorted(entries, key=_sort_key)]
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    write_bytes(path, data)
    by_stage: dict[str, int] = {}
    for e in entries:
        by_stage[e["stage"]] = by_stage.get(e["stage"], 0) + 1
    return {"path": path, "rows": len(entries), "sha256": sha256(data), "stages": by_stage}


class WriteDeadLetter(beam.PTransform):
    """Secrets (values of the env vars named in `secret_envs`, secret-shaped tokens) are
    redacted from every entry's error and raw payload."""

    def __init__(self, path: str, secret_envs: tuple[str, ...] = (),
                 label: str | None = None):
        super().__init__(label)
        self._path = path
        self._redactor = Redactor(secret_envs)

    def expand(self, entries: beam.PCollection) -> beam.PCollection:
        path, redactor = self._path, self._redactor  # one step, the entries as a side input
        return (entries.pipeline | "Start" >> beam.Impulse()
                | "Write" >> beam.Map(lambda _, es: _write(es, path, redactor),
                                      es=beam.pvalue.AsList(entries)))
