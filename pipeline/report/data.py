"""What the run report shows, gathered from a finished output directory (pure, no HTML).

Reads `manifest.json`, the shards (`sft/`, `curated/`, `preference/`, ...), `rejected/*.parquet`
and `deadletter/deadletter.jsonl` under one directory; writes nothing. Every list it returns is
bounded (examples per reason, clusters, values per histogram) so the report stays small for any
run size. Texts are truncated here and escaped where they are rendered.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.outputs.layout import RunLayout
from pipeline.outputs.storage import read_jsonl, read_parquet, read_parquet_batches
from transforms.io.files import join, list_files

MAX_TEXT = 400
EXAMPLES_PER_REASON = 3
MAX_CLUSTERS = 6
MAX_VALUES = 20_000
MAX_DEADLETTER = 10_000  # dead-letter entries the report reads
CURATION = ("ingest", "quality", "dedup", "decontam")


def clip(text: Any, limit: int = MAX_TEXT) -> str:
    text = "" if text is None else str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def prompt_text(messages: list[dict[str, Any]] | None) -> str:
    """The last user turn (the instruction), or the first message."""
    messages = messages or []
    users = [m["content"] for m in messages if m.get("role") == "user"]
    return users[-1] if users else (messages[0]["content"] if messages else "")


def response_text(messages: list[dict[str, Any]] | None) -> str:
    answers = [m["content"] for m in (messages or []) if m.get("role") == "assistant"]
    return answers[-1] if answers else ""


def read_dir(path: str) -> pa.Table | None:
    files = list_files(join(path, "*.parquet"))
    if not files:
        return None
    tables = [read_parquet(f) for f in files]
    return pa.concat_tables(tables, promote_options="permissive")


class Shards:
    """The Parquet shards of one dataset directory: the light columns (id, source, meta) of
    every row, read at once; whole rows only from the files that hold rows asked for, file by
    file until enough are found (a 200k-row output is not read back whole to show a sample)."""

    LIGHT = ["id", "source", "meta"]
    BATCH_ROWS = 8192  # rows decoded at a time where only the first rows asked for are read

    def __init__(self, path: str):
        self.files = sorted(list_files(join(path, "*.parquet")))
        self.light = [read_parquet(f, self.LIGHT) for f in self.files]

    def rows(self, mask: Callable[[pa.Table], pa.Array], limit: int | None = None
             ) -> list[dict[str, Any]]:
        """Whole rows where `mask(light table)` holds, in file order, at most `limit`."""
        out: list[dict[str, Any]] = []
        for f, light in zip(self.files, self.light, strict=True):
            if limit is not None and len(out) >= limit:
                break
            keep = pc.fill_null(mask(light), False)
            if light.num_rows and pc.any(keep).as_py():
                picked = read_parquet(f).filter(keep)
                out += picked.slice(0, None if limit is None else limit - len(out)).to_pylist()
        return out


    def values(self, mask: Callable[[pa.Table], pa.Array], field: str) -> list[float]:
        """The numbers in meta.<field> of every row where `mask(light table)` holds."""
        out: list[float] = []
        for light in self.light:
            meta = light.column("meta").combine_chunks()
            if meta.type.get_field_index(field) < 0:
                continue
            col = meta.field(field)
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                    or pa.types.is_boolean(col.type)):
                continue
            col = pc.filter(col, pc.fill_null(mask(light), False))
            arr = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            out += arr[np.isfinite(arr)].tolist()
        return out

    def answer_words(self, mask: Callable[[pa.Table], pa.Array], limit: int) -> list[int]:
        """Words of the last answer of the first `limit` rows where `mask` holds, decoding
        only the pages up to the last of them (and only their `messages` column)."""
        out: list[int] = []
        for f, light in zip(self.files, self.light, strict=True):
            if len(out) >= limit:
                break
            keep = pc.fill_null(mask(light), False).to_numpy(zero_copy_only=False)
            wanted = np.flatnonzero(keep)[:limit - len(out)]  # ascending row numbers
            start = 0
            batches = read_parquet_batches(f, ["messages"], self.BATCH_ROWS)
            for batch in batches if len(wanted) else ():
                here, wanted = np.split(wanted, [np.searchsorted(wanted, start + batch.num_rows)])
                if len(here):
                    picked = batch.column("messages").take(pa.array(here - start))
                    out += answer_word_counts(picked).tolist()
                if not len(wanted):
                    break
                start += batch.num_rows
        return out


# A run of characters Python's str.split() does not split on (RE2's \s is ASCII only).
WORD = r"[^\t\n\x{0b}\x{0c}\r\x{1c}-\x{1f}\x{85}\pZ]+"
# What str.split() splits on besides ASCII whitespace (every c with c.isspace(); a test checks).
OTHER_SPACES = ("\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_OTHER_SPACE = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in OTHER_SPACES) + "]"


def answer_word_counts(messages: pa.ListArray) -> np.ndarray:
    """Per row: the words (runs of non-space) of its last assistant message, 0 without one;
    the same numbers as len(response_text(row).split()), without making Python rows."""
    flat = messages.flatten()
    out = np.zeros(len(messages), dtype=np.int64)
    if not len(flat):
        return out
    parents = pc.list_parent_indices(messages).to_numpy()
    answer = pc.fill_null(pc.equal(pc.struct_field(flat, "role"), "assistant"), False)
    idx = np.nonzero(answer.to_numpy(zero_copy_only=False))[0]
    texts = pc.fill_null(pc.struct_field(flat, "content").take(pa.array(idx)), "")
    # ASCII whitespace is the only whitespace in most texts: their words are counted on the
    # bytes (a UTF-8 sequence holds no ASCII byte), much faster than counting regex matches
    plain = pc.invert(pc.match_substring_regex(texts, _OTHER_SPACE))
    plain = plain.to_numpy(zero_copy_only=False)
    words = np.zeros(len(idx), dtype=np.int64)
    if plain.any():
        words[plain] = _ascii_word_counts(pc.filter(texts, pa.array(plain)))
    if not plain.all():
        sub = pc.filter(texts, pa.array(~plain))
        words[~plain] = pc.count_substring_regex(sub, WORD).to_numpy(zero_copy_only=False)
    out[parents[idx]] = words  # later turns win: the last answer
    return out


def _ascii_word_counts(texts: pa.Array) -> np.ndarray:
    """Per string (no nulls): its runs of bytes that are not ASCII whitespace."""
    offsets = np.frombuffer(texts.buffers()[1], np.int32)[texts.offset:
                                                          texts.offset + len(texts) + 1]
    data = np.frombuffer(texts.buffers()[2] or b"", np.uint8)[offsets[0]:offsets[-1]]
    offsets = offsets - offsets[0]
    space = (data == 32) | ((data >= 9) & (data <= 13))  # \t \n \v \f \r and space
    first = ~space  # the first byte of a word: not a space, after a space or a string's start
    first[1:] &= space[:-1]
    starts = offsets[:-1][offsets[:-1] < offsets[1:]]
    first[starts] = ~space[starts]
    return np.diff(np.searchsorted(np.flatnonzero(first), offsets))


def _rejected_files(out_dir: str) -> list[tuple[str, str]]:
    return [(f.rsplit("/", 1)[-1].removesuffix(".parquet"), f)
            for f in list_files(join(RunLayout(out_dir).rejected, "*.parquet"))]


def read_rejected(out_dir: str, limit: int = MAX_VALUES, reason: str | None = None
                  ) -> dict[str, list[dict[str, Any]]]:
    """Stage → at most `limit` of its rejected rows as dicts (with `reason` only, if given)."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for stage, f in _rejected_files(out_dir):
        table = read_parquet(f)
        if reason is not None:
            table = table.filter(pc.equal(table.column("reject_reason"), reason))
        rows[stage] = table.slice(0, limit).to_pylist()
    return rows


