"""DedupStage on real Beam DirectRunners (in-memory and multi-process) with planted duplicates."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.base import MAIN, REJECTED, REPORT, RunContext
from transforms.dedup.config import DedupConfig
from transforms.dedup.local import dedup_local
from transforms.dedup.release_index import MINHASH_FILE
from transforms.dedup.stage import DedupStage

from ._data import BASE, EXACT, NEAR, PARAPHRASE, UNRELATED, batches, planted_rows, row

# multi-process workers cannot import the test package: ship this module's helpers by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

# the multi-process runner starts worker processes: slow (make test-fast leaves it out)
RUNNER_MODES = ["in_memory", pytest.param("multi_processing", marks=pytest.mark.slow)]


def _run(rows: list[dict], cfg: DedupConfig, mode: str = "in_memory", size: int = 4,
         check=None) -> None:
    opts = PipelineOptions(runner="DirectRunner", direct_running_mode=mode,
                           direct_num_workers=2 if mode == "multi_processing" else 1)
    with TestPipeline(options=opts) as p:
        out = (p | beam.Create(batches(rows, size)) | DedupStage(cfg, RunContext(seed=0)))
        check(out)


def _ids(batch) -> list[str]:
    return batch.column("id").to_pylist()


def _rejects(batch) -> list[tuple[str, str, str]]:
    return list(zip(batch.column("id").to_pylist(), batch.column("reject_reason").to_pylist(),
                    batch.column("duplicate_of").to_pylist(), strict=True))


def _id(text: str) -> str:
    return row(text)["id"]


@pytest.mark.parametrize("mode", RUNNER_MODES)
def test_planted_duplicates_found_unrelated_kept(mode: str) -> None:
    """Exact, near and semantic duplicates, on one process and across two worker processes."""
    rows = planted_rows()
    cfg = DedupConfig(enabled=True, semantic=True, semantic_eps=0.15)
    exp_pairs = {
        frozenset({_id(BASE[0]), _id(EXACT)}): "exact_duplicate",
        frozenset({_id(BASE[2]), _id(NEAR[0])}): "near_duplicate",
        frozenset({_id(BASE[3]), _id(NEAR[1])}): "near_duplicate",
        frozenset({_id(BASE[5]), _id(PARAPHRASE)}): "semantic_duplicate",
    }

    def check_rej(rej: list) -> None:
        got = {frozenset({i, k}): r for i, r, k in rej}
        assert got == exp_pairs, got

    unrelated = [_id(t) for t in UNRELATED]  # computed here: workers cannot import ._data

    def check_main(kept: list) -> None:
        assert len(kept) == len(rows) - 4 and len(set(kept)) == len(kept)
        for rid in unrelated:
            assert rid in kept

    def check(out) -> None:
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(_rejects)
                    | "RL" >> beam.combiners.ToList(), lambda x: check_rej(x[0]), label="rej")
        assert_that(out[MAIN] | "M" >> beam.FlatMap(_ids) | "ML" >> beam.combiners.ToList(),
                    lambda x: check_main(x[0]), label="main")
        assert_that(out[REPORT] | beam.Map(lambda r: (r["stage"], r["dropped"])),
                    equal_to([("dedup", {"exact_duplicate": 1, "near_duplicate": 2,
                                         "semantic_duplicate": 1})]), label="report")

    _run(rows, cfg, mode=mode, check=check)


def test_keeper_is_best_score_then_id() -> None:
    rows = [row(BASE[2], 0.1), row(NEAR[0], 0.9), row(BASE[1], None), row(BASE[1] + " !", None)]
    cfg = DedupConfig(enabled=True)
    lo, hi = sorted([rows[2]["id"], rows[3]["id"]])
    expected = [(rows[0]["id"], "near_duplicate", rows[1]["id"])]
    if rows[2]["id"] != rows[3]["id"]:
        expected.append((hi, "exact_duplicate", lo))

    def check(out) -> None:
        assert_that(out[REJECTED] | beam.FlatMap(_rejects), equal_to(expected))

    _run(rows, cfg, check=check)


@pytest.mark.parametrize("mode", RUNNER_MODES)
def test_removed_copy_names_its_keeper_by_another_id(mode: str) -> None:
    """Two identical input rows (one content hash, two row ids): one is kept, the other is
    an exact duplicate whose duplicate_of is the keeper's id, not its own; the keeper is the
    smaller id (equal scores), the same on every runner."""
    from schemas.ids import row_id
    from schemas.records import example_row

    copies = []
    for n in (0, 5):
        r = row(BASE[0])
        src = {"dataset": "t", "file": "t.jsonl", "row": n}
        copies.append(example_row(row_id(r["content_hash"], "t.jsonl", n), r["messages"], src))
    rows = [*copies, row(UNRELATED[0])]
    assert copies[0]["content_hash"] == copies[1]["content_hash"]
    assert copies[0]["id"] != copies[1]["id"]
    keeper, dropped = sorted(c["id"] for c in copies)

    def check(out) -> None:
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(_rejects),
                    equal_to([(dropped, "exact_duplicate", keeper)]), label="rejected")
        assert_that(out[MAIN] | "M" >> beam.FlatMap(_ids),
                    equal_to([keeper, rows[2]["id"]]), label="kept")

    _run(rows, DedupConfig(enabled=True), mode=mode, check=check)


def _reference(rows: list[dict], cfg: DedupConfig) -> tuple[list[str], list[tuple]]:
    res = dedup_local(batches(rows, 4), cfg)
    kept = sorted(r["id"] for r in rows if r["id"] not in res)
    return kept, sorted((i, v[1], v[0]) for i, v in res.items())


@pytest.mark.parametrize("mode", RUNNER_MODES)
def test_runners_match_reference_and_conserve(mode: str) -> None:
    rows = planted_rows(with_scores=True) + [row(t + " Please answer briefly.", 0.5)
                                              for t in BASE[:3]]
    cfg = DedupConfig(enabled=True, num_partitions=3)
    kept, rejected = _reference(rows, cfg)
    assert len(kept) + len(rejected) == len(rows) and len(rejected) >= 3

    def check(out) -> None:
        assert_that(out[MAIN] | "M" >> beam.FlatMap(_ids), equal_to(kept), label="kept")
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(_rejects), equal_to(rejected),
                    label="rejected")

    _run(rows, cfg, mode=mode, size=3, check=check)


def test_idempotent_second_pass_drops_nothing() -> None:
    rows = planted_rows()
    cfg = DedupConfig(enabled=True)
    res = dedup_local(batches(rows), cfg)
    survivors = [r for r in rows if r["id"] not in res]
    assert res and not dedup_local(batches(survivors), cfg)

    def check(out) -> None:
        assert_that(out[REJECTED], equal_to([]), label="none")
        assert_that(out[MAIN] | beam.FlatMap(_ids), equal_to([r["id"] for r in survivors]))

    _run(survivors, cfg, check=check)


@pytest.fixture(scope="module")
def release_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The index of a first release (the BASE rows, all kept), written once for the tests of a
    later release: semantic on, so it holds the MinHash and the embedding files."""
    index = tmp_path_factory.mktemp("release") / "release"
    cfg = DedupConfig(enabled=True, semantic=True, write_index_dir=str(index))
    _run([row(t) for t in BASE], cfg, check=lambda out: assert_that(out[REJECTED], equal_to([])))
    return index


