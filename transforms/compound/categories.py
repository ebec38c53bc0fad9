"""The five CQ-Syn categories and the seeded, weighted choice of categories per seed.

Reads: a seed id, the run seed, category weights. Writes: category names. Pure, no Beam."""

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
    "Factual-Statement": "several parallel factual questions about the same subject or passage",
    "Cause-and-Effect": "why something happens (the cause), then what follows from it (the "
                        "effect or consequence)",
    "Hypothetical-Analysis": "what would happen if a condition changed, reasoned from the facts",
    "Comparison-and-Selection": "how two or more options differ, then which one to choose for a "
                                "stated purpose",
    "Evaluation-and-Suggestion": "how good, effective or risky something is, then what to do, "
                                 "change or recommend",
}


def slug(category: str) -> str:
    """'Cause-and-Effect' → 'cause_and_effect' (template and file names)."""
    return category.lower().replace("-", "_")


def _unit(seed: int, record_id: str, salt: str = "") -> float:
    """A uniform number in (0, 1) fixed by (seed, record id, salt); independent of order and
    runner."""
    digest = hashlib.blake2b(f"compound:{seed}:{record_id}{salt}".encode(),
                             digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


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


def pick_categories(seed: int, record_id: str, weights: Mapping[str, float], k: int) -> list[str]:
    """`k` distinct categories of one seed, drawn by weight without replacement (Efraimidis-
    Spirakis keys u^(1/w), fixed by the run seed, the seed's id and the category), in canonical
    order. k=1 is `pick_category`; k >= the number of weighted categories gives all of them
    (the paper makes every type per context)."""
    if k < 1:
        raise ValueError("k must be >= 1")
    if k == 1:
        return [pick_category(seed, record_id, weights)]
    cats = [c for c in CATEGORIES if weights.get(c, 0.0) > 0]
    if not cats:
        raise ValueError("no category has a positive weight")
    ranked = sorted(cats, key=lambda c: -_unit(seed, record_id, ":" + c) ** (1.0 / weights[c]))
    chosen = set(ranked[:k])
    return [c for c in cats if c in chosen]
