"""schemas.text (normalize_text, fold_text) and schemas.ids (content hashes, row ids)."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.ids import content_id, example_id, pair_id, row_id
from schemas.text import fold_text, normalize_text
from tests._hypothesis import examples

# Text drawn from a mix that exercises every rule: CR/LF, tabs, exotic spaces, zero-width and
# control characters, combining marks, plain letters.
_ALPHABET = st.sampled_from(
    list("ab xyZ\n\t\r.")
    + ["\u00a0", "\u2003", "\u3000", "\u200b", "\u200d", "\ufeff", "\u00ad", "\x00", "\x07",
       "\x1b", "\x7f", "\x85", "e\u0301", "\u00e9", "\u212b", "\u2028", "  ", "\r\n", "\n\n\n"])
_TEXTS = st.lists(_ALPHABET, max_size=40).map("".join)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("cafe\u0301", "caf\u00e9"),  # NFC: e + combining acute → é
        ("\u212b", "\u00c5"),  # NFC: angstrom sign → Å
        ("line one\r\nline two\rline three", "line one\nline two\nline three"),
        ("zero\u200bwidth\u200c join\u200d\u2060\ufeffsoft\u00adhyphen",
         "zerowidth joinsofthyphen"),
        ("bell\x07 null\x00 esc\x1b del\x7f c1\x85", "bell null esc del c1"),
        ("a\u00a0b\u2003c\u3000d", "a b c d"),
        ("many   spaces\t\there", "many spaces here"),
        ("trailing   \nspaces\t\n", "trailing\nspaces"),
        ("para\n\n\n\n\nnext", "para\n\nnext"),
        ("   leading and trailing   ", "leading and trailing"),
        ("", ""),
        ("\u200b\u200b", ""),
    ],
)
def test_normalize_text_rules(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_text_keeps_indentation_inside_lines() -> None:
    code = "def f(x):\n    if x:\n\treturn  1\n    return 0"
    out = normalize_text(code)
    lines = out.split("\n")
    assert lines[1] == "    if x:"
    assert lines[2] == "\treturn 1"  # indentation kept, inner run collapsed
    assert lines[3] == "    return 0"


def test_normalize_text_canonical_ascii_is_unchanged() -> None:
    text = "Plain ASCII.\nSecond line with (symbols) & numbers 123.\n\nNew paragraph."
    assert normalize_text(text) == text


@settings(max_examples=examples(150), deadline=None)
@given(_TEXTS)
def test_normalize_text_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=examples(150), deadline=None)
@given(_TEXTS)
def test_normalize_text_output_invariants(text: str) -> None:
    out = normalize_text(text)
    assert unicodedata.is_normalized("NFC", out)
    assert "\r" not in out
    assert "\n\n\n" not in out
    assert out == out.strip()
    for ch in "\u200b\u200c\u200d\u2060\ufeff\u00ad\x00\x07\x1b\x7f\x85\u00a0\u3000":
        assert ch not in out
    assert all(line == line.rstrip() for line in out.split("\n"))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Explain  why the sky looks BLUE during the day?",
         "Explain why the sky looks blue during the day."),
        ("ﬁle №1", "file no1"),  # NFKC: ligature and numero sign
        ("Straße", "STRASSE"),  # casefold
        ("hello,\tworld!!", "hello world"),
    ],
)
def test_fold_text_equates_variants(a: str, b: str) -> None:
    assert fold_text(a) == fold_text(b)


def test_fold_text_keeps_distinct_words_distinct() -> None:
    assert fold_text("the cat sat") != fold_text("the cat sat down")
    assert fold_text("") == ""
    assert fold_text(None) == ""  # type: ignore[arg-type]


@settings(max_examples=examples(200), deadline=None)
@given(st.text(max_size=60))
def test_fold_text_is_idempotent(text: str) -> None:
    once = fold_text(text)
    assert fold_text(once) == once


def _msgs(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in pairs]


def test_example_id_is_stable_hex_and_depends_only_on_roles_and_content() -> None:
    m = _msgs(("user", "Hi"), ("assistant", "Hello"))
    ident = example_id(m)
    assert len(ident) == 32 and int(ident, 16) >= 0
    assert example_id([dict(x) for x in m]) == ident
    # extra keys in the message dicts (e.g. source bookkeeping) do not matter
    assert example_id([{**x, "name": "n", "source": "s"} for x in m]) == ident
    assert example_id(_msgs(("user", "Hi"), ("assistant", "Hello!"))) != ident
    assert example_id(_msgs(("system", "Hi"), ("assistant", "Hello"))) != ident
    assert example_id(_msgs(("assistant", "Hello"), ("user", "Hi"))) != ident


def test_example_id_is_insensitive_to_source_after_normalization() -> None:
    """The same content read from two sources in two raw spellings gets one id."""
    raw_a = _msgs(("user", "Caf\u00e9 menu?\r\n"), ("assistant", "Coffee\u200b and cake."))
    raw_b = _msgs(("user", "  Cafe\u0301 menu?"), ("assistant", "Coffee and cake.  "))
    norm = lambda ms: [{"role": m["role"], "content": normalize_text(m["content"])} for m in ms]  # noqa: E731
    assert example_id(norm(raw_a)) == example_id(norm(raw_b))


def test_pair_id_is_stable_and_distinguishes_roles_of_parts() -> None:
    p = _msgs(("user", "Q"))
    c = _msgs(("assistant", "good"))
    r = _msgs(("assistant", "bad"))
    ident = pair_id(p, c, r)
    assert pair_id(list(p), list(c), list(r)) == ident
    assert pair_id(p, r, c) != ident  # swapping chosen and rejected is a different pair
    assert pair_id(p, c, r) != example_id(p + c)  # namespaced apart from examples


def test_row_id_is_unique_per_position_and_stable() -> None:
    h = example_id(_msgs(("user", "Q"), ("assistant", "A")))
    ids = {row_id(h, f, r) for f in ("a.jsonl", "b.jsonl", "sub/a.jsonl") for r in (0, 1, 10)}
    assert len(ids) == 9 and h not in ids
    assert row_id(h, "a.jsonl", 1) == row_id(h, "a.jsonl", 1)
    assert row_id(h, "a.jsonl", 1) != row_id(example_id(_msgs(("user", "Q"))), "a.jsonl", 1)
    assert row_id(h, "a.jsonl1", 0) != row_id(h, "a.jsonl", 10)  # file and row kept apart


def test_content_id_is_order_and_type_sensitive() -> None:
    assert content_id("a", "b") != content_id("b", "a")
    assert content_id("1") != content_id(1)
    assert content_id({"x": 1, "y": 2}) == content_id({"y": 2, "x": 1})


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["system", "user", "assistant", "tool"]),
                          st.text(max_size=30)), min_size=1, max_size=5))
def test_example_id_is_a_function_of_content(pairs: list[tuple[str, str]]) -> None:
    a = example_id(_msgs(*pairs))
    b = example_id([{"content": c, "role": r} for r, c in pairs])
    assert a == b


def test_normalize_composes_after_removing_invisible_characters() -> None:
    # A zero-width space between a base letter and its combining mark used to survive NFC
    # and leave a non-NFC, non-idempotent result.
    text = "Z\u200b\u0301 x"
    once = normalize_text(text)
    assert once == "\u0179 x"
    assert normalize_text(once) == once


def test_ids_separate_roles_and_messages() -> None:
    from schemas.ids import example_id

    a = example_id([{"role": "user", "content": "ab"}, {"role": "assistant", "content": "c"}])
    b = example_id([{"role": "user", "content": "a"}, {"role": "assistant", "content": "bc"}])
    assert a != b
