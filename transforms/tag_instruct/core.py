"""The pure core of one TAG-INSTRUCT round, step by step, over plain dict "items".

An item is the JSON-able state of one instruction inside a round: the parent Example row, the
round, the seed's id, and what each step added (compress tags, tagger tags, candidates, kept
tags, question, answer). Each `after_<step>` reads a ChatResult and returns the item for the
next step or a `Failure` (a rule's reject reason), and raises `ParseError` on an answer it
cannot read. Requests carry the item as payload, except the
N expand requests, which carry only the item id (their answers are grouped back by it).
Embeddings come in through `embed(texts) -> (n, d) L2-normalized array`. No Beam here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from schemas.ids import content_id, pair_id
from schemas.records import empty_lineage, first_turn, pair_row
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.tag_instruct import templates
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.parsers import (
    Candidate,
    ParseError,
    parse_candidate,
    parse_candidate_brackets,
    parse_compress,
    parse_compress_brackets,
    parse_question,
    parse_question_brackets,
    parse_reconstruct,
    parse_response,
    parse_tagger,
)
from transforms.tag_instruct.reward import best_and_worst, pair_skip_reason, rewards
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
    return {"id": row["id"], "row": dict(row), "round": round_no, "root_id": root,
            "instruction": instruction,
            "answer": first_turn(row["messages"], "assistant").strip(), "models": {}}


def step_seed(run_seed: int, item_id: str, round_no: int, step: str) -> int:
    """A 31-bit sampling seed from the run seed, record id, round and step."""
    return int(content_id(run_seed, item_id, round_no, step)[:8], 16) & 0x7FFFFFFF


def variant(step: str, cfg: TagInstructConfig) -> str | None:
    """The template variant of `step` under `cfg` (paper: bracket formats, Alpaca respond)."""
    if step == "respond":
        return "alpaca" if cfg.respond_template == "alpaca" else None
    return "brackets" if cfg.answer_format == "brackets" else None


def _user_message(step: str, item: Mapping[str, Any], cfg: TagInstructConfig) -> str:
    v = variant(step, cfg)
    if step == "compress":
        return templates.render("compress", v, instruction=item["instruction"],
                                num_tags=cfg.num_tags)
    if step in ("tag", "retag"):
        text = item["instruction"] if step == "tag" else item["question"]
        return templates.render("tag", instruction=text, max_tags=cfg.tagger_max_tags)
    if step in ("expand", "pair_expand"):
        return templates.render("expand", v, instruction=item["instruction"],
                                tags=item["tags_before"])
    if step == "reconstruct":
        # brackets (paper): the old tags and the new one as one list
        tags = list(item["tags_before"]) + ([item["chosen_tag"]] if v else [])
        return templates.render("reconstruct", v, instruction=item["instruction"],
                                tags=tags, new_tag=item["chosen_tag"])
    if step == "respond":
        return templates.render("respond", v, question=item["question"])
    raise KeyError(step)


def build_request(step: str, item: Mapping[str, Any], cfg: TagInstructConfig,
                  run_seed: int, candidate: int | None = None) -> ChatRequest:
    """The ChatRequest of `step` for `item` (rendered template, sampling, answer schema).
    Expand is asked once per candidate (`candidate` = 0..N-1, own seed, n=1) so an invalid
    answer fails alone; its payload is only the item id and the candidate number."""
    user = _user_message(step, item, cfg)
    messages: tuple[tuple[str, str], ...] = ((("system", cfg.system_prompt),)
                                             if cfg.system_prompt else ()) + (("user", user),)
    key, seed_step, payload = f"{item['id']}|r{item['round']}|{step}", step, dict(item)
    if candidate is not None:
        key, seed_step = f"{key}|{candidate}", f"{step}{candidate}"
        payload = {"id": item["id"], "round": item["round"], "candidate": candidate}
    s = cfg.sampling(step)
    return ChatRequest(
        key=key, messages=messages,
        sampling=SamplingParams(temperature=s.temperature, top_p=s.top_p,
                                max_tokens=s.max_tokens, n=1,
                                seed=step_seed(run_seed, item["id"], item["round"], seed_step)),
        json_schema=templates.answer_schema(step, cfg.num_tags, cfg.tagger_max_tags,
                                            variant(step, cfg)),
        template_version=templates.version(step, variant(step, cfg)), payload=payload)


def expand_requests(item: Mapping[str, Any], cfg: TagInstructConfig, run_seed: int,
                    step: str = "expand") -> list[ChatRequest]:
    """The N candidate requests of an item (`pair_expand`: the pair path's samples)."""
    return [build_request(step, item, cfg, run_seed, i) for i in range(cfg.num_candidates)]


def _answer(result: ChatResult) -> tuple[str | None, Any]:
    text = result.texts[0] if result.texts else None
    parsed = result.parsed[0] if result.parsed else None
    return text, parsed


def _advance(item: Mapping[str, Any], result: ChatResult, step: str, **fields: Any
             ) -> dict[str, Any]:
    out = dict(item)
    out["models"] = {**item.get("models", {}), step: result.model}
    out.update(fields)
    return out


def _parse_failure(step: str, err: ParseError, result: ChatResult) -> Failure:
    """A rule on a parsed answer → Failure('<step>_<reason>'); an unreadable answer raises
    (the kit rejects it as `<step>_unparseable` with the raw answer)."""
    if err.unreadable:
        raise err
    return Failure(f"{step}_{err.reason}", {"error": str(err), "raw": (result.texts or [""])[0]})


def after_compress(item: Mapping[str, Any], result: ChatResult, cfg: TagInstructConfig
                   ) -> dict[str, Any] | Failure:
    """Exactly `num_tags` normalized tags (the expansion's input; brackets: the comma list as
    written, as many as given), or Failure('compress_*')."""
    try:
        if cfg.answer_format == "brackets":
            tags = parse_compress_brackets(_answer(result)[0])
        else:
            tags = parse_compress(*_answer(result), n=cfg.num_tags, max_words=cfg.max_tag_words)
    except ParseError as e:
        return _parse_failure("compress", e, result)
    return _advance(item, result, "compress", tags_before=tags)


def after_tag(item: Mapping[str, Any], result: ChatResult, cfg: TagInstructConfig
              ) -> dict[str, Any] | Failure:
    """The InsTag tagger's tags of the instruction (complexity before), or Failure('tag_*')."""
    try:
        tags = parse_tagger(*_answer(result), max_tags=cfg.tagger_max_tags,
                            max_words=cfg.max_tag_words)
    except ParseError as e:
        return _parse_failure("tag", e, result)
    return _advance(item, result, "tag", tagger_before=tags)


def utility_row(item: Mapping[str, Any]) -> tuple[list[str], int] | None:
    """(tagger tags, or compress tags without the tagger; response tokens) of an item for the
    utility table; None without an answer."""
    if not item.get("answer"):
        return None
    return list(item.get("tagger_before") or item["tags_before"]), count_tokens(item["answer"])


def candidate_of(result: ChatResult, cfg: TagInstructConfig) -> Candidate:
    """One expand answer → Candidate (brackets: explanation required, as the paper's pair
    builder requires both parts). Raises ParseError."""
    if cfg.answer_format == "brackets":
        return parse_candidate_brackets(_answer(result)[0], max_words=cfg.max_tag_words,
                                        need_explanation=True)
    return parse_candidate(*_answer(result), max_words=cfg.max_tag_words)


def after_expand_one(item: Mapping[str, Any], result: ChatResult, cfg: TagInstructConfig
                     ) -> dict[str, Any] | Failure:
    """The policy's ONE greedy answer → the item with its new tag (best_of_n_rewrite off).
    With `filters`, a tag repeating an existing one is rejected (expand_overlaps_existing_tag)."""
    try:
        if cfg.answer_format == "brackets":
            cand = parse_candidate_brackets(_answer(result)[0], max_words=cfg.max_tag_words)
        else:
            cand = parse_candidate(*_answer(result), max_words=cfg.max_tag_words)
    except ParseError as e:
        return _parse_failure("expand", e, result)
    if cfg.filters and overlaps(cand.tag, item["tags_before"]):
        return Failure("expand_overlaps_existing_tag", {"tag": cand.tag})
    tag = cand.raw_tag if cfg.answer_format == "brackets" else cand.tag
    return _advance(item, result, "expand", chosen_tag=tag, chosen_reward=None,
                    candidates=[{"tag": tag, "explanation": cand.explanation}])


def valid_candidates(item: Mapping[str, Any], results: Sequence[ChatResult],
                     cfg: TagInstructConfig) -> tuple[list[Candidate], Counter[str], str]:
    """The usable candidates in sample order, the problems of the others (one by one: an
    unparseable, existing or repeated tag drops only itself; the last two only with
    `filters`), and the policy's model id."""
    valid: list[Candidate] = []
    problems: Counter[str] = Counter()
    model = ""
    for result in sorted(results, key=lambda r: r.payload["candidate"]):
        model = model or result.model
        try:
            cand = candidate_of(result, cfg)
        except ParseError as e:
            problems[e.reason] += 1
            continue
        if not cfg.filters:
            valid.append(cand)
        elif overlaps(cand.tag, item["tags_before"]):
            problems["overlaps_existing_tag"] += 1
        elif any(c.tag == cand.tag for c in valid):
            problems["repeated_candidate"] += 1
        else:
            valid.append(cand)
    return valid, problems, model


def after_expand(item: Mapping[str, Any], results: Sequence[ChatResult], refs: ReferenceSets,
                 embed: Embed, cfg: TagInstructConfig
                 ) -> tuple[dict[str, Any] | Failure, dict[str, Any] | None, dict[str, Any]]:
    """Reward the candidates that came back, choose the best. Returns (item or Failure, pair row
    or None, info: problems, pair_skip reason, margin). A pair is written only with a real
    preference signal (see `reward.pair_skip_reason`)."""
    valid, problems, model = valid_candidates(item, results, cfg)
    info: dict[str, Any] = {"problems": dict(problems), "returned": len(results),
                            "valid": len(valid), "pair_skip": None, "margin": None}
    if not valid:
        info["pair_skip"] = "no_valid_candidate"
        return Failure("expand_no_valid_candidate", {"problems": dict(problems),
                                                     "returned": len(results)}), None, info
    scores = candidate_rewards(valid, refs, embed, cfg)
    best, worst = best_and_worst(scores)
    margin = float(scores[best] - scores[worst])
    info["margin"] = round(margin, 6)
    info["pair_skip"] = pair_skip_reason(len(valid), bool(refs.top and refs.bottom), margin,
                                         cfg.min_reward_margin)
    chosen = valid[best]
    new_item = dict(item)
    new_item["models"] = {**item.get("models", {}), "expand": model}
    new_item.update(
        chosen_tag=chosen.tag, chosen_reward=round(float(scores[best]), 6),
        candidates=[{"tag": c.tag, "reward": round(float(s), 6)}
                    for c, s in zip(valid, scores, strict=True)])
    pair = None
    if info["pair_skip"] is None:
        pair = tag_pair_row(item, valid[best], valid[worst], float(scores[best]),
                            float(scores[worst]), model, cfg)
    return new_item, pair, info


def candidate_rewards(valid: Sequence[Candidate], refs: ReferenceSets, embed: Embed,
                      cfg: TagInstructConfig) -> list[float]:
    """Rewards of the candidates (brackets: of the tag as the model wrote it, as the paper's
    reward model embeds it; json: of the normalized tag)."""
    texts = [c.raw_tag if cfg.answer_format == "brackets" else c.tag for c in valid]
    vectors = embed(texts + list(refs.top) + list(refs.bottom))
    n, k = len(valid), len(refs.top)
    return rewards(vectors[:n], vectors[n:n + k], vectors[n + k:]).tolist()


def tag_pair_row(item: Mapping[str, Any], best: Candidate, worst: Candidate, best_reward: float,
                 worst_reward: float, model: str, cfg: TagInstructConfig) -> dict[str, Any]:
    """A PreferencePair: prompt = the expansion request, chosen/rejected = best/worst tag (in
    the answer format the policy is asked for)."""
    prompt = build_request("expand", item, cfg, 0).message_dicts()
    chosen = [{"role": "assistant", "content": best.answer_text(cfg.answer_format)}]
    rejected = [{"role": "assistant", "content": worst.answer_text(cfg.answer_format)}]
    lineage = {**empty_lineage(), "parent_ids": [item["id"]], "stage": STAGE,
               "method": "tag_expansion_reward", "model": model,
               "template_version": templates.version("expand", variant("expand", cfg))}
    return pair_row(pair_id(prompt, chosen, rejected), prompt, chosen, rejected,
                    source=item["row"].get("source"), method="tag_instruct_expansion",
                    parent_id=item["id"], lineage=lineage, ti_round=int(item["round"]),
                    ti_chosen_reward=round(best_reward, 6),
                    ti_rejected_reward=round(worst_reward, 6))


def after_reconstruct(item: Mapping[str, Any], result: ChatResult, embed: Embed,
                      cfg: TagInstructConfig) -> dict[str, Any] | Failure:
    """The tags the teacher kept (a subset of the old tags plus the new one, which it must
    keep) and the rebuilt question, checked for length, novelty and not copying the answer.
    Without `filters` (paper) any parsed question goes on."""
    offered = list(item["tags_before"]) + [item["chosen_tag"]]
    try:
        if cfg.answer_format == "brackets":  # the paper: the question alone, no tag list
            kept, question = offered, parse_question_brackets(_answer(result)[0])
        elif cfg.filters:
            kept, question = parse_reconstruct(*_answer(result), offered, item["chosen_tag"],
                                               cfg.max_tag_words)
        else:  # no reconstruct_dropped_new_tag filter: the offered tags are recorded
            kept, question = offered, parse_question(*_answer(result))
    except ParseError as e:
        return _parse_failure("reconstruct", e, result)
    if not cfg.filters:
        return _advance(item, result, "reconstruct", question=question, tags_used=kept,
                        similarity_to_original=None)
    texts = [question, item["instruction"]] + ([item["answer"]] if item["answer"] else [])
    v = embed(texts)
    sim_orig = float(v[0] @ v[1])
    sim_ans = float(v[0] @ v[2]) if item["answer"] else None
    failure = check_question(question, item["instruction"], item["answer"], sim_orig, sim_ans,
                             cfg)
    if failure is not None:
        return Failure(failure.reason, {**failure.detail, "question": question})
    return _advance(item, result, "reconstruct", question=question, tags_used=kept,
                    similarity_to_original=round(sim_orig, 6))


def after_respond(item: Mapping[str, Any], result: ChatResult, embed: Embed,
                  cfg: TagInstructConfig) -> dict[str, Any] | Failure:
    """The answer to the new question: not cut at the token budget, and the question must not
    copy it (both only with `filters`; without: any non-empty answer)."""
    if cfg.filters and result.finish_reason == "length":
        return Failure("response_truncated", {"max_tokens": cfg.respond.max_tokens,
                                              "completion_tokens": result.completion_tokens,
                                              "question": item["question"]})
    try:
        response = parse_response(_answer(result)[0])
    except ParseError as e:
        return _parse_failure("respond", e, result)
    if not cfg.filters:
        return _advance(item, result, "respond", response=response)
    v = embed([item["question"], response])
    failure = check_response(item["question"], response, float(v[0] @ v[1]), cfg)
    if failure is not None:
        return Failure(failure.reason, {**failure.detail, "question": item["question"]})
    return _advance(item, result, "respond", response=response)


def after_retag(item: Mapping[str, Any], result: ChatResult, cfg: TagInstructConfig
                ) -> dict[str, Any] | Failure:
    """The tagger's tags of the new question (same instrument as before); fewer than before
    = loss of complexity."""
    try:
        tags_after = parse_tagger(*_answer(result), max_tags=cfg.tagger_max_tags,
                                  max_words=cfg.max_tag_words)
    except ParseError as e:
        return _parse_failure("retag", e, result)
    failure = check_complexity(item["tagger_before"], tags_after, cfg) if cfg.filters else None
    if failure is not None:
        return Failure(failure.reason, {**failure.detail, "question": item["question"]})
    return _advance(item, result, "retag", tags_after=tags_after)
