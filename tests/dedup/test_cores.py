"""Pure cores: signatures, LSH parameters, clusters, keepers (no Beam)."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param
from hypothesis import given, settings
from hypothesis import strategies as hs

from schemas.text import fold_text
from tests._hypothesis import examples
from transforms.dedup import clusters, lsh
from transforms.dedup.exact import exact_hashes
from transforms.dedup.minhash import MinHasher
from transforms.dedup.semantic import dedup_cluster

from ._data import BASE, EXACT, NEAR


def _jaccard(a: str, b: str, n: int = 5) -> float:
    def sh(t: str) -> set[str]:
        w = fold_text(t).split()
        return {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}
    x, y = sh(a), sh(b)
    return len(x & y) / len(x | y)


def test_lsh_params_are_datasketchs() -> None:
    assert lsh.lsh_params(0.7, 128) == tuple(_optimal_param(0.7, 128, 0.5, 0.5))


def test_permutations_match_datasketch_affine32() -> None:
    h = MinHasher(num_perm=64, seed=3)
    ds = MinHash(num_perm=64, seed=3)
    assert np.array_equal(h.a, ds.permutations[0]) and np.array_equal(h.b, ds.permutations[1])


def test_signature_estimates_jaccard() -> None:
    h = MinHasher(num_perm=256)
    texts = [BASE[2], NEAR[0], BASE[3], NEAR[1], BASE[0], BASE[1]]
    sig, nonempty = h.signatures(texts)
    assert sig.shape == (6, 256) and nonempty.all()
    for a, b in [(0, 1), (2, 3), (4, 5)]:
        est = float((sig[a] == sig[b]).mean())
        assert abs(est - _jaccard(texts[a], texts[b])) < 0.12


def test_batch_independent_and_fold_invariant() -> None:
    h = MinHasher()
    one, _ = h.signatures([BASE[0]])
    many, _ = h.signatures([BASE[3], BASE[0], "", BASE[1]])
    assert np.array_equal(one[0], many[1])
    # punctuation/case/whitespace noise gives the same signature
    noisy, _ = h.signatures([BASE[0].upper().replace(",", " ,  ")])
    assert np.array_equal(one[0], noisy[0])


def test_empty_and_short_texts() -> None:
    sig, nonempty = MinHasher().signatures(["", "   ", "two words", "!!"])
    assert nonempty.tolist() == [False, False, True, False]
    assert (sig[0] == np.iinfo(np.uint32).max).all()


def test_char_shingles() -> None:
    h = MinHasher(unit="char", char_ngram=4)
    sig, _ = h.signatures([BASE[2], NEAR[0], BASE[4]])
    assert (sig[0] == sig[1]).mean() > 0.7 > (sig[0] == sig[2]).mean()


def test_candidate_pairs_find_planted() -> None:
    h = MinHasher()
    texts = BASE + [NEAR[0], EXACT]
    sig, _ = h.signatures(texts)
    b, r = lsh.lsh_params(0.7, 128)
    i, j = lsh.candidate_pairs(sig, b, r)
    pairs = set(zip(i.tolist(), j.tolist(), strict=True))
    assert (2, 6) in pairs and (0, 7) in pairs
    est = lsh.verify_pairs(sig, i, j, 0.7)
    assert all(e >= 0.5 for e in est)


def test_priority_order_score_then_id() -> None:
    order = clusters.priority_order(["b", "a", "c", "d"], np.array([1.0, 1.0, 2.0, np.nan]))
    assert order.tolist() == [2, 1, 0, 3]
    pinned = clusters.priority_order(["b", "a"], None, np.array([True, False]))
    assert pinned.tolist() == [0, 1]


@settings(max_examples=examples(50), deadline=None)
@given(hs.integers(2, 40), hs.lists(hs.tuples(hs.integers(0, 39), hs.integers(0, 39)),
                                    max_size=60))
def test_union_find_roots_are_component_minima(n: int, edges: list) -> None:
    e = [(a % n, b % n) for a, b in edges]
    i = np.array([a for a, _ in e], np.int64)
    j = np.array([b for _, b in e], np.int64)
    roots = clusters.components(n, i, j)
    # reference: merge member sets edge by edge; a component's root is its smallest member
    member_of = {x: {x} for x in range(n)}
    for a, b in e:
        if member_of[a] is not member_of[b]:
            merged = member_of[a] | member_of[b]
            for x in merged:
                member_of[x] = merged
    assert roots.tolist() == [min(member_of[x]) for x in range(n)]


def test_exact_hash_folds() -> None:
    h = exact_hashes([BASE[0], EXACT, BASE[1]])
    assert h[0] != h[2]
    assert exact_hashes(["Hello,   World!"])[0] == exact_hashes(["hello world"])[0]


def test_semantic_greedy_keeps_first() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 8)).astype(np.float32)
    v[1] = v[0] + 0.01
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    keeper, sim = dedup_cluster(v, eps=0.05)
    assert keeper.tolist() == [0, 0, 2] and sim[1] > 0.95


@pytest.mark.parametrize("key", ["prompt", "first_user", "conversation"])
def test_key_texts(key: str) -> None:
    from schemas.records import example_row, examples_to_batch
    from transforms.dedup.exact import key_texts

    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"},
            {"role": "assistant", "content": "a"}, {"role": "user", "content": "u2"}]
    batch = examples_to_batch([example_row("x", msgs)])
    expected = {"prompt": "u1\nu2", "first_user": "u1",
                "conversation": "system: s\nuser: u1\nassistant: a\nuser: u2"}[key]
    assert key_texts(batch, key) == [expected]


def test_decide_near_when_every_node_was_exact_dropped() -> None:
    from transforms.dedup._steps import decide_near

    sig = np.zeros((2, 8), np.uint32)
    nodes = [{"ids": np.array(["a", "b"], dtype=object), "scores": np.full(2, np.nan),
              "sigs": sig}]
    assert decide_near([("a", "b")], nodes, {"a", "b"}, 0.7, True) == []
    assert decide_near([("a", "b")], nodes, {"b"}, 0.7, True) == []


@settings(max_examples=examples(200), deadline=None)
@given(hs.lists(hs.text(alphabet=" \t\n\v.,;:'\"-_()aAbBzZ09éÉñ\u00a0\u3000\u2028!?", max_size=40),
                min_size=1, max_size=8))
def test_word_shingles_follow_fold_text(texts: list[str]) -> None:
    """ASCII byte tables and the pyarrow fold give the words of fold_text, text by text."""
    h = MinHasher(ngram=2)
    got, got_off = h.shingle_hashes(texts)
    ref, ref_off = h.shingle_hashes([" ".join(fold_text(t).split()) for t in texts])
    assert np.array_equal(got_off, ref_off) and np.array_equal(got, ref)
    for k, t in enumerate(texts):
        words = len(fold_text(t).split())
        assert got_off[k + 1] - got_off[k] == (max(words - 1, 1) if words else 0)


def test_ascii_and_unicode_texts_hash_words_alike() -> None:
    h = MinHasher(ngram=2)
    hashes, off = h.shingle_hashes(["Hello, World! foo_bar 42", "hello world foo_bar 42 café"])
    assert off.tolist() == [0, 3, 7]
    assert np.array_equal(hashes[0:3], hashes[3:6])


def test_long_batches_are_sliced_without_changing_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    import transforms.dedup.minhash as minhash

    texts = [BASE[k % len(BASE)] + f" doc {k}" for k in range(50)]
    whole, whole_sig = MinHasher().shingle_hashes(texts), MinHasher().signatures(texts)
    monkeypatch.setattr(minhash, "_CHUNK_BYTES", 300)
    sliced, sliced_sig = MinHasher().shingle_hashes(texts), MinHasher(threads=2).signatures(texts)
    assert np.array_equal(whole[0], sliced[0]) and np.array_equal(whole[1], sliced[1])
    assert np.array_equal(whole_sig[0], sliced_sig[0]) and whole_sig[1].all()
