"""Distributed connected components and keyed near-dup decisions: chains, stars, long paths
that need several rounds (and the bounded remainder), components meeting release rows."""

from __future__ import annotations

import sys

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that
from hypothesis import given, settings
from hypothesis import strategies as hs

from tests._hypothesis import examples
from transforms.dedup import _steps as st
from transforms.dedup import components as cc
from transforms.dedup import keyed as kd
from transforms.dedup import lsh
from transforms.dedup.near import NearDecisions, band_entries, sig_entries

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _reference(hi: np.ndarray, lo: np.ndarray) -> dict[int, int]:
    return cc.finish(*cc.canonical(hi, lo))


def _labels(hi: np.ndarray, lo: np.ndarray, rounds: int) -> dict[int, int]:
    """The pure rounds, then stars read off as node → label (roots label themselves)."""
    h, lo_, _ = cc.local_components(hi, lo, rounds)
    out = {int(x): int(x) for x in lo_}
    out.update({int(a): int(b) for a, b in zip(h, lo_, strict=True)})
    return out


def _nodes(n: int, seed: int = 0) -> np.ndarray:
    v = np.unique(np.random.default_rng(seed).integers(-2**62, 2**62, 2 * n))
    return np.random.default_rng(seed).permutation(v)[:n]


def test_star_and_chain_converge_to_smallest_node() -> None:
    v = _nodes(12)
    star_hi, star_lo = v[1:6], np.full(5, v[0])
    chain_hi, chain_lo = v[7:], v[6:-1]
    hi, lo = np.r_[star_hi, chain_hi], np.r_[star_lo, chain_lo]
    assert _labels(hi, lo, 10) == _reference(hi, lo)
    assert len(set(_labels(hi, lo, 10).values())) == 2


def test_long_path_needs_several_rounds() -> None:
    v = _nodes(3000, seed=1)
    hi, lo, changed = cc.local_components(v[1:], v[:-1], 40)
    assert changed >= 6  # a path converges in about log2(length) rounds, not in one
    assert (lo == v.min()).all() and len(hi) == len(v) - 1


@settings(max_examples=examples(60), deadline=None)
@given(hs.integers(2, 60), hs.lists(hs.tuples(hs.integers(0, 59), hs.integers(0, 59)),
                                    max_size=90))
def test_rounds_match_union_find(n: int, edges: list) -> None:
    v = _nodes(60, seed=n)
    e = [(a % n, b % n) for a, b in edges]
    hi = np.array([v[a] for a, _ in e], np.int64)
    lo = np.array([v[b] for _, b in e], np.int64)
    assert _labels(hi, lo, 40) == _reference(hi, lo)


def _run_cc(hi: np.ndarray, lo: np.ndarray, P: int, rounds: int, limit: int) -> None:
    """Runs the Beam rounds; checks (inside the pipeline) labels equal union-find's."""
    expected = _reference(hi, lo)

    def collect(chunks: list) -> None:
        out: dict[int, int] = {}
        for _, c in chunks:
            for a, b in zip(c["node"].tolist(), c["label"].tolist(), strict=True):
                assert out.setdefault(a, b) == b
        assert out == expected

    opts = PipelineOptions(runner="DirectRunner")
    with TestPipeline(options=opts) as p:
        labels = (p | beam.Create([(0, {"hi": hi, "lo": lo})])
                  | cc.ConnectedComponents(P, rounds, limit))
        assert_that(labels | beam.combiners.ToList(), lambda x: collect(x[0]))


@pytest.mark.parametrize("rounds", [0, 1, 8])
def test_beam_components_with_remainder(rounds: int) -> None:
    """Too few rounds for a long path: the check hands the rest to the bounded remainder."""
    v = _nodes(200, seed=2)
    hi = np.r_[v[1:150], v[151:200]]
    lo = np.r_[v[:149], np.full(49, v[150])]
    _run_cc(hi, lo, P=3, rounds=rounds, limit=10_000)


def test_remainder_over_its_bound_fails_loudly() -> None:
    v = _nodes(300, seed=3)
    with pytest.raises(Exception, match="raise dedup cc_rounds"):
        _run_cc(v[1:], v[:-1], P=2, rounds=0, limit=10)


# ---- near decisions over crafted signatures ------------------------------------------------

BANDS, ROWS, PERM = 4, 4, 16


def _path_sigs(n: int) -> np.ndarray:
    """Row k differs from row k-1 in one band (cycling): neighbours share 12 of 16 slots,
    rows two apart 8 (candidates, but below a 0.6 threshold): a path of verified pairs."""
    sig = np.zeros((n, PERM), np.uint32)
    sig[0] = np.arange(PERM)
    for k in range(1, n):
        sig[k] = sig[k - 1]
        b = (k - 1) % BANDS
        sig[k, b * ROWS:(b + 1) * ROWS] = 1000 + k * PERM + np.arange(ROWS)
    return sig


