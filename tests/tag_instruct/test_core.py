"""The round's pure steps on fixed model answers and fixed embeddings: lineage, pairs,
failures with reasons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schemas.ids import example_id, pair_id
from schemas.records import example_row, examples_to_batch, pairs_to_batch
from transforms.llm.api import ChatResult
from transforms.tag_instruct import core, templates
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.utility import ReferenceSets
from transforms.tag_instruct.verify import Failure

CFG = TagInstructConfig(num_candidates=3, keep_tags=2)
ROW = example_row("parent-1", [{"role": "user", "content": "Explain why the sky is blue."},
                               {"role": "assistant", "content": "Rayleigh scattering."}],
                  source={"dataset": "alpaca", "file": "a.jsonl", "row": 3}, category="science")
# Fixed 3-d embeddings: top set near axis 0, bottom set near axis 2.
VECTORS = {"proof": [1, 0, 0], "derivation": [0.9, 0.1, 0], "trivia": [0, 0, 1],
           "greeting": [0, 0.1, 0.9], "edge case": [0.8, 0.2, 0.0], "emoji": [0.0, 0.2, 0.8],
           "humor": [0.1, 0.1, 0.8]}
REFS = ReferenceSets(top=("proof", "derivation"), bottom=("trivia", "greeting"), pool_size=4,
                     min_count=3)


def embed(texts):
    out = np.array([VECTORS.get(t, [0.0, 1.0, 0.0]) for t in texts], dtype=np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def result(*texts: str, model: str = "m1") -> ChatResult:
    return ChatResult(key="k", texts=tuple(texts), model=model)


def test_start_item_and_request() -> None:
    item = core.start_item(ROW, 1)
    assert item["instruction"] == "Explain why the sky is blue." and item["root_id"] == "parent-1"
    req = core.build_request("compress", item, CFG, run_seed=7)
    assert req.key == "parent-1|r1|compress"
    assert req.template_version == templates.version("compress")
    assert req.json_schema["properties"]["tags"]["maxItems"] == 3
    assert req.payload["id"] == "parent-1"
    # seeded from run seed + id + round + step: stable, and different per step/seed
    assert core.build_request("compress", item, CFG, 7).sampling.seed == req.sampling.seed
    assert core.build_request("compress", item, CFG, 8).sampling.seed != req.sampling.seed
    empty = example_row("e", [{"role": "assistant", "content": "x"}])
    assert isinstance(core.start_item(empty, 1), Failure)


def _through_expand():
    item = core.start_item(ROW, 1)
    item = core.after_compress(item, result('{"tags": ["Physics", "Explanations", "Optics"]}'),
                               CFG)
    assert item["tags_before"] == ["physics", "explanation", "optics"]
    req = core.build_request("expand", item, CFG, 0)
    assert req.sampling.n == 3 and req.sampling.temperature > 0
    answers = ['{"tag": "Edge Cases", "explanation": "harder"}',
               '{"tag": "Emoji", "explanation": "fun"}',
               '{"tag": "physics", "explanation": "repeat"}']
    return core.after_expand(item, result(*answers), REFS, embed, CFG)


def test_expand_rewards_chooses_best_and_writes_pair() -> None:
    item, pair = _through_expand()
    assert item["chosen_tag"] == "edge case"
    cands = {c["tag"]: c["reward"] for c in item["candidates"]}
    assert set(cands) == {"edge case", "emoji"}  # "physics" overlaps an existing tag
    assert cands["edge case"] > 0 > cands["emoji"]
    assert item["tags_used"] == ["physics", "explanation", "edge case"]
    assert json.loads(pair["chosen"][0]["content"])["tag"] == "Edge Cases"
    assert json.loads(pair["rejected"][0]["content"])["tag"] == "Emoji"
    assert pair["prompt"][-1]["content"] == templates.render(
        "expand", instruction=ROW["messages"][0]["content"], tags=item["tags_before"])
    assert pair["id"] == pair_id(pair["prompt"], pair["chosen"], pair["rejected"])
    assert pair["meta"]["parent_id"] == "parent-1"
    assert pair["meta"]["lineage"]["template_version"] == templates.version("expand")
    assert pair["meta"]["ti_chosen_reward"] > pair["meta"]["ti_rejected_reward"]
    assert pairs_to_batch([pair]).num_rows == 1


def test_expand_single_or_no_valid_candidate() -> None:
    item = core.after_compress(core.start_item(ROW, 1), result('{"tags": ["a", "b", "c"]}'), CFG)
    one, pair = core.after_expand(item, result('{"tag": "proof", "explanation": ""}', "oops"),
                                  REFS, embed, CFG)
    assert one["chosen_tag"] == "proof" and pair is None
    bad, pair = core.after_expand(item, result("", '{"tag": "a"}', '{"tag": "a', ), REFS,
                                  embed, CFG)
    assert isinstance(bad, Failure) and bad.reason == "expand_no_valid_candidate"
    assert bad.detail["problems"] == ["empty_output", "overlaps_existing_tag", "truncated_json"]


def test_answer_embedding_equal_to_question_is_a_copy() -> None:
    item, _ = _through_expand()
    vectors = {"Explain why the sky is blue.": [1, 0, 0], "Rayleigh scattering.": [0, 0, 1],
               "Q?": [0, 1, 0]}
    question = "Explain why the sky is blue, and check the edge case of a Martian sunset."

    def emb(texts):
        out = np.array([vectors.get(t, [0.6, 0.8, 0.0]) for t in texts], dtype=np.float64)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    item = core.after_reconstruct(item, result(json.dumps({"question": question}), model="m2"),
                                  emb, CFG)
    assert item["question"] == question and item["similarity_to_original"] == pytest.approx(0.6)
    item = core.after_respond(item, result("Dust scatters red light on Mars.", model="m2"), emb,
                              CFG)
    # question and answer both map to the default vector: similarity 1.0 reads as a copy
    assert isinstance(item, Failure) and item.reason == "copies_own_answer"


def test_accepted_example_has_lineage() -> None:
    item, _ = _through_expand()
    question = "Explain why the sky is blue, and check the edge case of a Martian sunset."
    answer = "Dust scatters red light on Mars."
    vectors = {"Explain why the sky is blue.": [1, 0, 0], "Rayleigh scattering.": [0, 0, 1],
               question: [0.6, 0.8, 0], answer: [0.0, 0.6, 0.8]}

    def emb(texts):
        out = np.array([vectors[t] for t in texts], dtype=np.float64)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    item = core.after_reconstruct(item, result(json.dumps({"question": question}), model="m2"),
                                  emb, CFG)
    item = core.after_respond(item, result(answer, model="m2"), emb, CFG)
    item = core.after_retag(item, result('{"tags": ["Physics", "edge cases", "astronomy"]}'), CFG)
    row = core.new_example(item)
    meta = row["meta"]
    assert row["id"] == example_id(row["messages"])
    assert row["messages"] == [{"role": "user", "content": question},
                               {"role": "assistant", "content": answer}]
    assert row["source"] == ROW["source"] and meta["category"] == "science"
    assert meta["lineage"]["parent_ids"] == ["parent-1"]
    assert meta["lineage"]["stage"] == "tag_instruct"
    assert meta["lineage"]["model"] == "m1,m2"
    assert meta["lineage"]["template_version"].split(";") == [
        templates.version(s) for s in templates.STEPS]
    assert meta["ti_round"] == 1 and meta["ti_root_id"] == "parent-1"
    assert meta["ti_tags_before"] == ["physics", "explanation", "optics"]
    assert meta["ti_tags_used"] == ["physics", "explanation", "edge case"]
    assert meta["ti_tags_after"] == meta["tags"] == ["physics", "edge case", "astronomy"]
    assert meta["ti_chosen_tag"] == "edge case" and meta["ti_chosen_reward"] > 0
    assert json.loads(meta["ti_models"])["respond"] == "m2"
    batch = examples_to_batch([row])
    assert batch.schema.field("meta").type.get_field_index("ti_chosen_reward") >= 0


def test_retag_loss_of_complexity_and_parse_failures_have_reasons() -> None:
    item, _ = _through_expand()
    item = dict(item, question="Q", response="A", similarity_to_original=0.5)
    lost = core.after_retag(item, result('{"tags": ["physics"]}'), CFG)
    assert lost.reason == "complexity_loss"
    broken = core.after_retag(item, result('{"tags": ["phys'), CFG)
    assert broken.reason == "retag_truncated_json" and broken.detail["raw"] == '{"tags": ["phys'
    assert core.after_compress(item, result("no json"), CFG).reason == "compress_invalid_json"
    assert core.after_reconstruct(item, result('{"q": 1}'), embed, CFG).reason == \
        "reconstruct_missing_question"
