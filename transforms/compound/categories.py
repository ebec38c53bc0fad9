"""The five CQ-Syn categories and the seeded, weighted choice of one per seed.

Reads: a seed id, the run seed, category weights. Writes: a category name. Pure, no Beam."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

CATEGORIES: tuple[str, ...] = (
    "Factual-Statement",
    "Cause-and-Effect",
    "Hypothetical-Analysis",
    "Comparison-and-Selection",
    "Evaluation-and-Suggestion",
)

# One line per category: what its compound questions ask (shown in docs and prompts).
DESCRIPTIONS: dict[str, str] = {
    "Factual-Statement": "parallel factual sub-questions about the same subject",
    "Cause-and-Effect": "why something happens, then what follows from it",
    "Hypothetical-Analysis": "what would happen if a condition changed, and why",
    "Comparison-and-Selection": "how two subjects differ, then which one to choose for a purpose",
    "Evaluation-and-Suggestion": "how good something is, then what to do or change",
}


def slug(category: str) -> str:
    """'Cause-and-Effect' → 'cause_and_effect' (template and file names)."""
    return category.lower().replace("-", "_")


def _unit(seed: int, record_id: str) -> float:
    """A uniform number in [0, 1) fixed by (seed, record id); independent of order and runner."""
    digest = hashlib.blake2b(f"compound:{seed}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def pick_category(seed: int, record_id: str, weights: Mapping[str, float]) -> str:
    """The category of one seed: a weighted draw fixed by the run seed and the seed's id.
    Categories are taken in the canonical order, so the draw does not depend on dict order."""
    cats = [c for c in CATEGORIES if weights.get(c, 0.0) > 0]
    if not cats:
        raise ValueError("no category has a positive weight")
    total = sum(weights[c] for c in cats)
    point = _unit(seed, record_id) * total
    acc = 0.0
    for cat in cats:
        acc += weights[cat]
        if point < acc:
            return cat
    return cats[-1]