def source_column(table: pa.Table) -> pa.Array:
    return pc.fill_null(pc.struct_field(table.column("source").combine_chunks(), "dataset"),
                        "unknown")


def stage_column(table: pa.Table) -> pa.Array:
    """meta.lineage.stage: null for input records, the producing stage for synthesized ones."""
    return pc.struct_field(table.column("meta").combine_chunks(), ["lineage", "stage"])


def value_counts(values: pa.Array) -> Counter[str]:
    return Counter({c["values"]: c["counts"] for c in pc.value_counts(values).to_pylist()})


def file_sources(tables: list[pa.Table]) -> dict[str, str]:
    """Input file → its source dataset name, from the rows' `source` columns."""
    out: dict[str, str] = {}
    for table in tables:
        src = table.column("source").combine_chunks()
        pairs = pa.table({"file": pc.struct_field(src, "file"),
                          "dataset": pc.struct_field(src, "dataset")})
        for row in pairs.group_by(["file", "dataset"]).aggregate([]).to_pylist():
            if row["file"] and row["dataset"]:
                out.setdefault(row["file"], row["dataset"])
    return out


def rejected_counts(out_dir: str) -> dict[str, dict[str, Any]]:
    """Stage → exact counts over all its rejected rows: by reason, by source dataset, and the
    input files' dataset names (reads only those columns)."""
    out = {}
    for stage, f in _rejected_files(out_dir):
        table = read_parquet(f, columns=["reject_reason", "source"])
        out[stage] = {"reasons": value_counts(pc.fill_null(table.column("reject_reason"),
                                                           "unknown")),
                      "sources": value_counts(source_column(table)),
                      "files": file_sources([table])}
    return out


def read_deadletter(out_dir: str, limit: int = MAX_DEADLETTER) -> list[dict[str, Any]]:
    return read_jsonl(RunLayout(out_dir).deadletter, limit)


