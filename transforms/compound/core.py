"""The item of CQ-Syn and its record: seed → item → requests; item → output row. Pure, no Beam.

An item is a JSON-able dict carried in `ChatRequest.payload`: seed, partner, category, and what
each step produced (steps.py). The output row is the training example the paper describes: the
user turn holds the context (and the partner's, when the question uses a partner) followed by
the compound question; the assistant turn the reference answer; meta keeps `context`,
`partner_context`, `com_question`, `com_reference`, `sub_questions`, `sub_answers` and the
checks, as the paper's data does.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from schemas.ids import content_id, derive_seed, example_id
from schemas.records import EXAMPLE_META, EXAMPLE_SCHEMA, first_turn
from transforms.compound import templates
from transforms.compound.categories import slug
from transforms.compound.config import CompoundConfig
from transforms.llm.api import ChatRequest, SamplingParams

STAGE = "compound"
STEPS = ("question", "question_check", "answer", "answer_check")
ROLE_OF_STEP = {"question": "writer", "question_check": "judge", "answer": "answer",
                "answer_check": "judge"}
TEMPLATE_OF_STEP = {"question_check": "question_check", "answer": "answer",
                    "answer_check": "answer_check"}

# Extra meta fields of every row this stage writes (accepted and rejected alike).
EXTRA_META = [
    ("partner_context", pa.string()),
    ("com_question", pa.string()),
    ("com_reference", pa.string()),
    ("sub_questions", pa.list_(pa.string())),
    ("sub_answers", pa.list_(pa.string())),
    ("seed_id", pa.string()),
    ("partner_id", pa.string()),
    ("partner_similarity", pa.float64()),
    ("checks", pa.string()),  # JSON: rule result, judge verdicts with their reasoning
]
OUTPUT_SCHEMA = EXAMPLE_SCHEMA.set(
    EXAMPLE_SCHEMA.get_field_index("meta"),
    pa.field("meta", pa.struct(list(EXAMPLE_META) + [pa.field(n, t) for n, t in EXTRA_META])))


def seed_text(item: dict[str, Any]) -> str:
    """All seed material of an item (context first): what sub-questions must be grounded in."""
    parts = [item["seed"], item.get("partner") or {}]
    return "\n".join(p.get(k) or "" for p in parts for k in ("context", "question", "answer"))


def seed_from_row(row: dict[str, Any], require_context: bool = False
                  ) -> tuple[dict[str, Any] | None, str | None]:
    """The seed fields of an Example row (first user turn, first assistant turn, meta.context),
    or a reason it cannot seed a compound question (`seed_without_context` only when
    `require_context`)."""
    question = first_turn(row.get("messages") or [], "user").strip()
    answer = first_turn(row.get("messages") or [], "assistant").strip()
    if not question:
        return None, "seed_without_question"
    if not answer:
        return None, "seed_without_answer"
    context = ((row.get("meta") or {}).get("context") or "").strip()
    if require_context and not context:
        return None, "seed_without_context"
    if context and question.endswith(context) and len(question) > len(context):
        question = question[: -len(context)].strip()  # ingest appends the context to the turn
    return {"id": row["id"], "question": question, "answer": answer, "context": context,
            "source": row.get("source")}, None


def sampling_seed(run_seed: int, item: dict[str, Any], step: str) -> int:
    """Per-request seed, fixed by the run seed, the seed id, the category and the step."""
    return derive_seed(run_seed, item["seed"]["id"], item["category"], step)


def request_key(item: dict[str, Any], step: str) -> str:
    """Request key: step, category and seed id (the report reads the category back from it)."""
    return f"{STAGE}:{step}:{slug(item['category'])}:{item['seed']['id']}"


def parse_key(key: str) -> tuple[str, str, str] | None:
    """(step, category slug, seed id) of a request key, or None when it is not ours."""
    parts = key.split(":", 3)
    if len(parts) != 4 or parts[0] != STAGE:
        return None
    return parts[1], parts[2], parts[3]


def step_version(item: dict[str, Any], step: str) -> str:
    """'compound.<template>@<hash>' of the prompt a step renders."""
    name = slug(item["category"]) if step == "question" else TEMPLATE_OF_STEP[step]
    return templates.load_template(name).version


def make_request(item: dict[str, Any], step: str, prompt: str, schema: dict[str, Any],
                 cfg: CompoundConfig, run_seed: int) -> ChatRequest:
    """The step's request, decoded with its role's settings (`sampling.for_step`)."""
    temperature, top_p, max_tokens = cfg.sampling.for_step(step)
    return ChatRequest(
        key=request_key(item, step), messages=(("user", prompt),),
        sampling=SamplingParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                seed=sampling_seed(run_seed, item, step)),
        json_schema=schema, template_version=step_version(item, step), payload=item)


def question_request(item: dict[str, Any], cfg: CompoundConfig, run_seed: int) -> ChatRequest:
    """The writer's request: the category's prompt over the seed (and partner)."""
    prompt = templates.render_question(
        item["category"], item["seed"], item.get("partner"), cfg.min_sub_questions,
        cfg.max_sub_questions, cfg.max_seed_chars, cfg.max_context_chars)
    return make_request(item, "question", prompt, templates.question_schema(), cfg, run_seed)


def user_turn(item: dict[str, Any], max_context: int) -> str:
    """Context (and the partner's, when used) then the compound question."""
    context = templates.user_context(item["seed"], item.get("partner"), max_context)
    return f"{context}\n\n{item['compound_question']}" if context else item["compound_question"]


def _versions(item: dict[str, Any]) -> str:
    """The template versions of the steps the item reached, comma-separated."""
    return ",".join(step_version(item, s) for s in item.get("steps_reached", ["question"]))


def output_row(item: dict[str, Any], max_context: int) -> dict[str, Any]:
    """The Example row of an item (see the module docstring). An item that never got a compound
    question keeps the seed's turns (for review), under an id of seed and category."""
    seed, partner = item["seed"], item.get("partner")
    if "compound_question" in item:
        messages = [{"role": "user", "content": user_turn(item, max_context)}]
        if "answer" in item:
            messages.append({"role": "assistant", "content": item["answer"]})
        row_id = example_id(messages)
    else:
        messages = [{"role": "user", "content": seed["question"]},
                    {"role": "assistant", "content": seed["answer"]}]
        row_id = content_id(STAGE, seed["id"], item["category"])
    models = item.get("models", {})
    model = next((models[s] for s in STEPS if models.get(s)), None)
    parents = [seed["id"]] + ([partner["id"]] if partner else [])
    return {
        "id": row_id,
        "content_hash": example_id(messages),
        "messages": messages,
        "source": seed.get("source") or {"dataset": None, "file": None, "row": None},
        "meta": {
            "tags": [], "category": item["category"], "context": seed.get("context") or None,
            "answer": None, "extra": None,
            "lineage": {"parent_ids": parents, "stage": STAGE,
                        "method": f"cq_syn/{slug(item['category'])}", "model": model,
                        "template_version": _versions(item)},
            "partner_context": (partner or {}).get("context") or None,
            "com_question": item.get("compound_question"),
            "com_reference": item.get("answer"),
            "sub_questions": item.get("sub_questions", []),
            "sub_answers": item.get("sub_answers", []),
            "seed_id": seed["id"],
            "partner_id": partner["id"] if partner else None,
            "partner_similarity": item.get("partner_similarity"),
            "checks": json.dumps({**item.get("checks", {}), "models": models}, sort_keys=True,
                                 ensure_ascii=False),
        },
    }


def rows_to_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """Output rows → one RecordBatch with the fixed OUTPUT_SCHEMA (types never inferred)."""
    return pa.RecordBatch.from_pylist(rows, schema=OUTPUT_SCHEMA)
