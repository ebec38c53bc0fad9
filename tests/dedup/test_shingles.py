"""Shingling options: character n-grams, length-adaptive (auto) shingling, number masking,
and the near-dedup settings shown in the report."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.text import fold_text
from transforms.dedup import _steps as st
from transforms.dedup.config import DedupConfig
from transforms.dedup.minhash import MinHasher
from transforms.dedup.release_index import load_index, save_index

from ._data import BASE

SHORT = "Name three primary colours."
LONG = BASE[2]  # about 60 words


def test_char_shingles_count_folded_grams() -> None:
    h = MinHasher(unit="char", char_ngram=5)
    _, off = h.shingle_hashes([SHORT, "", "Hi!"])
    folded = fold_text(SHORT)
    assert off.tolist() == [0, len(folded) - 4, len(folded) - 4, len(folded) - 3]


def test_auto_uses_chars_for_short_and_words_for_long_texts() -> None:
    auto = MinHasher(unit="auto", char_max_words=10)
    chars, words = MinHasher(unit="char"), MinHasher(unit="word")
    got, off = auto.shingle_hashes([LONG, SHORT, "", LONG])
    c, _ = chars.shingle_hashes([SHORT])
    w, _ = words.shingle_hashes([LONG])
    assert np.array_equal(got[off[0]:off[1]], w) and np.array_equal(got[off[3]:off[4]], w)
    assert np.array_equal(got[off[1]:off[2]], c) and off[2] == off[3]


def test_a_typo_keeps_a_short_text_near_only_with_char_shingles() -> None:
    text = "Name three primary colours and give one example of mixing two of them."
    typo = text.replace("example", "exmaple")
    for unit, near in (("word", False), ("auto", True)):
        sig, _ = MinHasher(unit=unit, char_max_words=100, num_perm=256).signatures(
            [text, typo])
        assert bool((sig[0] == sig[1]).mean() >= 0.5) is near, unit


def test_mask_numbers_makes_changed_numbers_equal() -> None:
    a, b = "Tom has 12 apples and 1,500 pears.", "Tom has 13 apples and 2,750 pears."
    for unit in ("word", "char", "auto"):
        plain, _ = MinHasher(unit=unit, char_max_words=100).signatures([a, b])
        masked, _ = MinHasher(unit=unit, char_max_words=100, mask_numbers=True).signatures(
            [a, b])
        assert np.array_equal(masked[0], masked[1]) and not np.array_equal(plain[0], plain[1])


def test_unknown_unit_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown shingle unit"):
        MinHasher(unit="syllable").shingle_hashes([SHORT])


def test_near_settings_show_datasketch_choice() -> None:
    from datasketch.lsh import _optimal_param

    cfg = DedupConfig(threshold=0.6, fp_weight=0.3, fn_weight=0.7)
    s = st.near_settings(cfg)
    assert (s["bands"], s["rows"]) == tuple(_optimal_param(0.6, 128, 0.3, 0.7))
    assert s["shingle"] == "auto" and 0 < s["false_positive_area"] < 1
    assert 0 < s["false_negative_area"] < 1
    assert st.near_settings(DedupConfig(near=False)) == {}


def test_release_index_of_another_shingling_is_refused(tmp_path) -> None:
    old = st.index_params(DedupConfig(shingle="word"))
    save_index(str(tmp_path), ["a"], np.zeros(1, np.uint64), np.zeros((1, 128), np.uint32), old)
    with pytest.raises(ValueError, match="rebuild it"):
        load_index(str(tmp_path), st.index_params(DedupConfig()))
    v2 = {**old, "scheme": "affine32-fmix64-v2"}
    save_index(str(tmp_path), ["a"], np.zeros(1, np.uint64), np.zeros((1, 128), np.uint32), v2)
    with pytest.raises(ValueError, match="rebuild it"):
        load_index(str(tmp_path), old)
