"""Prompt-only rows through every curation stage in one run (ingest → quality → dedup →
decontam → emit): kept by quality with null response signals, deduplicated on the prompt
(an answered copy is the keeper), decontaminated on the prompt, nothing dead-lettered, and
the conservation law holds."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.run import run_config

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "data" / "benchmarks"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("prompt_only")
    gsm = json.loads((BENCH / "mini_gsm8k.jsonl").read_text().splitlines()[1])["question"]
    mt = json.loads((BENCH / "mini_mt_bench.json").read_text())[0]
    extra = [
        {"question": "Why do leaves change colour in autumn?"},            # exact dup of a seed
        {"prompt": "Please explain what a prime number is to a ten-year-old."},  # near dup
        {"question": gsm},                                                  # contaminated
        {"question_id": 7, "category": "writing", "turns": mt["turns"]},   # contaminated, 2 turns
        {"instruction": "Suggest a name for a cat that likes to sleep in shoe boxes.",
         "output": "Captain Cardboard."},                                  # answered copy of a seed
    ]
    path = tmp / "more.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in extra))
    bench = [{"name": "gsm8k", "path": str(BENCH / "mini_gsm8k.jsonl"), "preset": "gsm8k"},
             {"name": "mt_bench", "path": str(BENCH / "mini_mt_bench.json"), "preset": "mt_bench"}]
    cfg = load_config(None, [
        "stages.quality.enabled=true", "stages.dedup.enabled=true", "stages.dedup.key=prompt",
        "stages.dedup.threshold=0.5", "stages.decontam.enabled=true",
        f"stages.decontam.benchmarks={json.dumps(bench)}", "emit.num_shards=1"],
        inputs=[str(ROOT / "data" / "seeds.jsonl"), str(path)], out=str(tmp / "out"))
    result = run_config(cfg)
    return tmp / "out", result.manifest


def _rows(path: Path) -> list[dict]:
    return [r for p in sorted(path.parent.glob(path.name)) for r in pq.read_table(p).to_pylist()]


def test_prompt_only_rows_pass_every_stage_with_reasons(run) -> None:
    out, manifest = run
    c = manifest["conservation"]
    assert c["holds"] and c["records_in"] == 25 and c["deadletter"] == 0
    rejected = _rows(out / "rejected" / "*.parquet")
    # quality dropped none of them (no "empty_response" for a prompt without its answer)
    assert sorted((r["reject_stage"], r["reject_reason"]) for r in rejected) == [
        ("decontam", "contaminated_tulu3"), ("decontam", "contaminated_tulu3"),
        ("dedup", "exact_duplicate"), ("dedup", "exact_duplicate"), ("dedup", "near_duplicate")]
    contaminated = [r for r in rejected if r["reject_stage"] == "decontam"]
    assert sorted(json.loads(r["reject_detail"])["benchmark"] for r in contaminated) == [
        "gsm8k", "mt_bench"]
    assert all(r["messages"][-1]["role"] == "user" for r in contaminated)
    kept = _rows(out / "sft" / "*.parquet")
    assert len(kept) == 20
    prompt_only = [r for r in kept if r["messages"][-1]["role"] == "user"]
    assert len(prompt_only) == 19
    for r in prompt_only:
        assert r["meta"]["quality_score"] is None and r["meta"]["q_empty"] is None
        assert r["meta"]["q_prompt_words"] > 0


def test_dedup_keys_on_the_prompt_and_keeps_the_answered_copy(run) -> None:
    out, _ = run
    dups = [r for r in _rows(out / "rejected" / "*.parquet") if r["reject_stage"] == "dedup"]
    kept = {r["id"]: r for r in _rows(out / "sft" / "*.parquet")}
    cat = [r for r in dups if "shoe boxes" in r["messages"][-1]["content"]]
    assert len(cat) == 1 and cat[0]["messages"][-1]["role"] == "user"
    keeper = kept[cat[0]["duplicate_of"]]
    assert keeper["messages"][-1] == {"role": "assistant", "content": "Captain Cardboard."}
    near = [r for r in dups if r["reject_reason"] == "near_duplicate"]
    assert len(near) == 1
    keeper = kept[near[0]["duplicate_of"]]
    assert {near[0]["messages"][0]["content"], keeper["messages"][0]["content"]} == {
        "Explain what a prime number is to a ten-year-old.",
        "Please explain what a prime number is to a ten-year-old."}
    # the keeper rule: the better quality score (missing: lowest), then the smaller id
    ks, ds = (float("-inf") if r["meta"]["quality_score"] is None else r["meta"]["quality_score"]
              for r in (keeper, near[0]))
    assert ks > ds or (ks == ds and keeper["id"] < near[0]["id"])
