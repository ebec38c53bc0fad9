"""The seeded, weighted category mix."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from transforms.compound.categories import CATEGORIES, pick_categories, pick_category, slug
from transforms.compound.config import CompoundConfig

IDS = [f"seed-{i}" for i in range(5000)]


def test_pick_is_fixed_by_seed_and_id() -> None:
    w = dict.fromkeys(CATEGORIES, 1.0)
    first = [pick_category(7, i, w) for i in IDS[:200]]
    assert first == [pick_category(7, i, dict(reversed(w.items()))) for i in IDS[:200]]
    assert first != [pick_category(8, i, w) for i in IDS[:200]]


def test_mix_follows_weights() -> None:
    w = {"Factual-Statement": 3.0, "Cause-and-Effect": 1.0, "Comparison-and-Selection": 0.0,
         "Hypothetical-Analysis": 1.0, "Evaluation-and-Suggestion": 0.0}
    counts = Counter(pick_category(0, i, w) for i in IDS)
    assert set(counts) == {"Factual-Statement", "Cause-and-Effect", "Hypothetical-Analysis"}
    share = counts["Factual-Statement"] / len(IDS)
    assert 0.56 < share < 0.64  # 3/5 expected; 5000 draws put it within a few points


def test_several_categories_per_seed_are_distinct_and_weighted() -> None:
    w = {"Factual-Statement": 4.0, "Cause-and-Effect": 1.0, "Comparison-and-Selection": 1.0,
         "Hypothetical-Analysis": 1.0, "Evaluation-and-Suggestion": 0.0}
    picks = [pick_categories(0, i, w, 2) for i in IDS[:2000]]
    assert all(len(set(p)) == 2 and "Evaluation-and-Suggestion" not in p for p in picks)
    share = sum("Factual-Statement" in p for p in picks) / len(picks)
    assert share > 0.75  # the heavy category is in most pairs
    assert pick_categories(0, "x", w, 5) == [c for c in CATEGORIES if w[c] > 0]
    assert pick_categories(0, "x", w, 1) == [pick_category(0, "x", w)]
    assert pick_categories(0, "x", w, 2) == pick_categories(0, "x", dict(reversed(w.items())), 2)


def test_slugs_name_the_templates() -> None:
    assert [slug(c) for c in CATEGORIES] == [
        "factual_statement", "cause_and_effect", "hypothetical_analysis",
        "comparison_and_selection", "evaluation_and_suggestion"]


def test_config_rejects_bad_weights_and_windows() -> None:
    with pytest.raises(ValidationError, match="unknown categories"):
        CompoundConfig(category_weights={"Trivia": 1.0})
    with pytest.raises(ValidationError, match="at least one category"):
        CompoundConfig(category_weights=dict.fromkeys(CATEGORIES, 0.0))
    with pytest.raises(ValidationError, match="partner_min_similarity"):
        CompoundConfig(partner_min_similarity=0.9, partner_max_similarity=0.5)
    with pytest.raises(ValidationError):
        CompoundConfig(typo_field=1)
    assert CompoundConfig().category_weights == dict.fromkeys(CATEGORIES, 1.0)


def test_every_config_field_is_documented() -> None:
    for name, field in CompoundConfig.model_fields.items():
        if name != "enabled":
            assert field.description, name
