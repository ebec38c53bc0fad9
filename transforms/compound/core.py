"""The pure steps of CQ-Syn for one seed: seed → question request → answer request → check
request → accepted or rejected row. No Beam, no model: the stage wires these around Generate.

An item is a JSON-able dict carried in `ChatRequest.payload`: seed, partner, category, and what
each step produced. Each `on_*` function reads a ChatResult and returns a `Step`: the next
request, a rejection (reason + detail with the failing check) or the accepted row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from schemas.ids import example_id
from schemas.records import EXAMPLE_META, EXAMPLE_SCHEMA, first_turn
from transforms.compound import templates
from transforms.compound.categories import slug
from transforms.compound.config import CompoundConfig
from transforms.compound.parsers import parse_answer, parse_check, parse_question, result_payload
from transforms.compound.rule_check import RuleParams, check_answers, check_question
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams

STAGE = "compound"
RAW_LIMIT = 2000  # characters of raw model output kept in a rejection's detail

# Extra meta fields of every row this stage writes (accepted and rejected alike).
EXTRA_META = [
    ("sub_questions", pa.list_(pa.string())),
    ("sub_answers", pa.list_(pa.string())),
    ("seed_id", pa.string()),
    ("partner_id", pa.string()),
    ("partner_similarity", pa.float64()),
    ("llm_check_reason", pa.string()),
]
OUTPUT_SCHEMA = EXAMPLE_SCHEMA.set(
    EXAMPLE_SCHEMA.get_field_index("meta"),
    pa.field("meta", pa.struct(list(EXAMPLE_META) + [pa.field(n, t) for n, t in EXTRA_META])))


@dataclass(frozen=True)
class Step:
    request: ChatRequest | None = None  # the next call, when the item goes on
    row: dict[str, Any] | None = None  # the output row, when the item is finished
    accepted: bool = False
    reason: str | None = None  # why it was rejected
    detail: dict[str, Any] | None = None
    partner_status: str | None = None  # found / fallback / none, for two-subject categories


def rule_params(cfg: CompoundConfig) -> RuleParams:
    return RuleParams(min_sub_questions=cfg.min_sub_questions,
                      max_sub_questions=cfg.max_sub_questions,
                      presence_min_overlap=cfg.presence_min_overlap,
                      min_shared_words=cfg.min_shared_words,
                      answer_min_overlap=cfg.answer_min_overlap,
                      min_seed_words=cfg.min_seed_words)


def seed_text(item: dict[str, Any]) -> str:
    """All seed material of an item: question, answer, context, and the partner's."""
    parts = [item["seed"], item.get("partner") or {}]
    return "\n".join(p.get(k) or "" for p in parts for k in ("question", "answer", "context"))


