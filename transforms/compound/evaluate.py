"""Compound-QA as an evaluation: a candidate model answers each compound question with its
context; a judge compares the answer with `com_reference` and lists the sub-questions with
whether the candidate answered each (the paper's failure modes: omitted sub-questions and
degraded answers). Works on the authors' released files and on our synthesized rows
(compound_qa.record reads both).

Pure core (no Beam): the config, the two requests of a record, the parse of the verdict, and
the report as empty/add/merge/finish. Report: per dimension and type, win / tie / loss counts
and rates (the candidate against the reference), the omission rate (share of items with at
least one sub-question left unanswered) and the sub-question omission rate, failures by reason,
and example rows (omissions and losses first). evaluate_run.py is the Beam shell.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import Field

from schemas.ids import derive_seed
from transforms.compound.categories import slug
from transforms.config_base import StrictModel
from transforms.llm.api import ChatRequest, ChatResult, SamplingParams
from transforms.llm.config import AnyLLMConfig, LocalLLMConfig
from transforms.llm.prompts import Prompt, load_prompt

STAGE = "compound_eval"
ROLES = ("candidate", "judge")
VERDICTS = ("win", "tie", "loss")
CLIP = 600  # characters of a candidate answer kept in an example row


class Decoding(StrictModel):
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int = Field(1024, ge=8, description="token budget of each call")


class CompoundEvalConfig(StrictModel):
    """`refinery eval compound`: the two models and their decoding."""

    candidate: AnyLLMConfig = Field(default_factory=LocalLLMConfig,
                                    description="the model under test (answers each question)")
    judge: AnyLLMConfig = Field(default_factory=LocalLLMConfig,
                                description="the model that grades the answer against the "
                                "reference and lists the omitted sub-questions")
    candidate_sampling: Decoding = Field(default_factory=Decoding,
                                         description="the candidate's decoding (greedy)")
    judge_sampling: Decoding = Field(default_factory=lambda: Decoding(max_tokens=768),
                                     description="the judge's decoding (greedy)")
    max_context_chars: int = Field(4000, ge=0, description="longer contexts are cut")
    limit: int | None = Field(None, ge=1, description="records read per file (None: all)")
    examples: int = Field(3, ge=0, description="example rows kept per dimension and type")
    seed: int = Field(0, description="run seed (per-request sampling seeds)")
    output_dir: str = Field("out/compound_eval", description="work dir (response cache)")


def judge_prompt() -> Prompt:
    return load_prompt("compound", "eval_judge")


def record_key(rec: dict[str, Any]) -> str:
    return f"{rec['dimension']}/{slug(rec['category'] or 'unknown')}/{rec['id']}"


def user_turn(rec: dict[str, Any], max_context: int) -> str:
    """What the candidate sees: the context (cut), a blank line, the compound question."""
    context = (rec.get("context") or "")[:max_context].strip()
    return f"{context}\n\n{rec['com_question']}" if context else rec["com_question"]


def _sampling(d: Decoding, seed: int) -> SamplingParams:
    return SamplingParams(temperature=d.temperature, top_p=d.top_p, max_tokens=d.max_tokens,
                          seed=seed)


def candidate_request(rec: dict[str, Any], cfg: CompoundEvalConfig) -> ChatRequest:
    key = record_key(rec)
    return ChatRequest(key=f"{STAGE}:candidate:{key}",
                       messages=(("user", user_turn(rec, cfg.max_context_chars)),),
                       sampling=_sampling(cfg.candidate_sampling,
                                          derive_seed(cfg.seed, key, "candidate")),
                       payload=rec)


def answered(result: ChatResult) -> dict[str, Any]:
    """The record with the candidate's answer."""
    return {**result.payload, "candidate": (result.texts[0] if result.texts else "").strip()}


def judge_request(rec: dict[str, Any], cfg: CompoundEvalConfig) -> ChatRequest:
    """The judge's request over the candidate's answer (`answered`)."""
    prompt = judge_prompt()
    text = prompt.render(context=(rec.get("context") or "")[:cfg.max_context_chars].strip(),
                         question=rec["com_question"], reference=rec["com_reference"],
                         candidate=rec["candidate"] or "(no answer)")
    key = record_key(rec)
    return ChatRequest(key=f"{STAGE}:judge:{key}", messages=(("user", text),),
                       sampling=_sampling(cfg.judge_sampling, derive_seed(cfg.seed, key, "judge")),
                       json_schema=prompt.answer_schema(), template_version=prompt.version,
                       payload=rec)