def _detail(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("reject_detail")
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {"detail": raw}
    return value if isinstance(value, dict) else {"detail": value}


def row_summary(row: dict[str, Any]) -> dict[str, Any]:
    """id, source and the texts a person needs to judge one row (example, pair, step pair in
    RISE's layout, or ShareGPT ranking row)."""
    if "initial_reason_steps" in row:  # the step texts are strings, after a shared prefix
        return {"id": row.get("id"), "prompt": clip(prompt_text(row.get("prompt"))),
                "prefix": clip(row.get("initial_reason_steps")),
                "response": clip(row.get("chosen")), "rejected": clip(row.get("rejected")),
                "source": (row.get("source") or {}).get("dataset")}
    if "conversations" in row:
        human = [t["value"] for t in row.get("conversations") or [] if t.get("from") == "human"]
        return {"id": row.get("id"), "prompt": clip(human[-1] if human else ""),
                "response": clip((row.get("chosen") or {}).get("value")),
                "rejected": clip((row.get("rejected") or {}).get("value")), "source": None}
    if "chosen" in row:
        return {"id": row.get("id"), "prompt": clip(prompt_text(row.get("prompt"))),
                "response": clip(response_text(row.get("chosen"))),
                "rejected": clip(response_text(row.get("rejected"))),
                "source": (row.get("source") or {}).get("dataset")}
    return {"id": row.get("id"), "prompt": clip(prompt_text(row.get("messages"))),
            "response": clip(response_text(row.get("messages"))),
            "source": (row.get("source") or {}).get("dataset")}


def reasons(rejected: dict[str, list[dict[str, Any]]], counts: dict[str, dict[str, Any]]
            ) -> dict[str, list[dict[str, Any]]]:
    """Stage → [{reason, count, examples: [row summary + detail]}], most frequent first; counts
    over all rejected rows, examples from the rows read."""
    out: dict[str, list[dict[str, Any]]] = {}
    for stage, stage_counts in counts.items():
        by_reason: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rejected.get(stage, []):
            by_reason[row.get("reject_reason") or "unknown"].append(row)
        out[stage] = [
            {"reason": reason, "count": n,
             "examples": [{**row_summary(r), "detail": clip(json.dumps(_detail(r), default=str))}
                          for r in by_reason[reason][:EXAMPLES_PER_REASON]]}
            for reason, n in sorted(stage_counts["reasons"].items(), key=lambda kv: (-kv[1], kv[0]))]
    return out


def funnel(survivors: Counter[str], counts: dict[str, dict[str, Any]],
           files: dict[str, str], dead: list[dict[str, Any]]) -> dict[str, Any]:
    """Per input source: rows entering each curation step and rows it removed (rejected or
    dead-lettered), from ingest to the curated output. `survivors`: input records in the
    outputs by source; `counts`: rejected_counts; `files`: input file → source name."""
    removed: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in dead:
        if entry.get("stage") in CURATION:
            removed[entry["stage"]][files.get(entry.get("file") or "", "unknown")] += 1
    for stage, stage_counts in counts.items():
        if stage in CURATION:
            removed[stage].update(stage_counts["sources"])
    steps = [s for s in CURATION if s == "ingest" or s in removed]
    sources = sorted(set(survivors) | {s for c in removed.values() for s in c})
    rows = []
    for src in sources:
        entering = survivors[src] + sum(removed[s][src] for s in steps)
        for step in steps:
            rows.append({"source": src, "step": step, "entering": entering,
                         "removed": removed[step][src]})
            entering -= removed[step][src]
        rows.append({"source": src, "step": "output", "entering": entering, "removed": 0})
    return {"steps": [*steps, "output"], "rows": rows}


def _numeric(values: list[Any]) -> list[float]:
    out = []
    for v in values:
        if isinstance(v, bool | int | float):
            out.append(float(v))
    return out[:MAX_VALUES]


def signals(manifest: dict[str, Any], kept_values: Callable[[str], list[float]],
            rejected: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per numeric filter signal and the composite score: the values of every kept row
    (`kept_values(signal)`) vs quality-rejected ones, and the thresholds of the filters on
    that signal."""
    qcfg = (manifest.get("config", {}).get("stages") or {}).get("quality") or {}
    if not qcfg.get("enabled"):
        return []
    dropped = rejected.get("quality", [])
    rules: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rule in qcfg.get("filters") or []:
        if isinstance(rule.get("value"), int | float) and not isinstance(rule["value"], bool):
            rules[rule["signal"]].append({"op": rule["op"], "value": rule["value"],
                                          "reason": rule.get("reason")})
    out = []
    for signal in ["quality_score", *sorted(rules)]:
        kept = kept_values(signal)
        lost = _numeric([(r.get("meta") or {}).get(signal) for r in dropped])
        if (kept or lost) and (min(kept + lost) != max(kept + lost) or lost):
            out.append({"signal": signal, "kept": kept, "rejected": lost,  # constant: nothing
                        "thresholds": rules.get(signal, [])})
    return out


def lengths(kept_words: list[int], rejected: dict[str, list[dict[str, Any]]]
            ) -> dict[str, list[int]]:
    """Response lengths in words of the curated input before curation and after it
    (`kept_words`: a sample of the kept rows)."""
    after = list(kept_words)
    before = list(after)
    for stage in ("quality", "dedup", "decontam"):
        before += [len(response_text(r.get("messages")).split())
                   for r in rejected.get(stage, []) if "messages" in r]
    return {"before": before[:MAX_VALUES], "after": after[:MAX_VALUES]}
