"""Verify rules for a rebuilt question and its answer. Pure: similarities come in precomputed.

Rules, each returning None (pass) or a `Failure(reason, detail)`:
- question: length bound (absolute and relative to the original), differs from the original
  (cosine similarity below `max_similarity`, and not the same text), not a copy of the
  original answer (text containment or similarity);
- response: present, and the question is not a copy of its own answer;
- complexity: the re-extracted tags of the new question are at least as many as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.text import fold_text
from transforms.tag_instruct.config import TagInstructConfig


@dataclass(frozen=True)
class Failure:
    reason: str
    detail: dict[str, Any]


def _copies(question: str, answer: str) -> bool:
    """The question is the answer, or contains a long answer verbatim (folded)."""
    q, a = fold_text(question), fold_text(answer)
    if not q or not a:
        return False
    return q == a or (len(a) >= 40 and a in q)


def check_question(question: str, original: str, original_answer: str, sim_original: float,
                   sim_original_answer: float | None, cfg: TagInstructConfig) -> Failure | None:
    """Length bound, difference from the original, not a copy of the original's answer."""
    n, n0 = len(question), max(len(original), 1)
    if n < cfg.min_question_chars:
        return Failure("question_too_short", {"chars": n, "min": cfg.min_question_chars})
    if n > cfg.max_question_chars:
        return Failure("question_too_long", {"chars": n, "max": cfg.max_question_chars})
    if n / n0 > cfg.max_length_ratio:
        return Failure("question_too_long",
                       {"ratio": round(n / n0, 3), "max_ratio": cfg.max_length_ratio})
    if fold_text(question) == fold_text(original) or sim_original >= cfg.max_similarity:
        return Failure("too_similar_to_original",
                       {"similarity": round(float(sim_original), 4), "max": cfg.max_similarity})
    if original_answer and (
        _copies(question, original_answer)
        or (sim_original_answer is not None and sim_original_answer >= cfg.max_answer_similarity)
    ):
        return Failure("copies_original_answer",
                       {"similarity": None if sim_original_answer is None
                        else round(float(sim_original_answer), 4),
                        "max": cfg.max_answer_similarity})
    return None


def check_response(question: str, response: str, sim_question_response: float | None,
                   cfg: TagInstructConfig) -> Failure | None:
    """The answer exists and the question is not a copy of it."""
    if len(response.strip()) < cfg.min_response_chars:
        return Failure("empty_response", {"chars": len(response.strip())})
    if _copies(question, response) or (
        sim_question_response is not None and sim_question_response >= cfg.max_answer_similarity
    ):
        return Failure("copies_own_answer",
                       {"similarity": None if sim_question_response is None
                        else round(float(sim_question_response), 4),
                        "max": cfg.max_answer_similarity})
    return None


def check_complexity(tags_before: list[str], tags_after: list[str],
                     cfg: TagInstructConfig) -> Failure | None:
    """No loss of complexity: at least as many distinct re-extracted tags as before."""
    need = cfg.min_tags_after if cfg.min_tags_after is not None else len(tags_before)
    if len(tags_after) < need:
        return Failure("complexity_loss", {"tags_before": list(tags_before),
                                           "tags_after": list(tags_after), "required": need})
    return None
