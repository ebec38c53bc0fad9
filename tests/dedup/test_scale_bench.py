"""bench/dedup_scale.py's generator and stage run on a tiny size: planted clusters are found
exactly (pairwise F1 = 1.0), and the generator is deterministic."""

from __future__ import annotations

import numpy as np

from bench import dedup_scale as ds


def test_generator_is_deterministic_with_planted_clusters() -> None:
    a, b = ds.texts(500, 0, 50), ds.texts(500, 0, 50)
    assert a == b and len(set(a)) > 30
    label, member = ds.layout(500)
    assert len(label) == 500 and member.min() == 0 and member.max() <= max(ds.SIZES) - 1
    assert (np.bincount(label) > 1).sum() > 50


def test_pair_f1_counts_pairs() -> None:
    truth = np.array([0, 0, 0, 1, 1, 2])
    assert ds.pair_f1(truth.copy(), truth)[2] == 1.0
    p, r, _ = ds.pair_f1(np.array([0, 0, 5, 1, 1, 2]), truth)  # one member split off
    assert p == 1.0 and r == 2 / 4


def test_tiny_run_finds_every_planted_cluster() -> None:
    r = ds.run_size(3000, batch_rows=400, partitions=5, mode="in_memory", workers=1)
    assert r["f1"] == 1.0 and r["precision"] == 1.0 and r["recall"] == 1.0
    assert r["rejected"] > 1000 and r["max_group_rows"] > 0
