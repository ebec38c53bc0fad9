"""JudgeScores: DEITA-style LLM ratings of quality (the response to the instruction) and
complexity (the instruction), through the serving layer.

Reads Example batches. Writes meta.q_judge_<aspect> (float64, 1..scale) for each configured
aspect and meta.q_judge_note (string: null when every rating came back, else what failed).
Score: where the backend returns logprobs, the expected rating over the rating tokens'
probabilities at the rating position of the answer; otherwise the JSON answer's integer
(`schemas/llm/quality_judge.json`). The judge is a kit step (`judge_spec`): a row whose call
fails keeps a null score and a note, the dead-letter entry (stage `quality.judge`, step
`judge`, error + raw answer) goes to DEADLETTER (that stage is not a curation stage, so the
manifest does not count the kept row twice); a row with a rating that cannot be read (not
JSON, off the schema, no rating in 1..scale) goes to REJECTED as `judge_unparseable` with the
raw answer. Counters in refinery.quality.judge: judged, judge_failed, judge_skipped (no
instruction / response), score_<logprobs|json|text>.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import apache_beam as beam
import pyarrow as pa

from schemas.ids import derive_seed
from schemas.records import with_meta
from schemas.turns import is_prompt_only
from transforms.base import DEADLETTER, MAIN, REJECTED, RunContext
from transforms.kit import Rejection, RunStep, StepSpec, count
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.llm.prompts import Prompt, load_prompt
from transforms.llm.structured import parse_json_answer
from transforms.quality.config import JudgeConfig

JUDGE_STAGE = "quality.judge"
MAX_TOKENS = 64  # '{"rating":N,"reason":"…"}' with a reason of at most 96 chars
TOP_LOGPROBS = 20  # alternatives per generated token asked from the backend
_SCORE_RE = re.compile(r'"?(?:score|rating)"?\s*[:=]\s*"?(\d+(?:\.\d+)?)', re.IGNORECASE)
_LONE_DIGIT_RE = re.compile(r"(?<![\d.])(\d)(?![\d.])")


# ---------------------------------------------------------------- pure core: prompts, schema

def judge_prompt(aspect: str) -> Prompt:
    """transforms/quality/prompts/judge_<aspect>.jinja with schemas/llm/quality_judge.json."""
    return load_prompt("quality", f"judge_{aspect}", schema="judge")


def template_version(aspect: str) -> str:
    """`quality.judge_<aspect>@<content hash>`, part of the response cache key."""
    return judge_prompt(aspect).version


def answer_schema(scale: int, aspect: str = "quality") -> dict[str, Any]:
    """The JSON Schema of a rating, its maximum set to `scale`."""
    schema = judge_prompt(aspect).answer_schema()
    schema["properties"]["rating"]["maximum"] = scale
    return schema


def split_turns(messages: Sequence[Mapping[str, Any]] | None) -> tuple[list[dict[str, str]], str]:
    """(messages before the last assistant turn, that turn's content); (all messages, '') when
    there is none or the conversation ends with a user turn (a prompt awaiting its answer)."""
    msgs = [{"role": str(m.get("role") or ""), "content": str(m.get("content") or "")}
            for m in messages or []]
    if is_prompt_only(msgs):
        return msgs, ""
    for i in range(len(msgs) - 1, -1, -1):
        if msgs[i]["role"] == "assistant":
            return msgs[:i], msgs[i]["content"]
    return msgs, ""


def instruction_text(prompt: Sequence[Mapping[str, str]]) -> str:
    """The instruction shown to the judge: user (and system) turns, joined."""
    return "\n\n".join(m["content"] for m in prompt
                       if m["role"] in ("system", "user") and m["content"].strip())


def _clip(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[:max_chars] + " […]"


def batch_key(batch: pa.RecordBatch) -> str:
    """A content key of a batch (its ids in order), used to join ratings back to it."""
    ids = batch.column("id").to_pylist()
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()[:20]


def judge_requests(batch: pa.RecordBatch, config: JudgeConfig, seed: int, bkey: str
                   ) -> tuple[list[ChatRequest], dict[tuple[int, str], str]]:
    """(one ChatRequest per row and aspect, {(row, aspect): note} for ratings not asked:
    no instruction, or no response for `quality`). Request key: `<bkey>:<row>:<aspect>:<id>`."""
    schema = answer_schema(config.scale)
    requests, skipped = [], {}
    ids = batch.column("id").to_pylist()
    for row, (rid, messages) in enumerate(zip(ids, batch.column("messages").to_pylist(),
                                              strict=True)):
        prompt, response = split_turns(messages)
        instruction = instruction_text(prompt)
        for aspect in config.aspects:
            if not instruction.strip():
                skipped[(row, aspect)] = f"{aspect}: no_instruction"
                continue
            if aspect == "quality" and not response.strip():
                skipped[(row, aspect)] = f"{aspect}: no_response"
                continue
            text = judge_prompt(aspect).render(
                scale=config.scale, instruction=_clip(instruction, config.max_chars),
                response=_clip(response, config.max_chars))
            requests.append(ChatRequest(
                key=f"{bkey}:{row}:{aspect}:{rid}", messages=(("user", text),),
                sampling=SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS,
                                        seed=derive_seed(seed, str(rid), aspect)),
                json_schema=schema, logprobs=TOP_LOGPROBS if config.use_logprobs else None,
                template_version=template_version(aspect)))
    return requests, skipped


def parse_request_key(key: str) -> tuple[str, int, str]:
    """(batch key, row, aspect) of a request key."""
    bkey, row, aspect, _ = key.split(":", 3)
    return bkey, int(row), aspect


# ---------------------------------------------------------------- pure core: scores

def expected_rating(candidates: Iterable[tuple[str, float | None]], scale: int,
                    prefix: str = "") -> float | None:
    """Expected rating over the candidate tokens that are a rating 1..scale (after dropping
    `prefix`, the text the chosen token had before its digit, and whitespace), their
    probabilities renormalized; the same token text counts once. None when no candidate is a
    rating."""
    seen: dict[str, float] = {}
    for tok, lp in candidates:
        if tok is None or lp is None or not math.isfinite(lp) or tok in seen:
            continue
        seen[tok] = lp
    ratings: dict[int, list[float]] = {}
    for tok, lp in seen.items():
        t = tok[len(prefix):] if prefix and tok.startswith(prefix) else tok
        t = t.strip()
        if len(t) == 1 and t.isdigit() and 1 <= int(t) <= scale:
            ratings.setdefault(int(t), []).append(lp)
    if not ratings:
        return None
    top = max(lp for lps in ratings.values() for lp in lps)
    weights = {r: sum(math.exp(lp - top) for lp in lps) for r, lps in ratings.items()}
    total = sum(weights.values())
    return sum(r * w for r, w in weights.items()) / total


def rating_position(tokens: Sequence[str], scale: int) -> tuple[int, str] | None:
    """(index of the generated token holding the rating digit, the text of that token before
    the digit): the value of `"rating":` (or `"score":`) in a JSON answer, else the first lone
    digit 1..scale."""
    starts, text = [], ""
    for tok in tokens:
        starts.append(len(text))
        text += tok or ""
    m = re.search(r'"(?:rating|score)"\s*:\s*(\d)', text)
    pos = m.start(1) if m else None
    if pos is None:
        for lone in _LONE_DIGIT_RE.finditer(text):
            if 1 <= int(lone.group(1)) <= scale:
                pos = lone.start(1)
                break
    if pos is None:
        return None
    idx = max(i for i, s in enumerate(starts) if s <= pos)
    return idx, text[starts[idx]:pos]


def logprob_score(entries: Sequence[Mapping[str, Any]] | None, scale: int) -> float | None:
    """Expected rating at the rating position of one answer's per-token logprobs
    ([{token, logprob, top: [[token, logprob], ...]}]); None when it cannot be found."""
    if not entries:
        return None
    where = rating_position([str(e.get("token") or "") for e in entries], scale)
    if where is None:
        return None
    idx, prefix = where
    entry = entries[idx]
    candidates = [(str(e[0]), e[1]) for e in entry.get("top") or [] if len(e) == 2]
    candidates.append((str(entry.get("token") or ""), entry.get("logprob")))
    return expected_rating(candidates, scale, prefix)


def parse_rating(text: str | None, scale: int) -> tuple[int | None, str, str | None]:
    """(rating, reason, error) from a judge's answer text: the JSON object's `rating` (or
    `score`), else a `score: N` / `rating = N` in prose, else a lone digit. error is set (rating None) when
    nothing in 1..scale is found."""
    text = (text or "").strip()
    if not text:
        return None, "", "empty_answer"
    reason, raw = "", None
    try:
        value = parse_json_answer(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        reason = str(value.get("reason") or "")
        raw = value.get("rating", value.get("score"))
    elif isinstance(value, int | float) and not isinstance(value, bool):
        raw = value
    if raw is None:
        m = _SCORE_RE.search(text)
        if m:
            raw = m.group(1)
        else:
            lone = _LONE_DIGIT_RE.search(text)
            raw = lone.group(1) if lone else None
    if raw is None or isinstance(raw, bool):
        return None, reason, "no_rating_in_answer"
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return None, reason, f"rating_not_a_number: {str(raw)[:40]}"
    if not number.is_integer() or not 1 <= number <= scale:
        return None, reason, f"rating_out_of_range: {raw}"
    return int(number), reason, None


def result_score(result: ChatResult, scale: int, use_logprobs: bool
                 ) -> tuple[float | None, str, str | None]:
    """(score, method, error) of one judge answer: 'logprobs', 'json' or 'text'."""
    if use_logprobs and result.logprobs:
        score = logprob_score(result.logprobs[0], scale)
        if score is not None:
            return score, "logprobs", None
    if result.parsed and isinstance(result.parsed[0], dict):
        rating, _, error = parse_rating(json.dumps(result.parsed[0]), scale)
        if error is None:
            return float(rating), "json", None
    rating, _, error = parse_rating(result.texts[0] if result.texts else "", scale)
    return (None, "text", error) if error else (float(rating), "text", None)


def attach_ratings(batch: pa.RecordBatch, aspects: Sequence[str],
                   ratings: Mapping[tuple[int, str], tuple[float | None, str | None]]
                   ) -> pa.RecordBatch:
    """`batch` with meta.q_judge_<aspect> and meta.q_judge_note from {(row, aspect):
    (score, note)}; a (row, aspect) absent from `ratings` gets a null score and `missing`."""
    n = batch.num_rows
    notes: list[list[str]] = [[] for _ in range(n)]
    columns: dict[str, pa.Array] = {}
    for aspect in aspects:
        values = []
        for row in range(n):
            score, note = ratings.get((row, aspect), (None, f"{aspect}: missing"))
            values.append(score)
            if note:
                notes[row].append(note)
        columns[f"q_judge_{aspect}"] = pa.array(values, pa.float64())
    columns["q_judge_note"] = pa.array(["; ".join(x) if x else None for x in notes], pa.string())
    return with_meta(batch, **columns)


# ---------------------------------------------------------------- Beam shell

def _is_skip(note: str) -> bool:
    return note.endswith(("no_instruction", "no_response"))


class _Attach(beam.DoFn):
    """(batch key, {batch: [...], rating: [...]}) → the batches with their ratings; a row with
    an unreadable rating → REJECTED (`judge_unparseable`, once per row)."""

    def __init__(self, aspects: Sequence[str], stage: str):
        self._aspects, self._stage = tuple(aspects), stage

    def process(self, element: tuple[str, dict[str, list[Any]]]) -> Iterable[Any]:
        _, groups = element
        ratings: dict[tuple[int, str], tuple[float | None, str | None]] = {}
        unread: dict[int, tuple[str, dict[str, Any]]] = {}
        # identical batches share a key and get identical answers; sorted for determinism
        for row, aspect, score, note, *rej in sorted(
                groups["rating"], key=lambda t: (t[0], t[1], t[3] or "")):
            ratings[(row, aspect)] = (score, note)
            if rej:
                unread.setdefault(row, rej[0])
        for batch in groups["batch"]:
            rows = batch.to_pylist() if unread else []
            for row in range(batch.num_rows):
                if row in unread:
                    reason, detail = unread[row]
                    yield beam.pvalue.TaggedOutput(REJECTED, Rejection(rows[row], reason, detail))
                    continue
                notes = [ratings.get((row, a), (None, "missing"))[1] or "" for a in self._aspects]
                skipped = [_is_skip(n) for n in notes]
                if any(n and not s for n, s in zip(notes, skipped, strict=True)):
                    count(JUDGE_STAGE, "judge_failed")
                else:
                    count(JUDGE_STAGE, "judge_skipped" if any(skipped) else "judged")
            keep = [r not in unread for r in range(batch.num_rows)]
            kept = batch.filter(pa.array(keep)) if unread else batch
            index = [r for r in range(batch.num_rows) if keep[r]]
            if kept.num_rows:
                yield attach_ratings(kept, self._aspects, {
                    (i, a): ratings[(r, a)] for i, r in enumerate(index) for a in self._aspects
                    if (r, a) in ratings})


def _requests_of(keyed: tuple[str, pa.RecordBatch], config: JudgeConfig, seed: int
                 ) -> Iterable[Any]:
    bkey, batch = keyed
    requests, skipped = judge_requests(batch, config, seed, bkey)
    yield from requests
    for (row, aspect), note in sorted(skipped.items()):
        yield beam.pvalue.TaggedOutput("skipped", (bkey, (row, aspect, None, note)))


def _rating_of(result: ChatResult, scale: int, use_logprobs: bool) -> tuple[str, tuple]:
    """A judge answer → (batch key, (row, aspect, score, None)); raises when no rating in
    1..scale can be read (the kit rejects the row as `judge_unparseable`)."""
    bkey, row, aspect = parse_request_key(result.key)
    score, method, error = result_score(result, scale, use_logprobs)
    if error is not None:
        raise ValueError(f"{aspect}: {error}")
    count(JUDGE_STAGE, f"score_{method}")
    return bkey, (row, aspect, score, None)


def _failed_rating(entry: dict[str, Any]) -> tuple[str, tuple]:
    bkey, row, aspect = parse_request_key(entry["record_id"])
    return bkey, (row, aspect, None, f"{aspect}: llm_deadletter ({entry['error'][:120]})")


def _unread_rating(rejection: Rejection) -> tuple[str, tuple]:
    bkey, row, aspect = parse_request_key(rejection.row["id"])
    detail = {**(rejection.detail or {}), "aspect": aspect}
    return bkey, (row, aspect, None, f"{aspect}: {rejection.reason}",
                  (rejection.reason, detail))


def judge_spec(config: JudgeConfig) -> StepSpec:
    """The judge step: a request per (row, aspect) (judge_requests) → its rating. A failed
    rating is rejected by its request key (JudgeScores puts the row back)."""
    return StepSpec("judge", judge_prompt("quality"), build=_with_key,
                    parse=partial(_rating_of, scale=config.scale,
                                  use_logprobs=config.use_logprobs),
                    row_of=lambda payload: {"id": payload["key"]}, role="judge")


def _with_key(request: ChatRequest) -> ChatRequest:
    return dataclasses.replace(request, payload={"key": request.key})


class JudgeScores(beam.PTransform):
    """Example batches → {MAIN: the rows with q_judge_* in meta, REJECTED: `Rejection`s of the
    rows a rating of which could not be read (`judge_unparseable`, the raw answer in the
    detail), DEADLETTER: the failed judge calls (their rows stay in MAIN with a null score).
    `ctx.backend_factory` replaces the configured backend (tests script the judge with it)."""

    def __init__(self, config: JudgeConfig, ctx: RunContext, *, label: str | None = None,
                 stage: str = "quality"):
        super().__init__(label)
        self.config, self.ctx, self.stage = config, ctx, stage  # stage: whose `judge` role

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        cfg, ctx = self.config, self.ctx
        keyed = batches | "KeyBatches" >> beam.Map(lambda b: (batch_key(b), b))
        made = keyed | "Requests" >> beam.FlatMap(_requests_of, cfg, ctx.seed).with_outputs(
            "skipped", main=MAIN)
        spec = dataclasses.replace(judge_spec(cfg), deadletter_stage=JUDGE_STAGE
                                   if self.stage == "quality" else f"{self.stage}.judge")
        judged = made[MAIN] | "Judge" >> RunStep(spec, ctx, stage=self.stage)
        failed = judged[DEADLETTER] | "Failed" >> beam.Map(_failed_rating)
        unread = judged[REJECTED] | "Unread" >> beam.Map(_unread_rating)
        ratings = (judged[MAIN], failed, unread, made["skipped"]) | "AllRatings" >> beam.Flatten()
        out = ({"batch": keyed, "rating": ratings}
               | "Join" >> beam.CoGroupByKey()
               | "Attach" >> beam.ParDo(_Attach(cfg.aspects, self.stage)).with_outputs(
                   REJECTED, main=MAIN))
        return {MAIN: out[MAIN], REJECTED: out[REJECTED], DEADLETTER: judged[DEADLETTER]}