def seed_from_row(row: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The seed fields of an Example row (first user turn, first assistant turn, meta.context),
    or a reason it cannot seed a compound question."""
    question = first_turn(row.get("messages") or [], "user").strip()
    answer = first_turn(row.get("messages") or [], "assistant").strip()
    if not question:
        return None, "seed_without_question"
    if not answer:
        return None, "seed_without_answer"
    context = ((row.get("meta") or {}).get("context") or "").strip()
    if context and question.endswith(context) and len(question) > len(context):
        question = question[: -len(context)].strip()  # ingest appends the context to the turn
    return {"id": row["id"], "question": question, "answer": answer, "context": context,
            "source": row.get("source")}, None


def _sampling_seed(run_seed: int, seed_id: str, step: str) -> int:
    digest = hashlib.blake2b(f"{run_seed}:{seed_id}:{step}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def _key(item: dict[str, Any], step: str) -> str:
    """Request key: step, category and seed id (the report reads the category back from it)."""
    return f"{STAGE}:{step}:{slug(item['category'])}:{item['seed']['id']}"


def parse_key(key: str) -> tuple[str, str, str] | None:
    """(step, category slug, seed id) of a request key, or None when it is not ours."""
    parts = key.split(":", 3)
    if len(parts) != 4 or parts[0] != STAGE:
        return None
    return parts[1], parts[2], parts[3]


def _request(item: dict[str, Any], step: str, prompt: str, schema: dict[str, Any],
             max_tokens: int, version: str, cfg: CompoundConfig, run_seed: int) -> ChatRequest:
    s = cfg.sampling
    return ChatRequest(
        key=_key(item, step), messages=(("user", prompt),),
        sampling=SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=max_tokens,
                                seed=_sampling_seed(run_seed, item["seed"]["id"], step)),
        json_schema=schema, template_version=version, payload=item)


def question_request(item: dict[str, Any], cfg: CompoundConfig, run_seed: int) -> ChatRequest:
    prompt = templates.render_question(
        item["category"], item["seed"], item.get("partner"), cfg.min_sub_questions,
        cfg.max_sub_questions, cfg.max_seed_chars, cfg.max_context_chars)
    version = templates.question_template(item["category"]).version
    return _request(item, "question", prompt,
                    templates.question_schema(cfg.min_sub_questions, cfg.max_sub_questions),
                    cfg.sampling.question_max_tokens, version, cfg, run_seed)


def reject(item: dict[str, Any], reason: str, detail: dict[str, Any]) -> Step:
    return Step(row=output_row(item), reason=reason, detail=detail,
                partner_status=item.get("partner_status"))


def _raw(result: ChatResult) -> str:
    return (result.texts[0] if result.texts else "")[:RAW_LIMIT]


def on_question(result: ChatResult, cfg: CompoundConfig, run_seed: int) -> Step:
    """Parse step 1, run the question rules; go on to the answer request or reject."""
    item = dict(result.payload)
    item["models"] = {**item.get("models", {}), "question": result.model}
    parsed = parse_question(result_payload(result.parsed, result.texts))
    if not parsed.ok:
        return reject(item, f"question_{parsed.error}",
                       {"check": "parse", "step": "question", "error": parsed.detail,
                        "raw": _raw(result)})
    q = parsed.value
    item["compound_question"], item["sub_questions"] = q.compound_question, list(q.sub_questions)
    fails = check_question(q.compound_question, q.sub_questions, rule_params(cfg),
                           seed_text(item))
    if fails:
        return reject(item, f"rule_{fails[0]['rule']}",
                       {"check": "rule", "step": "question", "failures": fails})
    prompt = templates.render_answer(
        item["category"], q.compound_question, list(q.sub_questions), item["seed"],
        item.get("partner"), cfg.max_seed_chars, cfg.max_context_chars)
    return Step(request=_request(item, "answer", prompt, templates.answer_schema(
        len(q.sub_questions)), cfg.sampling.answer_max_tokens,
        templates.load_template("answer").version, cfg, run_seed))


def on_answer(result: ChatResult, cfg: CompoundConfig, run_seed: int) -> Step:
    """Parse step 2, run the answer rules; go on to the LLM check or reject."""
    item = dict(result.payload)
    item["models"] = {**item.get("models", {}), "answer": result.model}
    parsed = parse_answer(result_payload(result.parsed, result.texts))
    if not parsed.ok:
        return reject(item, f"answer_{parsed.error}",
                       {"check": "parse", "step": "answer", "error": parsed.detail,
                        "raw": _raw(result)})
    a = parsed.value
    item["answer"], item["sub_answers"] = a.answer, list(a.sub_answers)
    fails = check_answers(item["sub_questions"], a.answer, a.sub_answers, rule_params(cfg))
    if fails:
        return reject(item, f"rule_{fails[0]['rule']}",
                       {"check": "rule", "step": "answer", "failures": fails})
    prompt = templates.render_check(
        item["compound_question"], item["sub_questions"], a.answer, item["seed"],
        item.get("partner"), cfg.max_seed_chars, cfg.max_context_chars)
    return Step(request=_request(item, "check", prompt, templates.check_schema(),
                                 cfg.sampling.check_max_tokens,
                                 templates.load_template("check").version, cfg, run_seed))


def on_check(result: ChatResult) -> Step:
    """Parse step 3: accepted only when the answer covers every sub-question and agrees with
    the context."""
    item = dict(result.payload)
    item["models"] = {**item.get("models", {}), "check": result.model}
    parsed = parse_check(result_payload(result.parsed, result.texts))
    if not parsed.ok:
        return reject(item, f"check_{parsed.error}",
                       {"check": "parse", "step": "check", "error": parsed.detail,
                        "raw": _raw(result)})
    c = parsed.value
    item["llm_check_reason"] = c.reason
    verdict = {"check": "llm", "covers_all_sub_questions": c.covers_all_sub_questions,
               "consistent_with_context": c.consistent_with_context, "reason": c.reason}
    if not c.covers_all_sub_questions:
        return reject(item, "llm_check_not_covering", verdict)
    if not c.consistent_with_context:
        return reject(item, "llm_check_inconsistent", verdict)
    return Step(row=output_row(item), accepted=True, partner_status=item.get("partner_status"))


def _versions(item: dict[str, Any]) -> str:
    """'<question template>@<version>,answer@<version>,check@<version>' for the steps reached."""
    parts = [f"{slug(item['category'])}@{templates.question_template(item['category']).version}"]
    if "compound_question" in item:
        parts.append(f"answer@{templates.load_template('answer').version}")
    if "answer" in item:
        parts.append(f"check@{templates.load_template('check').version}")
    return ",".join(parts)


def output_row(item: dict[str, Any]) -> dict[str, Any]:
    """The Example row of an item: user = compound question, assistant = reference answer.
    An item that never got a compound question keeps the seed's turns (for review)."""
    seed, partner = item["seed"], item.get("partner")
    if "compound_question" in item:
        messages = [{"role": "user", "content": item["compound_question"]}]
        if "answer" in item:
            messages.append({"role": "assistant", "content": item["answer"]})
    else:
        messages = [{"role": "user", "content": seed["question"]},
                    {"role": "assistant", "content": seed["answer"]}]
    models = item.get("models", {})
    model = next((m for m in (models.get(s) for s in ("question", "answer", "check")) if m), None)
    parents = [seed["id"]] + ([partner["id"]] if partner else [])
    return {
        "id": example_id(messages),
        "messages": messages,
        "source": seed.get("source") or {"dataset": None, "file": None, "row": None},
        "meta": {
            "tags": [], "category": item["category"], "context": seed.get("context") or None,
            "answer": None, "extra": None,
            "lineage": {"parent_ids": parents, "stage": STAGE,
                        "method": f"cq_syn/{slug(item['category'])}", "model": model,
                        "template_version": _versions(item)},
            "sub_questions": item.get("sub_questions", []),
            "sub_answers": item.get("sub_answers", []),
            "seed_id": seed["id"],
            "partner_id": partner["id"] if partner else None,
            "partner_similarity": item.get("partner_similarity"),
            "llm_check_reason": item.get("llm_check_reason"),
        },
    }


def rows_to_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """Output rows → one RecordBatch with the fixed OUTPUT_SCHEMA (types never inferred)."""
    return pa.RecordBatch.from_pylist(rows, schema=OUTPUT_SCHEMA)
