"""The round's pure steps on fixed model answers and fixed embeddings: lineage, pairs only
with a real reward margin, teacher-chosen tag subsets, truncation, failures with reasons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schemas.ids import example_id, pair_id
from schemas.records import example_row, examples_to_batch, pairs_to_batch
from transforms.llm.api import ChatResult
from transforms.tag_instruct import core, rows, templates
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.parsers import ParseError
from transforms.tag_instruct.utility import ReferenceSets
from transforms.tag_instruct.verify import Failure

CFG = TagInstructConfig(num_candidates=3)
ROW = example_row("parent-1", [{"role": "user", "content": "Explain why the sky is blue."},
                               {"role": "assistant", "content": "Rayleigh scattering."}],
                  source={"dataset": "alpaca", "file": "a.jsonl", "row": 3}, category="science")
# Fixed 3-d embeddings: top set near axis 0, bottom set near axis 2.
VECTORS = {"proof": [1, 0, 0], "derivation": [0.9, 0.1, 0], "trivia": [0, 0, 1],
           "greeting": [0, 0.1, 0.9], "edge case": [0.8, 0.2, 0.0], "emoji": [0.0, 0.2, 0.8],
           "humor": [0.1, 0.1, 0.8]}
REFS = ReferenceSets(top=("proof", "derivation"), bottom=("trivia", "greeting"), pool_size=4,
                     min_count=3)
NO_REFS = ReferenceSets(top=(), bottom=(), pool_size=1, min_count=3)
TAGGER = json.dumps({"tags": [{"tag": "Physics", "explanation": "science"},
                              {"tag": "Explanation", "explanation": "why"}]})


def embed(texts):
    out = np.array([VECTORS.get(t, [0.0, 1.0, 0.0]) for t in texts], dtype=np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def result(*texts: str, model: str = "m1", candidate: int | None = None,
           finish_reason: str | None = "stop") -> ChatResult:
    payload = None if candidate is None else {"id": "parent-1", "round": 1,
                                              "candidate": candidate}
    return ChatResult(key="k", texts=tuple(texts), model=model, payload=payload,
                      finish_reasons=None if finish_reason is None else (finish_reason,))


def candidates(*answers: str) -> list[ChatResult]:
    # given out of order: the core sorts them by sample number
    return [result(a, model="policy", candidate=i) for i, a in reversed(list(enumerate(answers)))]


def _tagged():
    item = core.start_item(ROW, 1)
    item = core.after_compress(item, result('{"tags": ["Physics", "Explanations", "Optics"]}'),
                               CFG)
    assert item["tags_before"] == ["physics", "explanation", "optics"]
    item = core.after_tag(item, result(TAGGER), CFG)
    assert item["tagger_before"] == ["physics", "explanation"]
    return item


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


def test_expand_is_one_request_per_candidate_with_its_own_seed() -> None:
    reqs = core.expand_requests(_tagged(), CFG, 0)
    assert [r.key for r in reqs] == [f"parent-1|r1|expand|{i}" for i in range(3)]
    assert all(r.sampling.n == 1 and r.sampling.temperature == 1.0 for r in reqs)
    assert len({r.sampling.seed for r in reqs}) == 3
    assert reqs[2].payload == {"id": "parent-1", "round": 1, "candidate": 2}


def test_tag_and_retag_use_the_same_tagger_prompt() -> None:
    item = dict(_tagged(), question="Why is the sky red at sunset?")
    tag = core.build_request("tag", item, CFG, 0)
    retag = core.build_request("retag", item, CFG, 0)
    assert tag.json_schema == retag.json_schema and tag.template_version == \
        retag.template_version
    assert retag.messages[-1][1] == tag.messages[-1][1].replace(
        item["instruction"], item["question"])


def _through_expand(refs: ReferenceSets = REFS):
    answers = ['{"tag": "Edge Cases", "explanation": "harder"}',
               '{"tag": "Emoji", "explanation": "fun"}',
               '{"tag": "physics", "explanation": "repeat"}']
    return core.after_expand(_tagged(), candidates(*answers), refs, embed, CFG)


def test_expand_rewards_chooses_best_and_writes_pair() -> None:
    item, pair, info = _through_expand()
    assert item["chosen_tag"] == "edge case" and item["models"]["expand"] == "policy"
    cands = {c["tag"]: c["reward"] for c in item["candidates"]}
    assert set(cands) == {"edge case", "emoji"}  # "physics" overlaps an existing tag
    assert cands["edge case"] > 0 > cands["emoji"]
    assert info["problems"] == {"overlaps_existing_tag": 1} and info["pair_skip"] is None
    assert info["margin"] == pytest.approx(cands["edge case"] - cands["emoji"], abs=2e-6)
    assert json.loads(pair["chosen"][0]["content"])["tag"] == "Edge Cases"
    assert json.loads(pair["rejected"][0]["content"])["tag"] == "Emoji"
    assert pair["prompt"][-1]["content"] == templates.render(
        "expand", instruction=ROW["messages"][0]["content"], tags=item["tags_before"])
    assert pair["id"] == pair_id(pair["prompt"], pair["chosen"], pair["rejected"])
    assert pair["meta"]["parent_id"] == "parent-1"
    assert pair["meta"]["lineage"]["model"] == "policy"
    assert pair["meta"]["ti_chosen_reward"] > pair["meta"]["ti_rejected_reward"]
    assert pairs_to_batch([pair]).num_rows == 1


def test_no_pair_without_signal_reasons_counted() -> None:
    # empty reference sets: every reward 0, the first sample is used, no pair
    item, pair, info = _through_expand(NO_REFS)
    assert pair is None and info["pair_skip"] == "no_reference_sets"
    assert item["chosen_tag"] == "edge case" and info["margin"] == 0
    # two candidates with the same embedding: a tie
    tied = core.after_expand(_tagged(), candidates('{"tag": "riddles", "explanation": ""}',
                                                   '{"tag": "jokes", "explanation": ""}',
                                                   '{"tag": "puns", "explanation": ""}'),
                             REFS, embed, CFG)
    assert tied[1] is None and tied[2]["pair_skip"] == "reward_tie"
    close = core.after_expand(_tagged(), candidates('{"tag": "proof", "explanation": ""}',
                                                    '{"tag": "derivation", "explanation": ""}'),
                              REFS, embed, TagInstructConfig(min_reward_margin=0.5))
    assert close[1] is None and close[2]["pair_skip"] == "margin_below_min"


def test_invalid_candidates_drop_one_by_one() -> None:
    item = _tagged()
    one, pair, info = core.after_expand(item, candidates('{"tag": "proof", "explanation": ""}',
                                                         "oops"), REFS, embed, CFG)
    assert one["chosen_tag"] == "proof" and pair is None
    assert info["pair_skip"] == "single_candidate" and info["problems"] == {"invalid_json": 1}
    bad, pair, info = core.after_expand(item, candidates("", '{"tag": "optics"}', '{"tag": "a'),
                                        REFS, embed, CFG)
    assert isinstance(bad, Failure) and bad.reason == "expand_no_valid_candidate"
    assert bad.detail["problems"] == {"empty_output": 1, "overlaps_existing_tag": 1,
                                      "truncated_json": 1}
    # all N calls dead-lettered: nothing came back, still a reason
    none, _, _ = core.after_expand(item, [], REFS, embed, CFG)
    assert none.reason == "expand_no_valid_candidate" and none.detail["returned"] == 0


QUESTION = "Explain why the sky is blue, and check the edge case of a Martian sunset."
ANSWER = "Dust scatters red light on Mars."
EMB = {"Explain why the sky is blue.": [1, 0, 0], "Rayleigh scattering.": [0, 0, 1],
       QUESTION: [0.6, 0.8, 0], ANSWER: [0.0, 0.6, 0.8]}


def emb(texts):
    out = np.array([EMB.get(t, [0.6, 0.8, 0.0]) for t in texts], dtype=np.float64)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _rebuilt(tags_used: list[str]):
    item, _, _ = _through_expand()
    answer = json.dumps({"tags_used": tags_used, "question": QUESTION})
    return core.after_reconstruct(item, result(answer, model="teacher"), emb, CFG)


def test_reconstruct_keeps_the_teachers_subset() -> None:
    item = _rebuilt(["Optics", "edge cases", "made up"])
    assert item["tags_used"] == ["optics", "edge case"]  # unknown tags ignored
    assert item["similarity_to_original"] == pytest.approx(0.6)
    dropped = _rebuilt(["physics", "optics"])
    assert isinstance(dropped, Failure) and dropped.reason == "reconstruct_dropped_new_tag"


def test_truncated_response_is_rejected() -> None:
    item = _rebuilt(["edge case"])
    cut = core.after_respond(item, result(ANSWER, finish_reason="length"), emb, CFG)
    assert isinstance(cut, Failure) and cut.reason == "response_truncated"
    assert core.after_respond(item, result(ANSWER, finish_reason=None), emb, CFG)["response"]
    copy = core.after_respond(item, result("Q?"), emb, CFG)  # same vector as the question
    assert copy.reason == "copies_own_answer"


def test_accepted_example_has_lineage() -> None:
    item = _rebuilt(["physics", "edge case"])
    item = core.after_respond(item, result(ANSWER, model="teacher"), emb, CFG)
    item = core.after_retag(item, result(json.dumps({"tags": [
        {"tag": "Physics", "explanation": ""}, {"tag": "edge cases", "explanation": ""},
        {"tag": "astronomy", "explanation": ""}]}), model="teacher"), CFG)
    row = rows.new_example(item)
    meta = row["meta"]
    assert row["id"] == example_id(row["messages"])
    assert row["messages"] == [{"role": "user", "content": QUESTION},
                               {"role": "assistant", "content": ANSWER}]
    assert row["source"] == ROW["source"] and meta["category"] == "science"
    assert meta["lineage"]["parent_ids"] == ["parent-1"]
    assert meta["lineage"]["model"] == "m1,policy,teacher"
    assert meta["lineage"]["template_version"].split(";") == [
        templates.version(s) for s in templates.STEPS]
    assert meta["ti_round"] == 1 and meta["ti_root_id"] == "parent-1"
    assert meta["ti_tags_before"] == ["physics", "explanation", "optics"]
    assert meta["ti_tagger_before"] == ["physics", "explanation"]
    assert meta["ti_tags_used"] == ["physics", "edge case"]
    assert meta["ti_tags_after"] == meta["tags"] == ["physics", "edge case", "astronomy"]
    assert meta["ti_chosen_tag"] == "edge case" and meta["ti_chosen_reward"] > 0
    models = json.loads(meta["ti_models"])
    assert models["respond"] == "teacher" and models["expand"] == "policy"
    batch = examples_to_batch([row])
    assert batch.schema.field("meta").type.get_field_index("ti_chosen_reward") >= 0


def test_complexity_is_measured_with_the_tagger_and_failures_have_reasons() -> None:
    item = dict(_through_expand()[0], question="Q", response="A", similarity_to_original=0.5)
    lost = core.after_retag(item, result('{"tags": [{"tag": "physics", "explanation": ""}]}'),
                            CFG)
    assert lost.reason == "complexity_loss" and lost.detail["required"] == 2
    # an answer that cannot be read raises (the kit rejects it as <step>_unparseable);
    # a rule on a parsed answer is a Failure with its reason
    with pytest.raises(ParseError, match="truncated_json"):
        core.after_retag(item, result('{"tags": [{"tag": "phys'), CFG)
    with pytest.raises(ParseError, match="invalid_json"):
        core.after_compress(item, result("no json"), CFG)
    with pytest.raises(ParseError, match="missing_question"):
        core.after_reconstruct(item, result('{"q": 1}'), embed, CFG)
    few = core.after_tag(item, result('{"tags": []}'), CFG)
    assert few.reason == "tag_too_few_tags" and few.detail["raw"] == '{"tags": []}'


PAPER = TagInstructConfig(num_candidates=3, best_of_n_rewrite=False, filters=False,
                          instag_tagger=False, answer_format="brackets",
                          respond_template="alpaca", min_reward_margin=None)


def test_paper_mode_steps_keep_every_parsed_output() -> None:
    item = core.after_compress(core.start_item(ROW, 1),
                               result("[Tags]\nPhysics, Light Scattering, Optics"), PAPER)
    assert item["tags_before"] == ["Physics", "Light Scattering", "Optics"]  # as written
    greedy = core.build_request("expand", item, PAPER, 0)
    assert greedy.json_schema is None and greedy.payload["id"] == "parent-1"
    item = core.after_expand_one(item, result("[Explanation] depth\n[New Tag] Optics"), PAPER)
    assert item["chosen_tag"] == "Optics"  # repeating a tag: no filter in paper mode
    rec = core.build_request("reconstruct", item, PAPER, 0).messages[-1][1]
    assert "Physics, Light Scattering, Optics, Optics" in rec
    # the same question back and a cut answer: both go on without filters
    item = core.after_reconstruct(item, result("[New Question]\nExplain why the sky is blue."),
                                  emb, PAPER)
    assert item["question"] == "Explain why the sky is blue."
    ask = core.build_request("respond", item, PAPER, 0).messages[-1][1]
    assert ask.startswith("Below is an instruction") and "### Instruction:\n" in ask
    item = core.after_respond(item, result("It scatt", finish_reason="length"), emb, PAPER)
    row = rows.new_example(item, PAPER)
    assert row["meta"]["tags"] == ["Physics", "Light Scattering", "Optics"]
    assert row["meta"]["ti_chosen_reward"] is None
    assert "expand_brackets" in row["meta"]["lineage"]["template_version"]
    examples_to_batch([row])


def test_paper_pairs_any_two_parseable_candidates() -> None:
    item = core.after_compress(core.start_item(ROW, 1), result("a, b, c"), PAPER)
    answers = ("[Explanation] x\n[New Tag] proof", "[New Tag] trivia",   # no explanation
               "[Explanation] y\n[New Tag] emoji")
    _, pair, info = core.after_expand(item, candidates(*answers), REFS, embed, PAPER)
    assert info["problems"] == {"missing_explanation": 1} and info["pair_skip"] is None
    assert pair["chosen"][0]["content"] == "[Explanation] x\n[New Tag] proof"
    assert pair["rejected"][0]["content"] == "[Explanation] y\n[New Tag] emoji"
    assert pair["prompt"][-1]["content"].startswith("Add exactly one new tag")
