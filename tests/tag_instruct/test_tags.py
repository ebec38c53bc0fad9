from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.tag_instruct.tags import (
    is_placeholder,
    normalize_tag,
    normalize_tags,
    overlaps,
    singular,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("Data Structures", "data structure"),
    ("  PROBLEM-solving ", "problem solving"),
    ("problem_solving", "problem solving"),
    ("Strategies", "strategy"),
    ("boxes", "box"),
    ("matches", "match"),
    ("classes", "class"),
    ("Mathematics", "mathematics"),
    ("data analysis", "data analysis"),
    ("news", "news"),
    ("status", "status"),
    ("C++", "c++"),
    ("C#", "c#"),
    ("creative\twriting!!", "creative writing"),
    ("Ｆｕｌｌｗｉｄｔｈ Tags", "fullwidth tag"),
    ("", ""),
    ("  ...  ", ""),
])
def test_normalize_tag(raw: str, expected: str) -> None:
    assert normalize_tag(raw) == expected


def test_singular_leaves_short_and_non_alpha_words() -> None:
    assert singular("gas") == "gas"
    assert singular("apis2") == "apis2"
    assert singular("algorithms") == "algorithm"


def test_normalize_tags_dedups_after_folding_and_drops_long_or_empty() -> None:
    tags = ["Algorithms", "algorithm", "", "a very long tag with many words", "Sorting"]
    assert normalize_tags(tags, max_words=4) == ["algorithm", "sorting"]


@pytest.mark.parametrize(("tag", "placeholder"), [
    ("tag", True), ("tag 1", True), ("json key", True), ("new tag", True), ("42", True),
    ("c++", False), ("name generation", False), ("a", False), ("sql", False), ("3d modeling", False),
])
def test_placeholder_tags(tag: str, placeholder: bool) -> None:
    assert is_placeholder(normalize_tag(tag)) is placeholder


def test_normalize_tags_drops_format_echoes() -> None:
    assert normalize_tags(["Tag 1", "tags", "JSON", "Recursion", "tag2"]) == ["recursion"]


def test_overlaps_whole_words_only() -> None:
    assert overlaps("sorting", ["sorting algorithm"])
    assert overlaps("sorting algorithm", ["sorting"])
    assert overlaps("math", ["math"])
    assert not overlaps("sort", ["sorting algorithm"])
    assert not overlaps("physics", ["math"])


@given(st.text(max_size=40))
def test_normalize_is_idempotent(raw: str) -> None:
    once = normalize_tag(raw)
    assert normalize_tag(once) == once
