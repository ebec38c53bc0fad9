"""Partner selection on fixed embeddings: the window, duplicates, ties, order independence."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.compound.partners import select_partners


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
    assert out[0].index == 2 and abs(out[0].similarity - 0.8) < 1e-5
    # "far" (0.1 to the anchor, ~0.1*x to others) has nobody in the window
    assert out[4].index == -1 and out[4].reason == "none_in_window"


def test_only_duplicates_means_no_partner() -> None:
    emb = embed_with_cosines([0.99, 0.98])
    out = select_partners(["a", "b", "c"], emb, 0.3, 0.9, neighbours=2)
    assert out[0].index == -1 and out[0].reason == "all_duplicates"


def test_neighbour_count_limits_the_search() -> None:
    emb = embed_with_cosines([0.97, 0.96, 0.5])
    ids = ["a", "d1", "d2", "ok"]
    assert select_partners(ids, emb, 0.3, 0.9, neighbours=2)[0].reason == "all_duplicates"
    assert ids[select_partners(ids, emb, 0.3, 0.9, neighbours=3)[0].index] == "ok"


def test_same_id_and_self_are_never_partners() -> None:
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    out = select_partners(["x", "x", "y"], emb, 0.3, 1.0, neighbours=5)
    assert out[0].index == 2 and out[1].index == 2


def test_ties_are_broken_by_id_not_position() -> None:
    emb = embed_with_cosines([0.6, 0.6, 0.6])
    for ids in (["a", "m", "c", "b"], ["a", "c", "b", "m"]):
        out = select_partners(ids, emb, 0.3, 0.9, neighbours=3)
        assert ids[out[0].index] == "b"


def test_wanted_mask_skips_rows() -> None:
    emb = embed_with_cosines([0.6])
    out = select_partners(["a", "b"], emb, 0.3, 0.9, neighbours=1, wanted=[False, True])
    assert out[0].reason == "not_wanted" and out[1].index == 0


def test_single_seed_has_no_neighbours() -> None:
    out = select_partners(["a"], np.ones((1, 4), dtype=np.float32) / 2, 0.0, 1.0, neighbours=3)
    assert out[0].reason == "no_neighbours"


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=2, max_value=30), st.integers(0, 10_000), st.integers(1, 6))
def test_partner_map_is_independent_of_input_order(n: int, seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = [f"id{i:03d}" for i in range(n)]
    base = select_partners(ids, emb, -0.2, 0.8, neighbours=k, chunk=7)
    perm = rng.permutation(n)
    shuffled = select_partners([ids[i] for i in perm], emb[perm], -0.2, 0.8, neighbours=k)
    as_ids = {ids[i]: (ids[c.index] if c.index >= 0 else None) for i, c in enumerate(base)}
    as_ids_perm = {ids[perm[i]]: (ids[perm[c.index]] if c.index >= 0 else None)
                   for i, c in enumerate(shuffled)}
    assert as_ids == as_ids_perm
    for i, c in enumerate(base):
        if c.index >= 0:
            assert c.index != i and -0.2 <= c.similarity <= 0.8
