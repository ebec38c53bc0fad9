"""Heuristic signals on crafted examples; agreement with the per-record reference;
hypothesis: deterministic and within range."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.records import example_row, examples_to_batch
from tests._hypothesis import examples
from tests.quality.helpers import batch_of, signals_of
from transforms.quality.reference import record_signals
from transforms.quality.signals import SIGNAL_TYPES, compute_signals

FRACTIONS = [n for n, t in SIGNAL_TYPES.items() if str(t) == "double" and n.endswith("_frac")
             or n.startswith("q_script_")]


def assert_matches_reference(rows: list[dict]) -> None:
    arrays = compute_signals(examples_to_batch(rows))
    for i, row in enumerate(rows):
        ref = record_signals(row["messages"])
        for name, arr in arrays.items():
            got, want = arr[i].as_py(), ref[name]
            if isinstance(want, float):
                assert got == pytest.approx(want, abs=1e-12), (name, row)
            else:
                assert got == want, (name, row)


def test_lengths_and_ratio() -> None:
    s = signals_of("How are you today?", "Very well, thank you.")
    assert (s["q_prompt_chars"], s["q_prompt_words"]) == (18, 4)
    assert (s["q_response_chars"], s["q_response_words"]) == (21, 4)
    assert s["q_resp_prompt_ratio"] == 1.0


def test_unicode_lengths_count_characters_not_bytes() -> None:
    s = signals_of("日本語で答えて", "こんにちは 世界 🌍")
    assert s["q_prompt_chars"] == 7 and s["q_prompt_words"] == 1
    assert s["q_response_chars"] == 10 and s["q_response_words"] == 3
    assert s["q_script"] == "cjk"


def test_empty_and_missing_texts() -> None:
    for prompt, response in [("", ""), (None, None), ("Q", "   \n\t")]:
        s = signals_of(prompt, response)
        assert s["q_response_words"] == 0 and s["q_empty"] is True
        assert s["q_dup_line_frac"] == 0.0 and s["q_top2gram_frac"] == 0.0
        assert s["q_truncated"] is False and s["q_prompt_eq_response"] is False
        assert s["q_script"] in ("none", "latin")
    assert signals_of("", "")["q_script"] == "none"


def test_duplicate_lines() -> None:
    s = signals_of("q", "alpha\nbeta\nalpha\n\n  alpha  \ngamma")
    assert s["q_dup_line_frac"] == pytest.approx(2 / 5)  # 5 non-empty lines, 3 distinct


def test_top_ngram_fraction() -> None:
    # "the cat" ×3 among 8 words: chars of words = 3+3+3+3+3+3+3+3 = 24; cover 6 × 3
    s = signals_of("q", "the cat sat the cat ran the cat")
    assert s["q_top2gram_frac"] == pytest.approx(18 / 24)
    assert s["q_top3gram_frac"] == 0.0  # no 3-gram repeats
    assert signals_of("q", "all words differ here")["q_top2gram_frac"] == 0.0


def test_top_ngram_is_capped_at_one() -> None:
    assert signals_of("q", "la " * 50)["q_top2gram_frac"] == 1.0


def test_duplicate_ngram_fraction() -> None:
    base = "one two three four five"
    s = signals_of("q", f"{base} six seven {base}")
    assert s["q_dup5gram_frac"] == pytest.approx(38 / 46)  # 2 × 19 chars of 46
    assert s["q_dup6gram_frac"] == 0.0
    assert signals_of("q", "a b c d e f g h i j")["q_dup5gram_frac"] == 0.0


def test_case_insensitive_repetition() -> None:
    assert signals_of("q", "Hello World hello world")["q_top2gram_frac"] == 1.0


def test_character_ratios() -> None:
    s = signals_of("q", "ABC def !!!")
    assert s["q_non_alnum_frac"] == pytest.approx(3 / 9)
    assert s["q_upper_frac"] == pytest.approx(3 / 9)
    s = signals_of("q", "ÄÖÜ äöü")  # Unicode letters are alphanumeric, uppercase counted
    assert s["q_non_alnum_frac"] == 0.0 and s["q_upper_frac"] == pytest.approx(0.5)


def test_urls() -> None:
    s = signals_of("q", "See https://example.com/a?b=1 and www.test.org, or http://x.io.")
    assert s["q_url_count"] == 3


@pytest.mark.parametrize("text,count,principled", [
    ("As an AI language model, I cannot do that.", 2, 0),
    ("I’m sorry, but I can't help with it.", 2, 0),
    ("I apologize for the confusion.", 1, 0),
    ("Paris is the capital of France.", 0, 0),
    ("I am like a moth to a flame; I can't help but be drawn to her.", 0, 0),
    ("I cannot help.", 1, 0),
    # a refusal for want of input or ability is no answer, with or without its reason
    ("Without the list of options, I am unable to answer which one is correct.", 1, 0),
    ("I'm sorry, but I don't have the ability to browse the web.", 2, 0),
    # declining on privacy, safety or legal grounds is behaviour to teach (Alpaca's
    # seed_task_115), in its own sentence: the other sentences still count
    ("You are requesting personal information. Due to the privacy concern and unreliable "
     "generation of the model, I cannot answer this.", 0, 1),
    ("That would be a private person's home address; for privacy reasons I cannot provide "
     "it. I apologize for that.", 1, 1),
    ("I'm sorry, but I can't help with making explosives: it is dangerous and illegal.", 0, 1),
    # ... unless it speaks as an AI
    ("As an AI language model, I cannot provide private information about anyone.", 2, 0),
])
def test_refusal_markers(text: str, count: int, principled: int) -> None:
    got = signals_of("q", text)
    assert (got["q_refusal"], got["q_refusal_principled"]) == (count, principled)
    assert_matches_reference([example_row(f"r{len(text)}", [
        {"role": "user", "content": "q"}, {"role": "assistant", "content": text}])])


def test_boilerplate() -> None:
    assert signals_of("q", "Done. I hope this helps! Feel free to ask.")["q_boilerplate"] == 2


@pytest.mark.parametrize("text,placeholder", [
    ("N/A", True), ("  none ", True), ("...", True), ("TODO", True), ("<noinput>", True),
    ("Lorem ipsum dolor sit amet", True), ("None of the above.", False), ("42", False),
])
def test_placeholder(text: str, placeholder: bool) -> None:
    assert signals_of("q", text)["q_placeholder"] is placeholder


@pytest.mark.parametrize("text,truncated,no_punct", [
    ("A complete sentence.", False, False),
    ("The steps are as follows:", True, True),
    ("We mix the flour and", True, True),
    ("```python\nprint(1)\n", True, False),  # ")" ends it, the fence is open
    ("```python\nprint(1)\n```", False, False),
    ("#### 72", False, True),
    ("答えは四です。", False, False),
])
def test_truncation(text: str, truncated: bool, no_punct: bool) -> None:
    s = signals_of("q", text)
    assert s["q_truncated"] is truncated
    assert s["q_no_terminal_punct"] is no_punct


def test_prompt_equals_response() -> None:
    assert signals_of("Repeat me.", "  repeat ME. ")["q_prompt_eq_response"] is True
    assert signals_of("Repeat me.", "No.")["q_prompt_eq_response"] is False


@pytest.mark.parametrize("text,script", [
    ("The quick brown fox", "latin"), ("Съешь же ещё этих булок", "cyrillic"),
    ("مرحبا بالعالم", "arabic"), ("中文文本测试", "cjk"), ("Γειά σου κόσμε", "greek"),
    ("नमस्ते दुनिया", "devanagari"), ("שלום עולם", "hebrew"), ("ქართული", "other"),
    ("12345 !!!", "none"),
])
def test_script(text: str, script: str) -> None:
    s = signals_of("", text)
    assert s["q_script"] == script
    if script not in ("none",):
        assert s[f"q_script_{script}"] > 0.5


def test_very_long_text() -> None:
    para = "Every paragraph here is distinct number {i} with filler words.\n"
    text = "".join(para.format(i=i) for i in range(20000))  # ~1.3M chars
    s = signals_of("Write a lot.", text)
    assert s["q_response_words"] == 10 * 20000
    assert s["q_dup_line_frac"] == 0.0
    assert 0.0 < s["q_dup5gram_frac"] <= 1.0  # the shared phrase repeats
    assert s["q_response_chars"] == len(text)
    long_repeat = signals_of("q", "same line\n" * 100000)
    assert long_repeat["q_dup_line_frac"] == pytest.approx(1 - 1 / 100000)
    assert long_repeat["q_top2gram_frac"] == 1.0


def test_multi_turn_and_system_messages() -> None:
    row = example_row("m", [{"role": "system", "content": "Be brief. admin@corp.com"},
                            {"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello."},
                            {"role": "user", "content": "Bye"},
                            {"role": "assistant", "content": "Goodbye."}])
    arrays = compute_signals(examples_to_batch([row]))
    assert arrays["q_prompt_chars"][0].as_py() == len("Hi\n\nBye")
    assert arrays["q_response_words"][0].as_py() == 2
    assert arrays["q_pii_email"][0].as_py() == 1  # PII is looked for in every turn
    assert_matches_reference([row])


def test_crafted_examples_match_reference() -> None:
    texts = [
        "", " ", "Plain answer.", "İstanbul ΣΟΦΙΑ σοφός ß straße", "ﬁne ligature ǅ titlecase",
        "tab\tand\u00a0nbsp\u3000ideographic space", "emoji 🎉🎉 🎉🎉 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
        "a\u0301 combining marks e\u0308", "line\nline\nline", "x " * 300,
        "Mail a.b@c.org, call (555) 123-4567, card 4111-1111-1111-1111, ip 192.168.0.1",
    ]
    rows = [example_row(f"c{i}", [{"role": "user", "content": t[::-1]},
                                  {"role": "assistant", "content": t}])
            for i, t in enumerate(texts)]
    assert_matches_reference(rows)


ALPHABET = list("abcdeXYZ019 .,!?:\n\t") + ["é", "ß", "Ж", "中", "ا", "```", "@", "-", "—", "İ"]
TEXTS = st.lists(st.sampled_from(ALPHABET + ["the", "cat", "I cannot", "N/A", "http://a.b"]),
                 max_size=60).map("".join)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(TEXTS, TEXTS), min_size=1, max_size=6))
def test_properties_deterministic_in_range_and_equal_to_reference(pairs) -> None:
    batch = batch_of(pairs)
    first, second = compute_signals(batch), compute_signals(batch)
    assert all(first[k].equals(second[k]) for k in first)
    for name in FRACTIONS:
        values = first[name].to_pylist()
        assert all(0.0 <= v <= 1.0 and not math.isnan(v) for v in values), name
    for name, typ in SIGNAL_TYPES.items():
        assert first[name].type == typ and first[name].null_count == 0
        if str(typ) == "int64":
            assert min(first[name].to_pylist()) >= 0
    rows = [row for row in batch.to_pylist()]
    assert_matches_reference(rows)


@settings(max_examples=examples(25), deadline=None)
@given(st.lists(st.tuples(TEXTS, TEXTS), min_size=2, max_size=8), st.integers(0, 7))
def test_row_signals_do_not_depend_on_batch_neighbours(pairs, k) -> None:
    whole = compute_signals(batch_of(pairs))
    i = k % len(pairs)
    alone = compute_signals(batch_of([pairs[i]]))
    for name in SIGNAL_TYPES:
        assert whole[name][i].as_py() == alone[name][0].as_py(), name
