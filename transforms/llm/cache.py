"""The response cache: answers keyed by content, persisted through Beam's FileSystems.

Key: sha256 of (backend model id, template version, rendered messages, sampling parameters
including the seed, JSON Schema, logprobs). Answers are written as they are produced, one small
JSONL file per model batch under `cache_dir` (local path, gs://, s3://; the file name is a hash
of the batch's keys, so a retried bundle rewrites the same file). The next run reads every file
back as (key, entry) pairs and joins them with its requests. Malformed lines (a file cut short
by a crash) are skipped. Only schema-valid answers are written.

Entries hold what the model said byte for byte: redaction (transforms/redact.py) applies to
what Refinery writes about errors and configuration, never to model outputs. An answer that
contains the value of a secret variable (a model echoing its API key) is not cached at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

from transforms.llm.api import ChatRequest, ChatResult
from transforms.redact import holds_secret

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def cache_key(request: ChatRequest, model_id: str) -> str:
    """sha256 hex of everything that determines the answer (the prefill only when set, so
    keys of requests without one are unchanged)."""
    fields: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "model": model_id,
        "template_version": request.template_version,
        "messages": [[r, c] for r, c in request.messages],
        "sampling": request.sampling.as_dict(),
        "schema": request.json_schema,
        "logprobs": request.logprobs,
    }
    if request.prefill:
        fields["prefill"] = request.prefill
    blob = json.dumps(
        fields,
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def resolve_cache_dir(cache_dir: str | None, work_dir: str | None = None) -> str:
    if cache_dir:
        return cache_dir if "://" in cache_dir else os.path.expanduser(cache_dir)  # local-only: ~
    if work_dir:
        return f"{work_dir.rstrip('/')}/llm_cache"
    return os.path.expanduser("~/.cache/refinery/llm_cache")  # local-only: the default, ~


def entry_from_result(key: str, result: ChatResult) -> dict[str, Any]:
    return {"key": key, "texts": list(result.texts),
            "parsed": None if result.parsed is None else list(result.parsed),
            "model": result.model, "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "logprobs": None if result.logprobs is None else list(result.logprobs),
            "finish_reasons": None if result.finish_reasons is None
            else list(result.finish_reasons)}


def result_from_entry(entry: dict[str, Any], request: ChatRequest) -> ChatResult:
    """The cached answer, re-labelled with this request's key and payload."""
    return ChatResult(
        key=request.key, texts=tuple(entry["texts"]),
        parsed=None if entry.get("parsed") is None else tuple(entry["parsed"]),
        model=entry.get("model", ""), prompt_tokens=int(entry.get("prompt_tokens", 0)),
        completion_tokens=int(entry.get("completion_tokens", 0)),
        logprobs=None if entry.get("logprobs") is None else tuple(entry["logprobs"]),
        cached=True, payload=request.payload, template_version=request.template_version,
        finish_reasons=None if entry.get("finish_reasons") is None
        else tuple(entry["finish_reasons"]))


def _join(base: str, name: str) -> str:
    from transforms.io.files import join

    return join(base, name)


def write_entries(cache_dir: str, entries: Sequence[dict[str, Any]], prefix: str = "",
                  secret_envs: Sequence[str] = ()) -> str | None:
    """Write one JSONL file of cache entries, unaltered; entries holding the value of a
    secret variable are left out. Returns the path (None when nothing to write)."""
    lines = [json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries]
    kept = [(e, line) for e, line in zip(entries, lines, strict=True)
            if not holds_secret(line, secret_envs)]
    if len(kept) < len(entries):
        log.warning("%d answer(s) hold a secret variable's value: not cached",
                    len(entries) - len(kept))
    entries = [e for e, _ in kept]
    if not entries:
        return None
    from transforms.io.files import write_bytes

    keys = sorted(e["key"] for e in entries)
    name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    path = _join(cache_dir, f"{prefix}{name}.jsonl")
    body = "".join(line for _, line in kept)
    write_bytes(path, body.encode("utf-8"))  # makes the directory first where there are any
    return path


def list_cache_files(cache_dir: str) -> list[str]:
    """Every cache file under `cache_dir` (none when it does not exist)."""
    from apache_beam.io.filesystems import FileSystems

    try:
        result = FileSystems.match([_join(cache_dir, "*.jsonl")])[0]
    except Exception:  # no such directory / bucket prefix yet
        return []
    return sorted(m.path for m in result.metadata_list)


def read_entries(path: str) -> Iterable[tuple[str, dict[str, Any]]]:
    """(key, entry) for every well-formed line of one cache file."""
    from transforms.io.files import read_bytes

    try:
        data = read_bytes(path)
    except Exception as e:
        log.warning("cannot read cache file %s: %s", path, e)
        return
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("key"), str) and \
                isinstance(entry.get("texts"), list):
            yield entry["key"], entry
