from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.tag_instruct.reward import best_and_worst, pair_skip_reason, rewards
from transforms.tag_instruct.utility import (
    UtilityTable,
    add_row,
    aggregate_similar,
    count_tokens,
    load_utility,
    merge_partials,
    reference_sets,
    save_utility,
    top_bottom_table,
    utility_partial,
)

# (tags, response tokens): shares are tokens / number of tags.
ROWS = [
    (["math", "proof", "logic"], 300),   # 100 each
    (["math", "proof"], 100),            # 50 each
    (["math", "logic", "trivia"], 30),   # 10 each
    (["trivia", "greeting"], 4),         # 2 each
    (["trivia", "greeting", "logic"], 9),  # 3 each
    (["greeting"], 1),                   # 1
]


def test_count_tokens_words_and_punctuation() -> None:
    assert count_tokens("Hello, world! 42 times.") == 7
    assert count_tokens("") == 0


def test_utility_is_mean_of_even_shares() -> None:
    table = UtilityTable.from_partial(utility_partial(ROWS))
    assert table.count == {"math": 3, "proof": 2, "logic": 3, "trivia": 3, "greeting": 3}
    assert table.utility["math"] == pytest.approx((100 + 50 + 10) / 3)
    assert table.utility["proof"] == pytest.approx(75.0)
    assert table.utility["logic"] == pytest.approx((100 + 10 + 3) / 3)
    assert table.utility["trivia"] == pytest.approx((10 + 2 + 3) / 3)
    assert table.utility["greeting"] == pytest.approx((2 + 3 + 1) / 3)


def test_partials_merge_like_one_pass() -> None:
    whole = UtilityTable.from_partial(utility_partial(ROWS))
    merged = UtilityTable.from_partial(
        merge_partials([utility_partial(ROWS[:2]), utility_partial(ROWS[2:]), {}]))
    assert merged.count == whole.count
    for tag, value in whole.utility.items():
        assert merged.utility[tag] == pytest.approx(value)


def test_reference_sets_use_pool_of_frequent_tags() -> None:
    table = UtilityTable.from_partial(utility_partial(ROWS))
    refs = reference_sets(table, k=1, min_count=3)
    # proof (2 occurrences) is outside the pool despite its high utility
    assert refs.pool_size == 4
    assert refs.top == ("math",)
    assert refs.bottom == ("greeting",)
    refs2 = reference_sets(table, k=5, min_count=3)
    assert refs2.top == ("math", "logic")  # K shrinks to pool // 2: sets never overlap
    assert refs2.bottom == ("greeting", "trivia")


def test_reference_sets_ties_broken_by_tag_and_fallback() -> None:
    table = UtilityTable(utility={"b": 1.0, "a": 1.0, "c": 0.0, "d": 0.0},
                         count={"b": 1, "a": 1, "c": 1, "d": 1})
    refs = reference_sets(table, k=1, min_count=3, fallback_min_count=1)
    assert refs.min_count == 1 and refs.top == ("a",) and refs.bottom == ("d",)
    same = UtilityTable(utility={"x": 1.0, "y": 1.0, "z": 1.0}, count={"x": 3, "y": 3, "z": 3})
    assert reference_sets(same, k=5).top == ("x",) and reference_sets(same, k=5).bottom == ("z",)
    none = reference_sets(table, k=1, min_count=3, fallback_min_count=None)
    assert none.top == () and none.bottom == () and none.pool_size == 0


def test_utility_file_roundtrip_and_plain_form(tmp_path) -> None:
    table = UtilityTable.from_partial(utility_partial(ROWS))
    path = tmp_path / "u.json"
    save_utility(table, path)
    loaded = load_utility(path)
    assert loaded.count == table.count
    assert loaded.utility == pytest.approx(table.utility)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"Data Structures": 10.0, "data structure": 20.0, "Poems": 1}))
    t2 = load_utility(plain)
    assert t2.utility == {"data structure": pytest.approx(15.0), "poem": 1.0}


