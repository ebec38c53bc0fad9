"""The dataset card: README.md with a YAML header that `datasets` understands."""

from __future__ import annotations

from typing import Any

import yaml


def render_card(manifest: dict[str, Any], split: str) -> str:
    datasets = sorted({s["dataset"] for s in manifest["shards"] if s["format"] == "parquet"})
    rows = {d: sum(s["rows"] for s in manifest["shards"]
                   if s["dataset"] == d and s["format"] == "parquet") for d in datasets}
    header = {
        "pretty_name": manifest["name"],
        "tags": ["refinery", "sft", "dpo", "synthetic"],
        "configs": [
            {"config_name": d, "data_files": [{"split": split, "path": f"{d}/{split}-*.parquet"}],
             **({"default": True} if d == "sft" else {})}
            for d in datasets
        ],
    }
    c = manifest["conservation"]
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
        f"# {manifest['name']}", "",
        "Built by Refinery. `sft` holds curated and synthesized chat examples (`messages`); "
        "`preference` holds DPO pairs (`prompt`, `chosen`, `rejected` in conversational form).",
        "",
        "| dataset | rows |", "|---|---|",
        *[f"| {d} | {rows[d]} |" for d in datasets], "",
        "## Provenance", "",
        f"- config hash: `{manifest['config_hash']}`",
        f"- records in: {c['records_in']}; kept: {c['records_out']}; rejected: {c['rejected']}; "
        f"dead letter: {c['deadletter']} (conservation holds: {c['holds']})",
        *[f"- input `{i['path']}` ({i['layout']}, sha256 `{i['sha256'][:16]}…`)"
          for i in manifest["inputs"]],
        "", "## Load", "", "```python", "from datasets import load_dataset",
        *[f"{d} = load_dataset(\"parquet\", data_dir=\"{d}\", split=\"{split}\")" for d in datasets],
        "```", "",
        "Every dropped record is in `rejected/` with its reason; unparseable input is in "
        "`deadletter/` with the error and raw payload. `manifest.json` lists every shard with "
        "its sha256 and the versions of every library used.", "",
    ]
    return "\n".join(lines)
