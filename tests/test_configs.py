"""Every shipped config validates, and the demo runs end to end with the real local models."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_there_are_configs() -> None:
    assert {"demo.yaml", "release.yaml", "gpu.yaml"} <= {c.name for c in CONFIGS}


@pytest.mark.parametrize("path", CONFIGS, ids=[c.name for c in CONFIGS])
def test_config_validates(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.sources


@pytest.mark.slow
def test_demo_end_to_end(demo_run) -> None:
    """`make run`'s config: every stage on, real models, outputs read back."""
    out = demo_run.out
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["conservation"]
    assert c["holds"] and c["records_in"] == c["records_out"] + c["rejected"] + c["deadletter"]
    # Every enabled stage reported and each curation stage did its job on the samples.
    assert {"quality", "dedup", "decontam", "rise", "tag_instruct", "compound"} <= set(
        manifest["reports"])
    rejected = manifest["counts"]["rejected"]
    assert rejected["dedup"].get("exact_duplicate", 0) >= 1  # the planted copies
    assert sum(rejected["decontam"].values()) >= 1  # the planted benchmark question
    assert rejected["quality"].get("refusal", 0) >= 1  # the "As an AI language model" row
    # Synthesis: RISE rule edits yield a pair per GSM8K-style problem that survived curation;
    # every LLM seed ends accepted, rejected or dead-lettered (the stages' own accounting,
    # checked against the manifest's counts from the files).
    reports, synth = manifest["reports"], manifest["synthesis"]
    assert reports["rise"]["pairs"] == reports["rise"]["problems_in"] == synth["rise"][
        "out_preference_steps"] >= 5 and synth["rise"]["out_preference"] == 0  # step pairs
    tag = reports["tag_instruct"]
    assert tag["seeds"] == 4 and tag["conserved"]
    first = tag["rounds"][0]
    assert first["inputs"] == first["accepted"] + first["rejected"] + first["deadletter"]
    assert synth.get("tag_instruct", {}).get("rejected", 0) == sum(
        r["rejected"] for r in tag["rounds"])
    cq = reports["compound"]
    seeds = sum(c["seeds"] for c in cq["per_category"].values())
    assert seeds == 4 == cq["accepted"] + sum(
        c["rejected"] for c in cq["per_category"].values()) + cq["deadletter"]
    assert synth.get("compound", {}).get("out_sft", 0) == cq["accepted"]
    # Outputs read back with `datasets`, through the card too.
    sft = datasets.load_dataset("parquet", data_dir=str(out / "sft"), split="train")
    pairs = datasets.load_dataset(str(out), "preference", split="train")
    assert len(sft) == sum(manifest["counts"]["outputs"]["sft"].values())
    assert len(pairs) == sum(manifest["counts"]["outputs"]["preference"].values())
    for path in (out / "rejected").glob("*.parquet"):
        reasons = pq.read_table(path, columns=["reject_reason"]).column(0).to_pylist()
        assert reasons and all(reasons)