def test_reward_is_top_similarity_minus_bottom_similarity() -> None:
    top = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    bottom = np.array([[0.0, 0.0, 1.0]])
    cands = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 0.0]])
    r = rewards(cands, top, bottom)
    s = 1 / np.sqrt(2)
    assert r == pytest.approx([0.5 - 0.0, 0.0 - 1.0, s - 0.0])
    assert rewards(cands, np.zeros((0, 3)), np.zeros((0, 3))) == pytest.approx([0, 0, 0])


def test_best_and_worst_tie_break_by_sample_order() -> None:
    assert best_and_worst([0.5, 0.5, 0.1]) == (0, 2)
    assert best_and_worst([0.2, 0.2]) == (0, 1)
    assert best_and_worst([0.3]) == (0, 0)
    with pytest.raises(ValueError):
        best_and_worst([])


@pytest.mark.parametrize(("valid", "refs", "margin", "reason"), [
    (1, True, 0.0, "single_candidate"),
    (3, False, 0.0, "no_reference_sets"),
    (3, True, 0.0, "reward_tie"),
    (3, True, 4e-7, "reward_tie"),       # float noise rounds to a tie
    (3, True, 0.005, "margin_below_min"),
    (3, True, 0.01, None),
    (2, True, 0.4, None),
])
def test_pair_needs_a_real_margin(valid, refs, margin, reason) -> None:
    assert pair_skip_reason(valid, refs, margin, 0.01) == reason


def test_add_row_in_place_counts_a_repeated_tag_once() -> None:
    acc: dict = {}
    assert add_row(acc, ["math", "math", "", "proof"], 10) is acc
    add_row(acc, [], 99)
    add_row(acc, ["math"], 4)
    assert acc == {"math": [9.0, 2.0], "proof": [5.0, 1.0]}


def test_table_written_keeps_top_and_bottom_k_of_frequent_tags(tmp_path) -> None:
    table = UtilityTable.from_partial(utility_partial(ROWS))
    small = top_bottom_table(table, k=1, min_count=3)
    assert set(small.utility) == {"math", "greeting"}  # proof: only 2 occurrences
    path = tmp_path / "t.json"
    save_utility(small, path)
    assert set(load_utility(path).utility) == {"math", "greeting"}
    assert set(top_bottom_table(table, k=1000, min_count=3).utility) == {
        "math", "logic", "trivia", "greeting"}


def test_near_identical_tags_merge_into_the_most_frequent() -> None:
    vectors = {"math": [1.0, 0.0], "mathematics": [0.99, 0.141], "poetry": [0.0, 1.0]}

    def embed(texts):
        out = np.array([vectors[t] for t in texts])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    partial = {"math": [30.0, 3.0], "mathematics": [10.0, 1.0], "poetry": [2.0, 2.0]}
    merged, into = aggregate_similar(partial, embed, threshold=0.95)
    assert into == {"mathematics": "math"}
    assert merged == {"math": [40.0, 4.0], "poetry": [2.0, 2.0]}
    assert aggregate_similar(partial, embed, threshold=0.999)[1] == {}


_TAG = st.sampled_from(["math", "proof", "logic", "trivia", "greeting", "code"])
_ROW = st.tuples(st.lists(_TAG, min_size=0, max_size=4), st.integers(0, 500))


@given(st.lists(_ROW, max_size=30), st.integers(0, 30))
def test_utility_split_anywhere_merges_to_the_same_table(rows, cut) -> None:
    whole = UtilityTable.from_partial(utility_partial(rows))
    parts = UtilityTable.from_partial(
        merge_partials([utility_partial(rows[:cut]), utility_partial(rows[cut:])]))
    assert parts.count == whole.count
    assert parts.utility == pytest.approx(whole.utility)
    # utility is a mean of shares, so it lies within [0, max tokens]
    assert all(0 <= u <= 500 for u in whole.utility.values())


@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**16))
def test_swapping_reference_sets_negates_reward(n, k, seed) -> None:
    rng = np.random.default_rng(seed)
    cands, top, bottom = (rng.normal(size=(m, 8)) for m in (n, k, k))
    assert rewards(cands, top, bottom) == pytest.approx(-rewards(cands, bottom, top), abs=1e-9)
    assert np.all(np.abs(rewards(cands, top, bottom)) <= 2 + 1e-9)
