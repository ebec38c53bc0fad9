"""Paraphrase check with the real embedding model (all-MiniLM-L6-v2, loaded offline)."""

from __future__ import annotations

import pytest
from decontam_helpers import fixture_items, fixture_specs, make_batch

from transforms.decontam.config import DecontamConfig
from transforms.decontam.detect import cached_detector
from transforms.embed.config import EmbeddingConfig

PARAPHRASES = {  # same problem as mini_gsm8k items 0 and 2, new wording: n-grams miss them
    "p0": "Every morning Marisol harvests two dozen apples. After handing five to a neighbour "
          "and baking two pies with seven, she sells what remains at three dollars each at the "
          "village stall. What are her daily earnings?",
    "p2": "Tobias wants a $360 telescope; he has saved $85 and makes $25 a week walking dogs. "
          "After how many weeks can he afford it?",
}
CLEAN = {
    "k1": "Lena sells lemonade for $2 a cup. How many dollars does she earn each morning if "
          "she sells 30 cups?",
    "k2": "Write a short letter to your landlord asking to fix the heating.",
    "k3": "Explain how photosynthesis works in plants.",
}


@pytest.mark.model
def test_paraphrases_are_flagged_and_clean_texts_are_not() -> None:
    items = fixture_items()
    rows = list(PARAPHRASES.items()) + list(CLEAN.items())
    batch = make_batch(rows)
    ngram_only = cached_detector(DecontamConfig(benchmarks=fixture_specs()).model_dump_json(),
                                 items)
    assert ngram_only.find(batch)[0] == [None] * len(rows)  # the n-gram rules miss them

    cfg = DecontamConfig(benchmarks=fixture_specs(),
                         paraphrase={"enabled": True, "threshold": 0.8, "batch_rows": 2})
    det = cached_detector(cfg.model_dump_json(), items,
                          EmbeddingConfig(device="cpu").model_dump_json())
    reasons, details = det.find(batch)
    assert reasons == ["contaminated_paraphrase"] * 2 + [None] * 3
    assert [(d["benchmark"], d["item_id"]) for d in details[:2]] == [("gsm8k", "0"),
                                                                     ("gsm8k", "2")]
    assert all(0.8 <= d["overlap"] <= 1.0 and d["rule"] == "paraphrase" for d in details[:2])


@pytest.mark.model
def test_ngram_rules_take_precedence_over_paraphrase() -> None:
    items = fixture_items()
    cfg = DecontamConfig(benchmarks=fixture_specs(), paraphrase={"enabled": True,
                                                                 "threshold": 0.8})
    det = cached_detector(cfg.model_dump_json(), items,
                          EmbeddingConfig(device="cpu").model_dump_json())
    verbatim = items.texts[0]
    reasons, _ = det.find(make_batch([("v", verbatim), ("p", PARAPHRASES["p2"])]))
    assert reasons == ["contaminated_tulu3", "contaminated_paraphrase"]
