"""Partner selection on fixed embeddings: the window, duplicates, ties, order independence."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._hypothesis import examples
from transforms.compound.partners import (
    PartnerChoice,
    blocks,
    bucketed_search,
    choose,
    lsh_bits,
    merge_candidates,
    select_partners,
)


def unit_pair(cos: float) -> np.ndarray:
    """Two unit vectors in the plane with cosine `cos`; the rest are filled in by callers."""
    return np.array([[1.0, 0.0], [cos, np.sqrt(1 - cos * cos)]], dtype=np.float32)


def embed_with_cosines(cosines: list[float]) -> np.ndarray:
    """Row 0 is the anchor e0; row i+1 has cosine `cosines[i]` with it and is orthogonal-ish to
    the others (each in its own extra dimension)."""
    n = len(cosines) + 1
    emb = np.zeros((n, n), dtype=np.float32)
    emb[0, 0] = 1.0
    for i, c in enumerate(cosines, start=1):
        emb[i, 0] = c
        emb[i, i] = np.sqrt(1 - c * c)
    return emb


def test_nearest_inside_window_wins() -> None:
    # anchor's neighbours: 0.97 (duplicate), 0.8, 0.5, 0.1
    emb = embed_with_cosines([0.97, 0.8, 0.5, 0.1])
    ids = ["a", "dup", "near", "mid", "far"]
    out = select_partners(ids, emb, 0.3, 0.9, neighbours=4)
    assert out[0].partner_id == "near" and abs(out[0].similarity - 0.8) < 1e-5
    # "far" (0.1 to the anchor, ~0.1*x to others) has nobody in the window
    assert out[4].partner_id is None and out[4].reason == "none_in_window"


def test_only_duplicates_means_no_partner() -> None:
    emb = embed_with_cosines([0.99, 0.98])
    out = select_partners(["a", "b", "c"], emb, 0.3, 0.9, neighbours=2)
    assert out[0].partner_id is None and out[0].reason == "all_duplicates"


def test_neighbour_count_limits_the_search() -> None:
    emb = embed_with_cosines([0.97, 0.96, 0.5])
    ids = ["a", "d1", "d2", "ok"]
    assert select_partners(ids, emb, 0.3, 0.9, neighbours=2)[0].reason == "all_duplicates"
    assert select_partners(ids, emb, 0.3, 0.9, neighbours=3)[0].partner_id == "ok"


def test_same_id_and_self_are_never_partners() -> None:
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    out = select_partners(["x", "x", "y"], emb, 0.3, 1.0, neighbours=5)
    assert out[0].partner_id == "y" and out[1].partner_id == "y"


def test_ties_are_broken_by_id_not_position() -> None:
    emb = embed_with_cosines([0.6, 0.6, 0.6])
    for ids in (["a", "m", "c", "b"], ["a", "c", "b", "m"]):
        out = select_partners(ids, emb, 0.3, 0.9, neighbours=3)
        assert out[0].partner_id == "b"


def test_wanted_mask_skips_rows() -> None:
    emb = embed_with_cosines([0.6])
    out = select_partners(["a", "b"], emb, 0.3, 0.9, neighbours=1, wanted=[False, True])
    assert out[0].reason == "not_wanted" and out[1].partner_id == "a"


def test_single_seed_has_no_neighbours() -> None:
    out = select_partners(["a"], np.ones((1, 4), dtype=np.float32) / 2, 0.0, 1.0, neighbours=3)
    assert out[0].reason == "no_neighbours"


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(min_value=2, max_value=30), st.integers(0, 10_000), st.integers(1, 6))
def test_partner_choice_is_independent_of_input_order(n: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = [f"id{i:03d}" for i in range(n)]
    base = select_partners(ids, emb, -0.2, 0.8, neighbours=k)
    perm = rng.permutation(n)
    shuffled = select_partners([ids[i] for i in perm], emb[perm], -0.2, 0.8, neighbours=k)
    by_id = {ids[perm[i]]: c for i, c in enumerate(shuffled)}
    for i, c in enumerate(base):
        other = by_id[ids[i]]
        assert (c.partner_id, c.reason) == (other.partner_id, other.reason)
        assert (c.similarity is None) == (other.similarity is None)
        if c.similarity is not None:
            assert abs(c.similarity - other.similarity) < 1e-9
    for i, c in enumerate(base):
        if c.partner_id is not None:
            assert c.partner_id != ids[i] and -0.2 <= c.similarity <= 0.8


def _bucketed(ids: list[str], emb: np.ndarray, bits: int, tables: int, max_block: int,
              k: int, lo: float, hi: float) -> dict[str, PartnerChoice]:
    return bucketed_search(ids, emb, bits=bits, tables=tables, max_block=max_block,
                           neighbours=k, min_similarity=lo, max_similarity=hi)[0]


def test_one_bucket_is_the_exact_search() -> None:
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(60, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = [f"s{i:02d}" for i in range(60)]
    exact = dict(zip(ids, select_partners(ids, emb, 0.0, 0.9, neighbours=4), strict=True))
    assert _bucketed(ids, emb, bits=0, tables=1, max_block=100, k=4, lo=0.0, hi=0.9) == exact


def test_buckets_keep_most_nearest_neighbours_and_bound_the_block() -> None:
    """Clustered seeds (as topics are): several LSH tables find the exact partner for nearly
    every seed, although no block holds more than 64 of the 400 seeds."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(40, 32))
    emb = (np.repeat(centres, 10, axis=0) + 0.35 * rng.normal(size=(400, 32))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = [f"s{i:03d}" for i in range(400)]
    exact = dict(zip(ids, select_partners(ids, emb, 0.3, 0.99, neighbours=4), strict=True))
    bits = lsh_bits(400, 50, 64)
    assert bits == 3
    got = _bucketed(ids, emb, bits=bits, tables=4, max_block=64, k=4, lo=0.3, hi=0.99)
    same = sum(got[i].partner_id == exact[i].partner_id for i in ids) / len(ids)
    assert same >= 0.9, same
    # a found partner is always a real in-window neighbour, with its true similarity
    for i, c in got.items():
        if c.partner_id is not None:
            j = ids.index(c.partner_id)
            assert abs(float(emb[ids.index(i)] @ emb[j]) - c.similarity) < 1e-5


def test_lsh_bits_scale_with_the_seed_count() -> None:
    assert lsh_bits(30, 512, 4096) == 0 and lsh_bits(4096, 1024, 4096) == 0
    assert lsh_bits(4097, 1024, 4096) == 3
    assert lsh_bits(1_000_000, 1024, 4096) == 10
    assert [len(b) for b in blocks(["c", "a", "b", "d", "e"], 2)] == [2, 2, 1]
    assert blocks(["c", "a", "b"], 2)[0] == [1, 2]  # id order: a, b


def test_merge_keeps_the_best_similarity_per_partner() -> None:
    merged = merge_candidates([[(0.5, "b"), (0.4, "c")], [(0.5, "b"), (0.45, "a")]], k=2)
    assert merged == [(0.5, "b"), (0.45, "a")]
    assert choose([], 0.1, 0.9).reason == "no_neighbours"