def outcome(result: ChatResult) -> dict[str, Any]:
    """The report event of a judged record: verdict, sub-questions, the omitted ones. A
    verdict that cannot be read raises (the kit counts it as `judge_unparseable`)."""
    rec = result.payload
    verdict = (result.parsed or [None])[0]
    if not isinstance(verdict, dict) or verdict.get("verdict") not in VERDICTS:
        raise ValueError(f"no verdict among {VERDICTS}")
    subs = [s for s in verdict.get("sub_questions") or [] if isinstance(s, dict)]
    omitted = [str(s.get("question", "")) for s in subs if not s.get("answered")]
    return {"dimension": rec["dimension"], "category": rec["category"],
            "verdict": verdict["verdict"], "n_sub": len(subs), "omitted": omitted,
            "example": {"id": rec["id"], "question": rec["com_question"],
                        "candidate": rec["candidate"][:CLIP], "verdict": verdict["verdict"],
                        "omitted": omitted, "reasoning": str(verdict.get("reasoning", ""))[:CLIP]}}


def failure(rec: dict[str, Any] | None, reason: str) -> dict[str, Any]:
    rec = rec or {}
    return {"dimension": rec.get("dimension"), "category": rec.get("category"),
            "failed": reason}


def empty() -> dict[str, Any]:
    return {"cells": {}, "failed": Counter(), "examples": {}, "limit": None}


def _cell() -> dict[str, int]:
    return {"n": 0, "win": 0, "tie": 0, "loss": 0, "with_omission": 0, "sub_questions": 0,
            "sub_omitted": 0, "failed": 0}


def _rank(ex: dict[str, Any]) -> tuple[int, int, str]:
    """Omissions first, then losses, then by id: the rows a reader should look at."""
    return (0 if ex["omitted"] else 1, 0 if ex["verdict"] == "loss" else 1, str(ex["id"]))


def add(acc: dict[str, Any], event: dict[str, Any], examples: int = 3) -> dict[str, Any]:
    key = f"{event.get('dimension') or 'unknown'}/{event.get('category') or 'unknown'}"
    cell = acc["cells"].setdefault(key, _cell())
    if "failed" in event:
        cell["failed"] += 1
        acc["failed"][event["failed"]] += 1
        return acc
    cell["n"] += 1
    cell[event["verdict"]] += 1
    cell["with_omission"] += bool(event["omitted"])
    cell["sub_questions"] += event["n_sub"]
    cell["sub_omitted"] += len(event["omitted"])
    kept = acc["examples"].setdefault(key, [])
    kept.append(event["example"])
    kept.sort(key=_rank)
    del kept[examples:]
    return acc


def merge(accs: list[dict[str, Any]], examples: int = 3) -> dict[str, Any]:
    out = empty()
    for a in accs:
        for key, cell in a["cells"].items():
            mine = out["cells"].setdefault(key, _cell())
            for k, v in cell.items():
                mine[k] += v
        out["failed"].update(a["failed"])
        for key, exs in a["examples"].items():
            out["examples"][key] = sorted(out["examples"].get(key, []) + exs, key=_rank)[:examples]
    return out


def _rates(cell: dict[str, int]) -> dict[str, Any]:
    n = cell["n"]
    out: dict[str, Any] = dict(cell)
    for v in VERDICTS:
        out[f"{v}_rate"] = round(cell[v] / n, 4) if n else None
    out["omission_rate"] = round(cell["with_omission"] / n, 4) if n else None
    out["sub_omission_rate"] = (round(cell["sub_omitted"] / cell["sub_questions"], 4)
                                if cell["sub_questions"] else None)
    return out


def _sum(cells: list[dict[str, int]]) -> dict[str, int]:
    total = _cell()
    for c in cells:
        for k, v in c.items():
            total[k] += v
    return total


def finish(acc: dict[str, Any]) -> dict[str, Any]:
    """The report (see the module docstring); per_type and per_dimension sum the cells."""
    cells = acc["cells"]
    by_dim: dict[str, list] = {}
    by_type: dict[str, list] = {}
    for key, cell in cells.items():
        dim, cat = key.split("/", 1)
        by_dim.setdefault(dim, []).append(cell)
        by_type.setdefault(cat, []).append(cell)
    return {"stage": STAGE,
            "overall": _rates(_sum(list(cells.values()))),
            "per_type": {k: _rates(_sum(v)) for k, v in sorted(by_type.items())},
            "per_dimension": {k: _rates(_sum(v)) for k, v in sorted(by_dim.items())},
            "per_cell": {k: _rates(v) for k, v in sorted(cells.items())},
            "failed": dict(sorted(acc["failed"].items())),
            "examples": {k: v for k, v in sorted(acc["examples"].items())}}
