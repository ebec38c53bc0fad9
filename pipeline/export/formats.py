"""Exports of a finished run for the trainers people use: pure functions, one per format, each
`(out_dir, to, datasets=None) -> list of files written`, writing through the storage layer
(local, gs://, s3://). Rows are read shard by shard from the run's manifest.

trl          the Parquet shards as they are (conversational `messages`; `prompt`/`chosen`/
             `rejected`), and a README line per dataset saying which trainer reads it
sharegpt     JSONL, `conversations` of {from, value} (human/gpt/system); pairs add `chosen` and
             `rejected` turns
llamafactory the sharegpt files (or alpaca for single-turn sft) plus `dataset_info.json`
             registering each dataset: sft as sharegpt/alpaca, preference as a ranking dataset
openai       chat fine-tuning JSONL ({"messages": [...]}) and preference fine-tuning JSONL
             ({"input": {"messages"}, "preferred_output", "non_preferred_output"})
axolotl      chat JSONL plus `axolotl-<dataset>.yaml`: the `datasets:` block to paste
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pipeline.outputs import layout as L
from pipeline.outputs.publish import published_dir
from pipeline.outputs.storage import read_parquet
from pipeline.release.check import parquet_layout, read_manifest
from transforms.io.files import copy_file, join, write_text

# the datasets in other layouts (RISE step pairs, ShareGPT copies) have their own exports
OTHER_LAYOUTS = tuple(d.name for d in L.DATASETS if d.kind == "step_pairs" or d.copy_of)
FROM = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}
OPENAI_ROLES = ("system", "user", "assistant")  # a tool message needs tool_call ids we lack
Row = dict[str, Any]


class ExportError(Exception):
    """A run that cannot be exported as asked (no such dataset, no such rows)."""


def _shards(out: str, datasets: Sequence[str] | None) -> dict[str, list[str]]:
    """dataset → its Parquet shard paths (datasets with rows; `datasets` filters)."""
    layout = parquet_layout(read_manifest(out))
    wanted = list(datasets) if datasets else sorted(d for d in layout if d not in OTHER_LAYOUTS)
    unknown = [d for d in wanted if d not in layout]
    if unknown:
        raise ExportError(f"no dataset {unknown} in {out}; datasets: {sorted(layout)}")
    other = [d for d in wanted if d in OTHER_LAYOUTS]
    if other:
        raise ExportError(f"{other}: not in conversational form (RISE step pairs: "
                          "--format rise; ShareGPT copies: use them as they are)")
    return {d: sorted(join(out, s["path"]) for shards in layout[d].values() for s in shards
                      if s["rows"]) for d in wanted}


def _rows(paths: list[str]) -> Iterator[Row]:
    for path in paths:
        table = read_parquet(path)
        for batch in table.to_batches(max_chunksize=10_000):
            yield from batch.to_pylist()


def _turns(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"from": FROM.get(m["role"], m["role"]), "value": m["content"]} for m in messages]


def _chat(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _reply(turns: list[dict[str, str]]) -> dict[str, str]:
    """The last assistant message of a chosen/rejected list."""
    return turns[-1]


def _pairs(dataset: str) -> bool:
    """Whether `dataset` holds preference pairs (prompt/chosen/rejected)."""
    return L.BY_NAME[dataset].kind != "examples" if dataset in L.BY_NAME else False


def to_sharegpt(row: Row) -> Row:
    if "chosen" in row:
        return {"conversations": _turns(row["prompt"]),
                "chosen": _turns([_reply(row["chosen"])])[0],
                "rejected": _turns([_reply(row["rejected"])])[0]}
    return {"conversations": _turns(row["messages"])}


def to_openai(row: Row) -> Row | None:
    """None for a row with tool messages: OpenAI's format ties them to assistant tool_calls
    with ids, which the rows do not carry (skipped and counted in README.md)."""
    turns = [m for key in ("messages", "prompt", "chosen", "rejected") for m in row.get(key) or []]
    if any(m["role"] not in OPENAI_ROLES for m in turns):
        return None
    if "chosen" in row:
        return {"input": {"messages": _chat(row["prompt"])},
                "preferred_output": _chat([_reply(row["chosen"])]),
                "non_preferred_output": _chat([_reply(row["rejected"])])}
    return {"messages": _chat(row["messages"])}


def to_alpaca(row: Row) -> Row | None:
    """An sft row as alpaca: system, history of earlier turns, instruction, output; None for
    a row alpaca cannot hold (tool turns)."""
    msgs = row["messages"]
    if any(m["role"] not in OPENAI_ROLES for m in msgs):
        return None
    system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
    turns = [m["content"] for m in msgs if m["role"] != "system"]
    pairs = list(zip(turns[::2], turns[1::2], strict=False))
    *history, (instruction, output) = pairs
    return {"instruction": instruction, "input": "", "output": output, "system": system,
            "history": [list(p) for p in history]}


def _write_jsonl(path: str, rows: Iterator[Row], convert: Callable[[Row], Row | None]
                 ) -> tuple[int, int]:
    """Write the converted rows; (written, skipped: rows the format cannot hold)."""
    converted = [convert(r) for r in rows]
    lines = [json.dumps(c, ensure_ascii=False) for c in converted if c is not None]
    write_text(path, "".join(line + "\n" for line in lines))
    return len(lines), len(converted) - len(lines)


def _jsonl_per_dataset(out: str, to: str, datasets: Sequence[str] | None,
                       convert: Callable[[Row], Row | None]
                       ) -> dict[str, tuple[str, int, int]]:
    out = published_dir(out)
    written = {}
    for dataset, paths in _shards(out, datasets).items():
        path = join(to, f"{dataset}.jsonl")
        written[dataset] = (path, *_write_jsonl(path, _rows(paths), convert))
    return written


def export_trl(out_dir: str, to: str, datasets: Sequence[str] | None = None) -> list[str]:
    """The shards as they are (TRL reads conversational datasets) and README.md."""
    out = published_dir(out_dir)
    files, lines = [], ["# TRL datasets", ""]
    for dataset, paths in _shards(out, datasets).items():
        for path in paths:
            dst = join(to, dataset, path.rsplit("/", 1)[-1])
            copy_file(path, dst)
            files.append(dst)
        trainer = ("DPOTrainer (conversational prompt/chosen/rejected)"
                   if _pairs(dataset) else "SFTTrainer (conversational messages)")
        lines.append(f"- `{dataset}/`: {trainer}; `load_dataset(\"parquet\", data_dir="
                     f"\"{dataset}\", split=\"train\")`")
    write_text(join(to, "README.md"), "\n".join(lines) + "\n")
    return [*files, join(to, "README.md")]


def export_sharegpt(out_dir: str, to: str, datasets: Sequence[str] | None = None) -> list[str]:
    return [p for p, _, _ in _jsonl_per_dataset(out_dir, to, datasets, to_sharegpt).values()]


def export_openai(out_dir: str, to: str, datasets: Sequence[str] | None = None) -> list[str]:
    """One JSONL per dataset, and README.md with the rows written and skipped (tool turns)."""
    written = _jsonl_per_dataset(out_dir, to, datasets, to_openai)
    lines = ["# OpenAI fine-tuning files", ""] + [
        f"- `{p.rsplit('/', 1)[-1]}`: {n} rows ({'preference' if _pairs(d) else 'chat'} "
        f"fine-tuning); {k} rows with tool messages left out" for d, (p, n, k) in written.items()]
    write_text(join(to, "README.md"), "\n".join(lines) + "\n")
    return [*(p for p, _, _ in written.values()), join(to, "README.md")]


def export_llamafactory(out_dir: str, to: str, datasets: Sequence[str] | None = None,
                        sft_format: str = "sharegpt") -> list[str]:
    """Data files plus dataset_info.json; sft as `sharegpt` (default) or `alpaca`."""
    if sft_format not in ("sharegpt", "alpaca"):
        raise ExportError(f"sft_format {sft_format!r}: sharegpt or alpaca")
    out = published_dir(out_dir)
    info: dict[str, Any] = {}
    files = []
    for dataset, paths in _shards(out, datasets).items():
        path = join(to, f"{dataset}.jsonl")
        if _pairs(dataset):
            _write_jsonl(path, _rows(paths), to_sharegpt)
            info[f"refinery_{dataset}"] = {
                "file_name": f"{dataset}.jsonl", "formatting": "sharegpt", "ranking": True,
                "columns": {"messages": "conversations", "chosen": "chosen",
                            "rejected": "rejected"}}
        elif sft_format == "alpaca":
            _write_jsonl(path, _rows(paths), to_alpaca)
            info[f"refinery_{dataset}"] = {
                "file_name": f"{dataset}.jsonl", "formatting": "alpaca",
                "columns": {"prompt": "instruction", "query": "input", "response": "output",
                            "system": "system", "history": "history"}}
        else:
            _write_jsonl(path, _rows(paths), to_sharegpt)
            info[f"refinery_{dataset}"] = {
                "file_name": f"{dataset}.jsonl", "formatting": "sharegpt",
                "columns": {"messages": "conversations"}}
        files.append(path)
    write_text(join(to, "dataset_info.json"), json.dumps(info, indent=2) + "\n")
    return [*files, join(to, "dataset_info.json")]


def export_axolotl(out_dir: str, to: str, datasets: Sequence[str] | None = None) -> list[str]:
    """Chat JSONL (`messages`; pairs: `messages` prompt + `chosen`/`rejected` replies) and
    axolotl-<dataset>.yaml with the matching `datasets:` block (preference: with `rl: dpo`)."""
    def convert(row: Row) -> Row:
        if "chosen" in row:
            return {"messages": _chat(row["prompt"]), "chosen": _chat([_reply(row["chosen"])])[0],
                    "rejected": _chat([_reply(row["rejected"])])[0]}
        return {"messages": _chat(row["messages"])}

    written = _jsonl_per_dataset(out_dir, to, datasets, convert)
    files = []
    for dataset, (path, _, _) in written.items():
        mapping = ("    field_messages: messages\n    message_property_mappings:\n"
                   "      role: role\n      content: content\n")
        if _pairs(dataset):
            block = (f"# {dataset}: preference tuning\nrl: dpo\ndatasets:\n  - path: {path}\n"
                     f"    ds_type: json\n    split: train\n    type: chat_template.default\n"
                     f"{mapping}    field_chosen: chosen\n    field_rejected: rejected\n")
        else:
            block = (f"# {dataset}: supervised fine-tuning\ndatasets:\n  - path: {path}\n"
                     f"    ds_type: json\n    split: train\n    type: chat_template\n{mapping}")
        yaml_path = join(to, f"axolotl-{dataset}.yaml")
        write_text(yaml_path, block)
        files += [path, yaml_path]
    return files


FORMATS: dict[str, Callable[..., list[str]]] = {
    "trl": export_trl, "sharegpt": export_sharegpt, "llamafactory": export_llamafactory,
    "openai": export_openai, "axolotl": export_axolotl}
