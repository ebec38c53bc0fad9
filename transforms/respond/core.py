"""Pure core of the respond stage (no Beam): which rows are answered, the request of each
pending user turn, and the choice among its n sampled answers.

An item travels through the turns of one row: {"row": the input Example row, "messages": the
conversation so far, "turn": user turns answered, "scores": best judge score per turn}. A
turn is pending when a user message is not followed by an assistant one; turns are answered
in order, each answer inserted right after its user message, so later turns see it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from schemas.ids import content_id, derive_seed, example_id, pair_id
from schemas.records import empty_lineage, example_row, pair_row
from schemas.text import normalize_text
from schemas.turns import is_prompt_only
from transforms.kit import Rejection
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.respond.config import RespondConfig

STAGE = "respond"
METHOD = "respond"
PAIR_METHOD = "respond_best_vs_worst"
TEXT_LIMIT = 500  # characters of an answer kept in a rejection's detail


class Candidate(NamedTuple):
    index: int
    text: str
    finish: str  # "stop", "length" or "" (the backend did not say)


class Choice(NamedTuple):
    """What became of one turn: the next item (None when rejected), the pair it produced."""

    item: dict[str, Any] | None
    pair: dict[str, Any] | None = None
    rejection: Rejection | None = None


def pending_turn(messages: Sequence[Mapping[str, str]]) -> int | None:
    """Index of the first user message not followed by an assistant answer, or None."""
    for i, m in enumerate(messages):
        if m["role"] == "user" and (i + 1 == len(messages) or messages[i + 1]["role"] != "assistant"):
            return i
    return None


def pending_count(messages: Sequence[Mapping[str, str]]) -> int:
    return sum(1 for i, m in enumerate(messages) if m["role"] == "user" and (
        i + 1 == len(messages) or messages[i + 1]["role"] != "assistant"))


def start_item(row: dict[str, Any], config: RespondConfig) -> dict[str, Any] | Rejection | None:
    """The item of a row to answer, a Rejection, or None for a row that is not this stage's
    (it already ends with an answer and `overwrite` is off)."""
    messages = [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    if config.overwrite:
        if any(m["role"] == "tool" for m in messages):
            return Rejection(row, "tool_turns", {"why": "overwrite drops assistant turns, and "
                                                 "tool results would lose their calls"})
        messages = [m for m in messages if m["role"] != "assistant"]
    elif not is_prompt_only(messages):
        return None
    turns = pending_count(messages)
    if turns == 0:
        return Rejection(row, "no_user_turn", None)
    if turns > config.max_turns:
        return Rejection(row, "too_many_turns", {"turns": turns, "max_turns": config.max_turns})
    return {"row": row, "messages": messages, "turn": 0, "scores": []}


def template_version(config: RespondConfig) -> str:
    """`respond.answer@<hash of the system prompt>`: part of the response cache key."""
    return f"{STAGE}.answer@{content_id(config.system_prompt or '')[:12]}"


def request_key(item: Mapping[str, Any]) -> str:
    """`<row id>.<source hash>:<turn>`: unique per input row (copies of one prompt from two
    sources are answered separately) and per turn."""
    row = item["row"]
    return f"{row['id']}.{content_id(row.get('source'))[:8]}:{item['turn']}"


def prompt_of(item: Mapping[str, Any]) -> list[dict[str, str]]:
    """The conversation up to and including the pending user turn."""
    i = pending_turn(item["messages"])
    if i is None:
        raise ValueError(f"row {item['row']['id']}: no pending user turn")
    return item["messages"][:i + 1]


def build_request(item: dict[str, Any], config: RespondConfig, seed: int) -> ChatRequest:
    """The chat call answering the item's pending turn: n samples, seeded by row and turn."""
    messages = prompt_of(item)
    if config.system_prompt and not any(m["role"] == "system" for m in messages):
        messages = [{"role": "system", "content": config.system_prompt}, *messages]
    s = config.sampling
    return ChatRequest(
        key=request_key(item), messages=tuple((m["role"], m["content"]) for m in messages),
        sampling=SamplingParams(temperature=s.temperature, top_p=s.top_p,
                                max_tokens=s.max_tokens, n=config.n,
                                seed=derive_seed(seed, item["row"]["id"], item["turn"])),
        template_version=template_version(config), payload=item)