def _feats(keys: list[str], scores: np.ndarray, sigs: np.ndarray) -> dict:
    return {"key": np.array(keys, dtype=object), "node": kd.node_ids(keys),
            "rank": kd.ranks(keys), "batch": np.zeros(len(keys), np.int64), "score": scores,
            "sigs": sigs, "tsigs": np.zeros((len(keys), 0), np.uint32),
            "nonempty": np.ones(len(keys), bool)}


def _near_beam(f: dict, rounds: int, check, dropped: set[str] = frozenset()) -> None:
    """NearDecisions on the features; `check` runs inside the pipeline on the decisions."""
    P = 3
    drop = {"node": kd.node_ids(sorted(dropped))}

    def collect(chunks: list) -> None:
        check({(k, kk, r, tuple(sorted(d.items())))
               for _, c in chunks for k, kk, r, d in zip(
                   c["key"], c["kkey"], c["reason"], c["detail"], strict=True)})

    with TestPipeline(options=PipelineOptions(runner="DirectRunner")) as p:
        inputs = {"bands": p | "B" >> beam.Create(list(band_entries(f, BANDS, ROWS, P))),
                  "sigs": p | "S" >> beam.Create(list(sig_entries(f, P))),
                  "dropped": p | "D" >> beam.Create(list(kd.route(drop, "node", P)))}
        out = inputs | NearDecisions(BANDS, ROWS, 0.6, True, P, rounds, 10_000)
        assert_that(out | beam.combiners.ToList(), lambda x: collect(x[0]))


def _near_reference(f: dict, dropped: set[str] = frozenset()) -> set[tuple]:
    order = np.argsort(f["key"].astype(str), kind="stable")
    i, j = lsh.candidate_pairs(f["sigs"][order], BANDS, ROWS)
    ks = f["key"][order]
    pairs = list(zip(ks[i].tolist(), ks[j].tolist(), strict=True))
    nodes = [{"ids": f["key"], "scores": f["score"], "sigs": f["sigs"]}]
    return {(k, kk, r, tuple(sorted(d.items())))
            for k, kk, r, d in st.decide_near(pairs, nodes, set(dropped), 0.6, True)}


@pytest.mark.parametrize("rounds", [1, 6])
def test_long_path_does_not_chain(rounds: int) -> None:
    """A path of 40 rows is one candidate component, but a row goes only with a keeper it is
    itself similar to: the best row (17) takes its two neighbours; then, in id order, row 0
    keeps and takes row 1, row 2 keeps and takes row 3, ... (rows two apart share 8 of 16)."""
    n = 40
    keys = [f"{k:032x}" for k in range(n)]
    scores = np.zeros(n)
    scores[17] = 1.0  # the best row keeps, wherever it sits on the path
    f = _feats(keys, scores, _path_sigs(n))
    ref = _near_reference(f)
    kept = {17, *range(0, 16, 2), *range(19, n, 2)}
    want = {(keys[r], keys[17] if r in (16, 18) else keys[r - 1]) for r in set(range(n)) - kept}

    def check(got: set) -> None:
        assert got == ref
        assert {(k, kk) for k, kk, _, _ in got} == want
        assert all(dict(d)["jaccard"] == 0.75 for _, _, _, d in got)

    _near_beam(f, rounds, check)


def test_component_meeting_release_rows() -> None:
    """Two released rows joined through new rows: the first released row (by id) keeps;
    released rows are never dropped and two released rows are never paired directly."""
    n = 12
    keys = [f"{k:032x}" for k in range(n)]
    keys[3] = st.RELEASE_TAG + keys[3]
    keys[9] = st.RELEASE_TAG + keys[9]
    scores = np.linspace(0, 1, n)
    scores[[3, 9]] = np.inf
    f = _feats(keys, scores, _path_sigs(n))
    ref = _near_reference(f, {keys[6]})

    def check(got: set) -> None:
        assert got == ref
        # row 6 was an exact duplicate: the path breaks there into two components; the
        # released rows take their direct neighbours, then 5, 11 and 7 keep, 1 takes 0
        by_release = {k for k, kk, _, _ in got if kk in (keys[3], keys[9])}
        assert by_release == {keys[2], keys[4], keys[8], keys[10]}
        assert {(k, kk) for k, kk, _, _ in got} - {(k, kk) for k, kk, _, _ in got
                                                   if k in by_release} == {(keys[0], keys[1])}
        assert all(not k.startswith(st.RELEASE_TAG) for k, _, _, _ in got)
        assert all(dict(d)["release"] == (k in by_release) for k, _, _, d in got)

    _near_beam(f, 2, check, dropped={keys[6]})
    # without the exact drop, one candidate component: released rows keep and take only
    # their direct neighbours; the other new rows pair up along the path (no chains)
    whole = _near_reference(f)
    assert {kk for _, kk, _, _ in whole} >= {keys[3], keys[9]}
    assert {k for k, kk, _, _ in whole if kk in (keys[3], keys[9])} == {
        keys[2], keys[4], keys[8], keys[10]}
    assert all(not k.startswith(st.RELEASE_TAG) for k, _, _, _ in whole)
    _near_beam(f, 1, lambda got: _same(got, whole))


def _same(a: set, b: set) -> None:
    assert a == b
