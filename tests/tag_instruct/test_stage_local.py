"""The stage with the real local model (135M, CPU) through the real serving layer: 3 seeds,
1 round, small budgets. The model's content is weak; what is asserted is that every seed ends
accepted, rejected with a reason, or dead-lettered, and that the report adds up."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas.records import example_row, examples_to_batch
from transforms.base import DEADLETTER, EXAMPLES, REJECTED, REPORT, TAG_PAIRS, RunContext
from transforms.embed.config import EmbeddingConfig
from transforms.llm.config import LocalLLMConfig
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.stage import TagInstructStage

pytestmark = [pytest.mark.slow, pytest.mark.model]

SEEDS = [
    ("Explain why the sky looks blue during the day.",
     "Air molecules scatter short wavelengths far more than long ones."),
    ("Write a haiku about autumn rain.", "Cold rain on maples,\nred leaves loosen one by one."),
    ("What is the capital of Australia?", "The capital of Australia is Canberra."),
]


def test_local_model_round_conserves_every_seed(tmp_path) -> None:
    rows = [example_row(f"seed-{i}", [{"role": "user", "content": q},
                                      {"role": "assistant", "content": a}])
            for i, (q, a) in enumerate(SEEDS)]
    cfg = TagInstructConfig(
        enabled=True, rounds=1, num_candidates=2, max_question_chars=300, tagger_max_tags=4,
        compress={"max_tokens": 48}, tag={"max_tokens": 96},
        expand={"temperature": 1.0, "max_tokens": 64},
        reconstruct={"temperature": 0.7, "max_tokens": 128}, respond={"max_tokens": 48})
    ctx = RunContext(seed=0, work_dir=str(tmp_path),
                     llm=LocalLLMConfig(batch_size=4, progress=False, retries=0),
                     embeddings=EmbeddingConfig(device="cpu"))

    def check(got: dict) -> None:
        examples = [r for b in got[EXAMPLES] for r in b.to_pylist()]
        rejected = [r for b in got[REJECTED] for r in b.to_pylist()]
        dead = got[DEADLETTER]
        pairs = [r for b in got[TAG_PAIRS] for r in b.to_pylist()]
        [report] = got[REPORT]
        ended = ([e["meta"]["lineage"]["parent_ids"][0] for e in examples]
                 + [r["id"] for r in rejected]
                 + [d["record_id"].split("|")[0] for d in dead
                    if d["record_id"].split("|")[2] != "expand"])  # a candidate only
        assert sorted(ended) == [r["id"] for r in rows]  # each seed exactly once
        assert all(r["reject_reason"] and json.loads(r["reject_detail"])["round"] == 1
                   for r in rejected)
        for e in examples:
            assert e["meta"]["lineage"]["model"].startswith("local:")
            assert e["meta"]["ti_chosen_tag"] in e["meta"]["ti_tags_used"]
        for pr in pairs:
            assert pr["meta"]["ti_chosen_reward"] >= pr["meta"]["ti_rejected_reward"]
        [r1] = report["rounds"]
        assert report["conserved"] and r1["inputs"] == 3
        assert r1["accepted"] == len(examples) and r1["rejected"] == len(rejected)
        assert r1["pairs"] == len(pairs)

    with TestPipeline() as p:
        out = (p | beam.Create([examples_to_batch(rows)]) | TagInstructStage(cfg, ctx))
        lists = [out[k] | f"{k}List" >> beam.combiners.ToList()
                 | f"{k}Tag" >> beam.Map(lambda v, k=k: (k, v)) for k in out]
        combined = lists | beam.Flatten() | beam.combiners.ToDict()
        assert_that(combined, lambda got: check(got[0]))
