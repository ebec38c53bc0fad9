"""The dataset card: README.md with a YAML header that `datasets` understands."""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.outputs import layout as L

# Methods a run may use, with the papers they follow (shown when the stage was enabled).
METHODS = {
    "quality": "Quality signals (Gopher/C4-style heuristics); optional DEITA-style LLM ratings "
               "(arXiv 2312.15685) and IFD (arXiv 2308.12032)",
    "dedup": "Exact and MinHash LSH near-duplicate removal; SemDeDup semantic dedup "
             "(arXiv 2303.09540) when enabled",
    "decontam": "Benchmark decontamination: Tulu 3 8-gram coverage rule (arXiv 2411.15124) and "
                "GPT-3 13-gram rule (arXiv 2005.14165)",
    "tag_instruct": "TAG-INSTRUCT: complexity expansion in tag space (arXiv 2505.18557)",
    "compound": "CQ-Syn: compound questions (arXiv 2411.10163)",
    "rise": "RISE: error-injected preference pairs (arXiv 2410.06638)",
}


def _licenses(manifest: dict[str, Any]) -> list[str]:
    sources = manifest.get("config", {}).get("sources") or []
    return sorted({s["license"] for s in sources if s.get("license")})


def release_section(manifest: dict[str, Any], release: dict[str, Any]) -> list[str]:
    """Card lines of a release: version, date, methods, licences, changelog, counts by reason."""
    stages = manifest.get("config", {}).get("stages") or {}
    used = [text for name, text in METHODS.items() if (stages.get(name) or {}).get("enabled")]
    licenses = _licenses(manifest)
    lines = ["## Release", "",
             f"- version: `{release['version']}` (previous: "
             f"{'`' + release['previous'] + '`' if release.get('previous') else 'none'})",
             f"- published: {release['date']}",
             f"- licences of the inputs: {', '.join(licenses) if licenses else 'not stated'}",
             "", "## Methods", "", *[f"- {m}" for m in used], ""]
    lines += ["## Rejected rows by stage and reason", "", "| stage | reason | rows |", "|---|---|---|"]
    for stage, reasons in sorted(manifest["counts"]["rejected"].items()):
        lines += [f"| {stage} | {reason} | {n} |" for reason, n in sorted(reasons.items())]
    return [*lines, "", release.get("changelog", "").rstrip(), ""]


def dataset_sections(datasets: list[str], folder: dict[str, str]) -> list[str]:
    """One card section per dataset: what kind of row it holds (pipeline/outputs/layout.py)."""
    lines = []
    for d in datasets:
        spec = L.BY_NAME.get(d)
        about = spec.about if spec else f"per-round examples (`{folder[d]}/`)"
        lines += [f"### `{d}`", "", about[0].upper() + about[1:] + ".", ""]
    return lines


def render_card(manifest: dict[str, Any], split: str,
                release: dict[str, Any] | None = None) -> str:
    datasets = sorted({s["dataset"] for s in manifest["shards"] if s["format"] == "parquet"})
    folder = {s["dataset"]: s["path"].rsplit("/", 1)[0] for s in manifest["shards"]
              if s["format"] == "parquet"}  # e.g. tag_instruct_rounds/round_1
    rows = {d: sum(s["rows"] for s in manifest["shards"]
                   if s["dataset"] == d and s["format"] == "parquet") for d in datasets}
    header = {
        "pretty_name": manifest["name"] + (f" {release['version']}" if release else ""),
        **({"license": _licenses(manifest)} if release and _licenses(manifest) else {}),
        "tags": ["refinery", "sft", "dpo", "synthetic"],
        "configs": [
            {"config_name": d,
             "data_files": [{"split": split, "path": f"{folder[d]}/{split}-*.parquet"}],
             **({"default": True} if d == L.SFT else {})}
            for d in datasets
        ],
    }
    c = manifest["conservation"]
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
        f"# {manifest['name']}", "",
        "Built by Refinery. Each dataset holds one kind of row; train on the one whose kind "
        "your trainer expects.",
        "",
        "| dataset | rows |", "|---|---|",
        *[f"| {d} | {rows[d]} |" for d in datasets], "",
        *dataset_sections(datasets, folder),
        "## Provenance", "",
        f"- config hash: `{manifest['config_hash']}`",
        f"- records in: {c['records_in']}; kept: {c['records_out']}; rejected: {c['rejected']}; "
        f"dead letter: {c['deadletter']} (conservation holds: {c['holds']})",
        *[f"- input `{i['path']}` ({i['layout']}, sha256 `{(i['sha256'] or 'unread')[:16]}…`)"
          for i in manifest["inputs"]],
        "", "## Load", "", "```python", "from datasets import load_dataset",
        *[f"{d} = load_dataset(\"parquet\", data_dir=\"{folder[d]}\", split=\"{split}\")"
          for d in datasets],
        "```", "",
        "Every dropped record is in `rejected/` with its reason; unparseable input is in "
        "`deadletter/` with the error and raw payload. `manifest.json` lists every shard with "
        "its sha256 and the versions of every library used.", "",
    ]
    if release:
        lines += release_section(manifest, release)
    return "\n".join(lines)
