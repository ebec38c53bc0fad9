"""The paper's bracket answers, parsed tolerantly: clean, noisy, truncated, empty, malformed."""

from __future__ import annotations

import pytest

from transforms.tag_instruct.parsers import (
    ParseError,
    parse_candidate_brackets,
    parse_compress_brackets,
    parse_question_brackets,
)


@pytest.mark.parametrize("text", [
    "urban resilience, climate adaptation, sustainable development",
    "[Tags]\nurban resilience, climate adaptation, sustainable development\n",
    "**[Tags]**: urban resilience, climate adaptation, Urban Resilience, sustainable development",
    "- urban resilience\n- climate adaptation\n- sustainable development",
    "Here you go.\n[Tags]\n\"urban resilience\", `climate adaptation`, sustainable development\n"
    "\nThese tags capture the core ideas.",
])
def test_compress_comma_list(text: str) -> None:
    assert parse_compress_brackets(text) == ["urban resilience", "climate adaptation",
                                             "sustainable development"]


@pytest.mark.parametrize(("text", "reason"), [
    (None, "empty_output"), ("  \n", "empty_output"), ("[Tags]\n\n", "too_few_tags"),
    ("[Tags]\n , ,", "too_few_tags")])
def test_compress_failures(text: str | None, reason: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_compress_brackets(text)
    assert e.value.reason == reason


@pytest.mark.parametrize("text", [
    "[Explanation]\nIt asks for bounds.\n\n[New Tag]\nComplexity Analysis",
    "[explanation] It asks for bounds.\n[new tag] Complexity Analysis\n\nMore text after.",
    "**[Explanation]**: It asks for bounds.\n\n**[New Tag]**: **Complexity Analysis**",
    "### [Explanation]\nIt asks for bounds.\n### [New Tag]\n\"Complexity Analysis\"",
])
def test_candidate_explanation_then_tag(text: str) -> None:
    cand = parse_candidate_brackets(text, need_explanation=True)
    assert (cand.tag, cand.raw_tag, cand.explanation) == (
        "complexity analysis", "Complexity Analysis", "It asks for bounds.")
    assert cand.answer_text("brackets") == \
        "[Explanation] It asks for bounds.\n[New Tag] Complexity Analysis"


@pytest.mark.parametrize(("text", "kwargs", "reason"), [
    ("", {}, "empty_output"),
    ("[Explanation] It asks for bounds.", {}, "missing_tag"),        # truncated before the tag
    ("[Explanation] It asks for bounds.\n[New Tag]", {}, "empty_tag"),
    ("[New Tag] Complexity Analysis", {"need_explanation": True}, "missing_explanation"),
    ("[Explanation] x\n[New Tag] a very long tag of many many words", {}, "tag_too_long"),
    ("[Explanation] x\n[New Tag] new tag", {}, "placeholder_tag"),
])
def test_candidate_failures(text: str, kwargs: dict, reason: str) -> None:
    with pytest.raises(ParseError) as e:
        parse_candidate_brackets(text, **kwargs)
    assert e.value.reason == reason


def test_greedy_tag_without_explanation_is_still_a_tag() -> None:
    # the rewrite path takes the tag alone, as theirs does; the pair path needs both parts
    assert parse_candidate_brackets("[New Tag] Edge Cases").raw_tag == "Edge Cases"


@pytest.mark.parametrize(("text", "question"), [
    ("Why do bees dance?", "Why do bees dance?"),          # the prompt ended with the marker
    ("[New Question]\nWhy do bees dance?\n", "Why do bees dance?"),
    ("**[New Question]**: Why do bees dance?", "Why do bees dance?"),
])
def test_new_question(text: str, question: str) -> None:
    assert parse_question_brackets(text) == question


@pytest.mark.parametrize("text", [None, "", "[New Question]\n  "])
def test_new_question_empty(text: str | None) -> None:
    with pytest.raises(ParseError) as e:
        parse_question_brackets(text)
    assert e.value.reason == "empty_question"
