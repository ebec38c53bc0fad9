"""The vectorized tokenizer agrees with its plain-Python twin."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._hypothesis import examples
from transforms.decontam.tokens import tokenize_array, tokenize_py


def _grouped(texts: list[str | None], mask: bool) -> list[list[str]]:
    tokens, doc = tokenize_array(pa.array(texts, pa.string()), mask)
    out: list[list[str]] = [[] for _ in texts]
    for tok, d in zip(tokens.to_pylist(), doc.tolist(), strict=True):
        out[d].append(tok)
    return out


@pytest.mark.parametrize("mask", [True, False])
def test_known_texts(mask: bool) -> None:
    texts = ["Janet’s ducks lay 16 eggs, 12.5% of them!", "", None, "Café naïve ﬁsh x12y3 ٣٤",
             "def f(x_1):\n    return x_1 ** 2", "ÀB  c\td\ne", "中文字 and Straße"]
    assert _grouped(texts, mask) == [tokenize_py(t or "", mask) for t in texts]


def test_numbers_are_masked() -> None:
    assert tokenize_py("Buy 12 eggs at $3.50", True) == ["buy", "0", "eggs", "at", "0", "0"]
    assert _grouped(["Buy 12 eggs at $3.50"], True) == [["buy", "0", "eggs", "at", "0", "0"]]
    assert _grouped(["Buy 12 eggs"], False) == [["buy", "12", "eggs"]]


def test_sliced_array_is_tokenized_from_its_offset() -> None:
    arr = pa.array(["zero one", "two three", "four five"]).slice(1, 2)
    tokens, doc = tokenize_array(arr, True)
    assert tokens.to_pylist() == ["two", "three", "four", "five"]
    assert doc.tolist() == [0, 0, 1, 1]


_PIECES = st.sampled_from(list("abcXYZ019 _-.,'\n\té’ü½²ﬁ中ÄßŞ٣") + ["  ", "e\u0301"])
_TEXT = st.lists(_PIECES, max_size=40).map("".join)


@settings(max_examples=examples(150), deadline=None)
@given(st.lists(_TEXT, max_size=8), st.booleans())
def test_matches_python_twin(texts: list[str], mask: bool) -> None:
    assert _grouped(texts, mask) == [tokenize_py(t, mask) for t in texts]
