from __future__ import annotations

import pytest

from transforms.tag_instruct.parsers import (
    ParseError,
    parse_candidate,
    parse_compress,
    parse_json_object,
    parse_question,
    parse_reconstruct,
    parse_response,
    parse_tagger,
)


@pytest.mark.parametrize("text", [
    '{"tags": ["Math", "Proofs", "Logic"]}',
    '```json\n{"tags": ["Math", "Proofs", "Logic"]}\n```',
    'Sure! Here are the tags:\n{"tags": ["Math", "Proofs", "Logic",]}\nHope this helps.',
    '{"tags": "math, proofs, logic"}',
    '{"tags": [{"tag": "math"}, {"name": "proofs"}, "logic", "extra one"]}',
])
def test_compress_tolerates_noise(text: str) -> None:
    assert parse_compress(text, n=3) == ["math", "proof", "logic"]


@pytest.mark.parametrize(("text", "reason"), [
    ("", "empty_output"),
    ("   \n", "empty_output"),
    (None, "empty_output"),
    ('{"tags": ["math", "pro', "truncated_json"),
    ("math, proofs, logic", "invalid_json"),
    ('["math", "proofs", "logic"]', "not_an_object"),
    ('{"labels": ["a", "b", "c"]}', "missing_tags"),
    ('{"tags": ["Math", "math", "MATHS"]}', "too_few_tags"),
    ('{"tags": ["a", "", "   "]}', "too_few_tags"),
    ('{"tags": ["tag 1", "tag 2", "tag 3"]}', "too_few_tags"),  # the format, echoed
    ('{"tags": 3}', "tags_not_a_list"),
    ("{'tags': ['a', 'b', 'c']}", "invalid_json"),
])
def test_compress_rejects_malformed(text: str | None, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_compress(text, n=3)
    assert info.value.reason == reason


def test_schema_parsed_object_is_used_first() -> None:
    assert parse_compress("garbage", {"tags": ["a b", "c", "d"]}, n=3) == ["a b", "c", "d"]


def test_json_object_string_aware_braces() -> None:
    assert parse_json_object('x {"q": "use { and } freely"} y') == {"q": "use { and } freely"}


def test_candidate_parsing() -> None:
    c = parse_candidate('{"tag": "Edge Cases", "explanation": " handle empty input "}')
    assert (c.tag, c.raw_tag, c.explanation) == ("edge case", "Edge Cases", "handle empty input")
    assert '"tag": "Edge Cases"' in c.answer_json()
    assert parse_candidate('{"new_tag": "recursion"}').explanation == ""
    for text, reason in [('{"explanation": "x"}', "missing_tag"),
                         ('{"tag": "!!!"}', "empty_tag"),
                         ('{"tag": "one two three four five six"}', "tag_too_long"),
                         ('{"tag": 5}', "missing_tag"),
                         ('{"tag": "New Tag"}', "placeholder_tag"),
                         ('{"tag": "rec', "truncated_json")]:
        with pytest.raises(ParseError) as info:
            parse_candidate(text)
        assert info.value.reason == reason


def test_question_and_response_parsing() -> None:
    assert parse_question('{"question": "  Prove it.  "}') == "Prove it."
    assert parse_question('{"instruction": "Do X"}') == "Do X"
    for text, reason in [('{"question": ""}', "empty_question"),
                         ('{"question": ["a"]}', "missing_question"),
                         ('{"answer": "a"}', "missing_question")]:
        with pytest.raises(ParseError) as info:
            parse_question(text)
        assert info.value.reason == reason
    assert parse_response("  The answer is 4.\n") == "The answer is 4."
    with pytest.raises(ParseError) as info:
        parse_response(" \n ")
    assert info.value.reason == "empty_response"


def test_tagger_reads_instag_objects_and_bounds() -> None:
    answer = ('{"tags": [{"tag": "Data Structures", "explanation": "uses a heap"}, '
              '{"tag": "data structure", "explanation": "again"}, '
              '{"tag": "Time Complexity", "explanation": "asks for big-O"}]}')
    assert parse_tagger(answer) == ["data structure", "time complexity"]
    assert parse_tagger('{"tags": ["a", "b", "c", "d"]}', max_tags=3) == ["a", "b", "c"]
    assert parse_tagger('{"tags": ["Loops"]}') == ["loop"]
    with pytest.raises(ParseError) as info:
        parse_tagger('{"tags": []}')
    assert info.value.reason == "too_few_tags"


def test_reconstruct_subset_must_keep_the_new_tag() -> None:
    offered = ["physics", "optics", "edge case"]
    text = '{"tags_used": ["Optics", "Edge Cases", "poetry"], "question": " Why? "}'
    assert parse_reconstruct(text, None, offered, "edge case") == (["optics", "edge case"],
                                                                    "Why?")
    with pytest.raises(ParseError) as info:
        parse_reconstruct('{"tags_used": ["optics"], "question": "Why?"}', None, offered,
                          "edge case")
    assert info.value.reason == "dropped_new_tag"
    with pytest.raises(ParseError) as info:
        parse_reconstruct('{"tags_used": ["edge case"]}', None, offered, "edge case")
    assert info.value.reason == "missing_question"