@pytest.fixture
def minhash_index(release_index: Path, tmp_path: Path) -> str:
    """The first release's MinHash file alone: the index a run without semantic dedup writes
    (its MinHash file is the same, byte for byte)."""
    shutil.copy(release_index / MINHASH_FILE, tmp_path / MINHASH_FILE)
    return str(tmp_path)


@pytest.mark.slow
def test_against_previous_release(release_index: Path) -> None:
    index = str(release_index)
    assert (release_index / "dedup_minhash.npz").exists()
    assert (release_index / "dedup_embeddings.npz").exists()

    new = [row(EXACT), row(NEAR[0]), row(PARAPHRASE), row(BASE[1]), *[row(t) for t in UNRELATED]]
    cfg2 = DedupConfig(enabled=True, semantic=True, semantic_eps=0.15, release_index_dir=index)
    expected = [(_id(EXACT), "exact_duplicate", _id(BASE[0])),
                (_id(NEAR[0]), "near_duplicate", _id(BASE[2])),
                (_id(PARAPHRASE), "semantic_duplicate", _id(BASE[5])),
                (_id(BASE[1]), "exact_duplicate", _id(BASE[1]))]

    def check(out) -> None:
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(_rejects), equal_to(expected),
                    label="rej")
        assert_that(out[MAIN] | "M" >> beam.FlatMap(_ids),
                    equal_to([_id(t) for t in UNRELATED]), label="main")

    _run(new, cfg2, check=check)


def test_snapshot_release_keeps_released_ids(minhash_index: str) -> None:
    """release_keep_same_ids: a released row read again stays (once); its copies and new
    near-duplicates of released rows go."""
    index = minhash_index
    again = row(BASE[1])
    copy = dict(again, source={"dataset": "t", "file": "other.jsonl", "row": 7})
    new = [again, copy, row(NEAR[0]), *[row(t) for t in UNRELATED]]
    cfg = DedupConfig(enabled=True, release_index_dir=index, release_keep_same_ids=True)

    def check(out) -> None:
        assert_that(out[MAIN] | "M" >> beam.FlatMap(_ids),
                    equal_to([again["id"], *[_id(t) for t in UNRELATED]]), label="main")
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(_rejects),
                    equal_to([(again["id"], "exact_duplicate", again["id"]),
                              (_id(NEAR[0]), "near_duplicate", _id(BASE[2]))]), label="rej")

    _run(new, cfg, check=check)


def test_snapshot_release_keeps_a_released_row_that_moved(minhash_index: str) -> None:
    """Row ids hash the source position: a released row read again one line higher has a new
    id, and the snapshot still carries it (one copy per released row), not drops it as a
    duplicate of itself."""
    index = minhash_index
    moved = [dict(row(t), id=f"moved{i:02d}") for i, t in enumerate(BASE)]
    second = dict(moved[0], id="moved99")  # a second copy of a released row
    cfg = DedupConfig(enabled=True, release_index_dir=index, release_keep_same_ids=True)

    def check(out) -> None:
        assert_that(out[MAIN] | "M" >> beam.FlatMap(_ids),
                    equal_to([m["id"] for m in moved]), label="main")
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(_rejects),
                    equal_to([("moved99", "exact_duplicate", _id(BASE[0]))]), label="rej")

    _run([*moved, second], cfg, check=check)


def test_copies_with_the_same_id_keep_exactly_one() -> None:
    base = row(BASE[0])
    copies = [dict(base, source={"dataset": "t", "file": "f.jsonl", "row": k}) for k in range(3)]
    rows = [*copies, row(BASE[1])]

    def check(out) -> None:
        assert_that(out[MAIN] | "M" >> beam.FlatMap(_ids), equal_to([base["id"], _id(BASE[1])]),
                    label="main")
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(_rejects),
                    equal_to([(base["id"], "exact_duplicate", base["id"])] * 2), label="rej")

    _run(rows, DedupConfig(enabled=True), size=2, check=check)
