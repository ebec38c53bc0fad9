"""The pure core of one TAG-INSTRUCT round, step by step, over plain dict "items".

An item is the JSON-able state of one instruction inside a round: the parent Example row, the
round, the seed's id, and what each step added (tags, candidates, question, answer). Each
`after_<step>` reads a ChatResult and returns the item for the next step or a `Failure`
(the reject reason). Requests carry the item as payload, so nothing is kept between steps.
Embeddings come in through `embed(texts) -> (n, d) L2-normalized array`. No Beam here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from schemas.ids import content_id, example_id, pair_id
from schemas.records import empty_lineage, example_row, first_turn, pair_row
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.tag_instruct import templates
from transforms.tag_instruct.config import StepSampling, TagInstructConfig
from transforms.tag_instruct.parsers import (
    Candidate,
    ParseError,
    parse_candidate,
    parse_compress,
    parse_question,
    parse_response,
    parse_retag,
)
from transforms.tag_instruct.reward import best_and_worst, rewards
from transforms.tag_instruct.tags import overlaps
from transforms.tag_instruct.utility import ReferenceSets, count_tokens
from transforms.tag_instruct.verify import (
    Failure,
    check_complexity,
    check_question,
    check_response,
)

STAGE = "tag_instruct"
Embed = Callable[[Sequence[str]], np.ndarray]


def start_item(row: Mapping[str, Any], round_no: int, root_id: str | None = None
               ) -> dict[str, Any] | Failure:
    """An Example row → the item entering `round_no`, or Failure('no_instruction'). The root
    id (the seed's) comes from `root_id`, the row's meta.ti_root_id, or the row's id."""
    instruction = first_turn(row["messages"], "user").strip()
    if not instruction:
        return Failure("no_instruction", {"round": round_no})
    root = root_id or (row.get("meta") or {}).get("ti_root_id") or row["id"]
    return {"id": row["id"], "row": dict(row), "round": round_no, "root_id": root, "instruction": instruction,
            "answer": first_turn(row["messages"], "assistant").strip(), "models": {}}


def step_seed(run_seed: int, item_id: str, round_no: int, step: str) -> int:
    """A 31-bit sampling seed from the run seed, record id, round and step."""
    return int(content_id(run_seed, item_id, round_no, step)[:8], 16) & 0x7FFFFFFF


def _sampling(s: StepSampling, seed: int, n: int = 1) -> SamplingParams:
    return SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
                          n=n, seed=seed)


def build_request(step: str, item: Mapping[str, Any], cfg: TagInstructConfig,
                  run_seed: int) -> ChatRequest:
    """The ChatRequest of `step` for `item` (rendered template, sampling, answer schema)."""
    if step == "compress":
        user = templates.render("compress", instruction=item["instruction"],
                                num_tags=cfg.num_tags)
        sampling, n = cfg.compress, 1
    elif step == "expand":
        user = templates.render("expand", instruction=item["instruction"],
                                tags=item["tags_before"])
        sampling, n = cfg.expand, cfg.num_candidates
    elif step == "reconstruct":
        user = templates.render("reconstruct", instruction=item["instruction"],
                                tags=item["tags_used"])
        sampling, n = cfg.reconstruct, 1
    elif step == "respond":
        user = templates.render("respond", question=item["question"])
        sampling, n = cfg.respond, 1
    elif step == "retag":
        user = templates.render("retag", question=item["question"], max_tags=cfg.max_retag)
        sampling, n = cfg.retag, 1
    else:
        raise KeyError(step)
    messages: tuple[tuple[str, str], ...] = ((("system", cfg.system_prompt),)
                                             if cfg.system_prompt else ()) + (("user", user),)
    return ChatRequest(
        key=f"{item['id']}|r{item['round']}|{step}",
        messages=messages,
        sampling=_sampling(sampling, step_seed(run_seed, item["id"], item["round"], step), n),
        json_schema=templates.answer_schema(step, cfg.num_tags, cfg.max_retag,
                                           cfg.max_question_chars),
        template_version=templates.version(step),
        payload=dict(item),
    )