def candidates(result: ChatResult) -> list[Candidate]:
    finish = result.finish_reasons or ("",) * len(result.texts)
    return [Candidate(k, normalize_text(text), str(why or ""))
            for k, (text, why) in enumerate(zip(result.texts, finish, strict=True))]


def judge_row(item: Mapping[str, Any], cand: Candidate) -> dict[str, Any]:
    """An Example row of one candidate answer for the quality judge; its id names the turn
    and the sample (`<row id>:<turn>:<sample>`)."""
    messages = [*prompt_of(item), {"role": "assistant", "content": cand.text}]
    return example_row(f"{request_key(item)}:{cand.index}", messages)


def choose(item: dict[str, Any], cands: Sequence[Candidate],
           scores: Mapping[int, float | None], config: RespondConfig, model: str,
           unread: Mapping[int, dict[str, Any]] | None = None) -> Choice:
    """Keep the best-scored usable answer (ties: the lower sample; no scores: the first);
    answers cut by max_tokens or empty are not usable, nor those whose rating could not be
    read (`unread`: sample → the judge's rejection detail; when that leaves none, the row is
    rejected `judge_unparseable`). A pair of the best and the worst scored answers when their
    margin reaches `pair_margin`."""
    usable = [c for c in cands if c.finish != "length" and c.text]
    if not usable:
        reason = "response_truncated" if any(c.finish == "length" for c in cands) \
            else "empty_response"
        return Choice(None, rejection=Rejection(item["row"], reason, {
            "turn": item["turn"], "finish_reasons": [c.finish for c in cands],
            "answers": [c.text[:TEXT_LIMIT] for c in cands]}))
    unread = unread or {}
    if all(c.index in unread for c in usable):
        return Choice(None, rejection=Rejection(item["row"], "judge_unparseable", {
            "turn": item["turn"], **unread[usable[0].index]}))
    usable = [c for c in usable if c.index not in unread]
    scored = [(scores[c.index], c) for c in usable if scores.get(c.index) is not None]
    best_score, best = max(scored, key=lambda sc: (sc[0], -sc[1].index)) if scored \
        else (None, usable[0])
    prompt = prompt_of(item)
    pair = None
    if len(scored) >= 2:
        worst_score, worst = min(scored, key=lambda sc: (sc[0], sc[1].index))
        if best_score - worst_score >= config.pair_margin and best.text != worst.text:
            pair = best_vs_worst(item, prompt, (best_score, best), (worst_score, worst), model,
                                 template_version(config))
    i = len(prompt)
    messages = [*prompt, {"role": "assistant", "content": best.text}, *item["messages"][i:]]
    return Choice({**item, "messages": messages, "turn": item["turn"] + 1,
                   "scores": [*item["scores"], best_score], "model": model}, pair=pair)


def lineage(row: Mapping[str, Any], model: str, version: str, method: str) -> dict[str, Any]:
    return {**empty_lineage(), "parent_ids": [row["id"]], "stage": STAGE, "method": method,
            "model": model, "template_version": version}


def best_vs_worst(item: Mapping[str, Any], prompt: list[dict[str, str]],
                  best: tuple[float, Candidate], worst: tuple[float, Candidate],
                  model: str, version: str) -> dict[str, Any]:
    row = item["row"]
    chosen = [{"role": "assistant", "content": best[1].text}]
    rejected = [{"role": "assistant", "content": worst[1].text}]
    extra = {"turn": item["turn"], "chosen_score": best[0], "rejected_score": worst[0],
             "chosen_sample": best[1].index, "rejected_sample": worst[1].index}
    return pair_row(pair_id(prompt, chosen, rejected), prompt, chosen, rejected, row["source"],
                    method=PAIR_METHOD, parent_id=row["id"], extra=json.dumps(extra),
                    lineage=lineage(row, model, version, PAIR_METHOD))


def answered_example(item: Mapping[str, Any], model: str, version: str) -> dict[str, Any]:
    """The Example of a row whose every turn is answered (lineage: parent = the prompt row)."""
    row = item["row"]
    meta = row.get("meta") or {}
    base = {k: meta.get(k) for k in ("category", "context", "answer", "extra")}
    return example_row(example_id(item["messages"]), item["messages"], row["source"],
                       tags=list(meta.get("tags") or []), **base,
                       lineage=lineage(row, model, version, METHOD))
