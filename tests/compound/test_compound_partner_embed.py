"""Partner selection through the stage's embedding path with the real embedding model."""

from __future__ import annotations

import pytest

from transforms.compound.config import CompoundConfig
from transforms.compound.stage import _embed_text, _partner_map
from transforms.embed.config import EmbeddingConfig
from transforms.embed.model import Embedder


def _seed(i: str, q: str) -> dict:
    return {"id": i, "question": q, "answer": "a", "context": "", "source": None}


@pytest.mark.model
def test_partner_is_a_related_seed_not_a_duplicate() -> None:
    seeds = [
        _seed("list", "What is a list in Python?"),
        _seed("tuple", "What is a tuple in Python?"),
        _seed("list-dup", "What is a Python list?"),
        _seed("bread", "How do I bake rye bread at home?"),
        _seed("bridge", "When did the Brooklyn Bridge open?"),
    ]
    items = [{"seed": s, "category": "Comparison-and-Selection"} for s in seeds]
    vectors = Embedder(EmbeddingConfig(device="cpu")).encode([_embed_text(it) for it in items])
    entries = [(s["id"], s, True, v) for s, v in zip(seeds, vectors, strict=True)]
    cfg = CompoundConfig(partner_min_similarity=0.3, partner_max_similarity=0.9)
    sims = vectors @ vectors.T
    assert sims[0, 2] > 0.9, "the paraphrase is a near-duplicate for this model"
    chosen = _partner_map(entries, cfg)
    assert chosen["list"]["partner"]["id"] == "tuple"
    assert 0.3 <= chosen["list"]["similarity"] <= 0.9
    assert chosen["bridge"]["partner"] is None and chosen["bridge"]["reason"] == "none_in_window"
    # the map does not depend on the order the seeds arrive in
    assert _partner_map(list(reversed(entries)), cfg) == chosen