def _answer(result: ChatResult, i: int = 0) -> tuple[str | None, Any]:
    text = result.texts[i] if i < len(result.texts) else None
    parsed = result.parsed[i] if result.parsed is not None and i < len(result.parsed) else None
    return text, parsed


def _advance(item: Mapping[str, Any], result: ChatResult, step: str, **fields: Any
             ) -> dict[str, Any]:
    out = dict(item)
    out["models"] = {**item.get("models", {}), step: result.model}
    out.update(fields)
    return out


def _parse_failure(step: str, err: ParseError, result: ChatResult) -> Failure:
    return Failure(f"{step}_{err.reason}", {"error": str(err), "raw": (result.texts or [""])[0]})


def after_compress(item: Mapping[str, Any], result: ChatResult, cfg: TagInstructConfig
                   ) -> dict[str, Any] | Failure:
    """Exactly `num_tags` normalized tags, or Failure('compress_<why>')."""
    try:
        tags = parse_compress(*_answer(result), n=cfg.num_tags, max_words=cfg.max_tag_words)
    except ParseError as e:
        return _parse_failure("compress", e, result)
    return _advance(item, result, "compress", tags_before=tags)


def utility_row(item: Mapping[str, Any]) -> tuple[list[str], int] | None:
    """(tags, response tokens) of a compressed item for the utility table; None if no answer."""
    if not item.get("answer"):
        return None
    return list(item["tags_before"]), count_tokens(item["answer"])


def after_expand(item: Mapping[str, Any], result: ChatResult, refs: ReferenceSets,
                 embed: Embed, cfg: TagInstructConfig
                 ) -> tuple[dict[str, Any] | Failure, dict[str, Any] | None]:
    """Parse the N sampled candidates, reward them, choose the best. Returns (item or Failure,
    preference-pair row or None). Candidates repeating or overlapping an existing tag, and
    repeats of an earlier candidate, are discarded."""
    valid: list[Candidate] = []
    problems: list[str] = []
    for i in range(len(result.texts)):
        try:
            cand = parse_candidate(*_answer(result, i), max_words=cfg.max_tag_words)
        except ParseError as e:
            problems.append(e.reason)
            continue
        if overlaps(cand.tag, item["tags_before"]):
            problems.append("overlaps_existing_tag")
        elif any(c.tag == cand.tag for c in valid):
            problems.append("repeated_candidate")
        else:
            valid.append(cand)
    if not valid:
        return Failure("expand_no_valid_candidate",
                       {"problems": problems, "raw": list(result.texts)}), None
    vectors = embed([c.tag for c in valid] + list(refs.top) + list(refs.bottom))
    n, k = len(valid), len(refs.top)
    scores = rewards(vectors[:n], vectors[n:n + k], vectors[n + k:])
    best, worst = best_and_worst([c.tag for c in valid], scores.tolist())
    chosen = valid[best]
    kept = list(item["tags_before"][:cfg.keep_tags])
    new_item = _advance(
        item, result, "expand",
        chosen_tag=chosen.tag, chosen_reward=round(float(scores[best]), 6),
        candidates=[{"tag": c.tag, "reward": round(float(s), 6)}
                    for c, s in zip(valid, scores.tolist(), strict=True)],
        tags_used=kept + [chosen.tag],
    )
    pair = None
    if worst != best:
        pair = tag_pair_row(item, valid[best], valid[worst], float(scores[best]),
                            float(scores[worst]), result.model, cfg)
    return new_item, pair


def tag_pair_row(item: Mapping[str, Any], best: Candidate, worst: Candidate, best_reward: float,
                 worst_reward: float, model: str, cfg: TagInstructConfig) -> dict[str, Any]:
    """A PreferencePair: prompt = the expansion request, chosen/rejected = best/worst tag."""
    request = build_request("expand", item, cfg, 0)
    prompt = request.message_dicts()
    chosen = [{"role": "assistant", "content": best.answer_json()}]
    rejected = [{"role": "assistant", "content": worst.answer_json()}]
    lineage = {**empty_lineage(), "parent_ids": [item["id"]], "stage": STAGE,
               "method": "tag_expansion_reward", "model": model,
               "template_version": templates.version("expand")}
    return pair_row(pair_id(prompt, chosen, rejected), prompt, chosen, rejected,
                    source=item["row"].get("source"), method="tag_instruct_expansion",
                    parent_id=item["id"], lineage=lineage, ti_round=int(item["round"]),
                    ti_chosen_reward=round(best_reward, 6),
                    ti_rejected_reward=round(worst_reward, 6))


def after_reconstruct(item: Mapping[str, Any], result: ChatResult, embed: Embed,
                      cfg: TagInstructConfig) -> dict[str, Any] | Failure:
    """The rebuilt question, checked for length, novelty and not copying the old answer."""
    try:
        question = parse_question(*_answer(result))
    except ParseError as e:
        return _parse_failure("reconstruct", e, result)
    texts = [question, item["instruction"]] + ([item["answer"]] if item["answer"] else [])
    v = embed(texts)
    sim_orig = float(v[0] @ v[1])
    sim_ans = float(v[0] @ v[2]) if item["answer"] else None
    failure = check_question(question, item["instruction"], item["answer"], sim_orig, sim_ans,
                             cfg)
    if failure is not None:
        return Failure(failure.reason, {**failure.detail, "question": question})
    return _advance(item, result, "reconstruct", question=question,
                    similarity_to_original=round(sim_orig, 6))


def after_respond(item: Mapping[str, Any], result: ChatResult, embed: Embed,
                  cfg: TagInstructConfig) -> dict[str, Any] | Failure:
    """The answer to the new question; the question must not copy it."""
    try:
        response = parse_response(_answer(result)[0])
    except ParseError as e:
        return _parse_failure("respond", e, result)
    v = embed([item["question"], response])
    failure = check_response(item["question"], response, float(v[0] @ v[1]), cfg)
    if failure is not None:
        return Failure(failure.reason, {**failure.detail, "question": item["question"]})
    return _advance(item, result, "respond", response=response)


def after_retag(item: Mapping[str, Any], result: ChatResult, cfg: TagInstructConfig
                ) -> dict[str, Any] | Failure:
    """Re-extracted tags of the new question; fewer than before = loss of complexity."""
    try:
        tags_after = parse_retag(*_answer(result), max_tags=cfg.max_retag,
                                 max_words=cfg.max_tag_words)
    except ParseError as e:
        return _parse_failure("retag", e, result)
    failure = check_complexity(item["tags_before"], tags_after, cfg)
    if failure is not None:
        return Failure(failure.reason, {**failure.detail, "question": item["question"]})
    return _advance(item, result, "retag", tags_after=tags_after)


def new_example(item: Mapping[str, Any]) -> dict[str, Any]:
    """The accepted new Example row with its lineage."""
    messages = [{"role": "user", "content": item["question"]},
                {"role": "assistant", "content": item["response"]}]
    models = item["models"]
    model_ids = sorted({m for m in models.values() if m})
    lineage = {"parent_ids": [item["id"]], "stage": STAGE, "method": "tag_instruct",
               "model": ",".join(model_ids) or None,
               "template_version": ";".join(templates.version(s) for s in templates.STEPS)}
    parent_meta = item["row"].get("meta") or {}
    return example_row(
        example_id(messages), messages, source=item["row"].get("source"),
        tags=list(item["tags_after"]), category=parent_meta.get("category"), lineage=lineage,
        ti_round=int(item["round"]), ti_root_id=item["root_id"],
        ti_tags_before=list(item["tags_before"]), ti_tags_used=list(item["tags_used"]),
        ti_tags_after=list(item["tags_after"]), ti_chosen_tag=item["chosen_tag"],
        ti_chosen_reward=float(item["chosen_reward"]),
        ti_candidates=json.dumps(item["candidates"], sort_keys=True),
        ti_similarity_to_original=float(item["similarity_to_original"]),
        ti_models=json.dumps(models, sort_keys=True),
    )


def reject_detail(item: Mapping[str, Any] | None, failure: Failure, step: str,
                  round_no: int) -> dict[str, Any]:
    """What went wrong and how far the item got, for rejected/."""
    detail: dict[str, Any] = {"round": round_no, "step": step, **failure.detail}
    if item:
        for key in ("tags_before", "chosen_tag", "chosen_reward", "tags_used"):
            if key in item:
                detail[key] = item[key]
    return detail
