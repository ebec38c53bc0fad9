"""Near dedup that keeps distinct templated rows: template shingles left out (document
frequencies from a count-min sketch), last paragraphs compared, keepers verified directly
(no chains), the report guard; the keyed stage on both DirectRunner modes against the
single-process reference. Texts written for these tests."""

from __future__ import annotations

import sys

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.base import MAIN, REJECTED, REPORT, RunContext
from transforms.dedup import clusters
from transforms.dedup._steps import last_paragraphs
from transforms.dedup.config import DedupConfig
from transforms.dedup.guard import cluster_guard, manifest_warnings
from transforms.dedup.local import dedup_local
from transforms.dedup.minhash import MinHasher
from transforms.dedup.stage import DedupStage
from transforms.dedup.template import DfTable, drop_shingles, in_runs

from ._data import batches, row

cloudpickle.register_pickle_by_value(sys.modules[__name__])

TEMPLATE = ("You are a careful assistant. Read the request below and answer it clearly and "
            "politely, in plain words, without inventing any facts.\nRequest: {q}\nAnswer:")
SLOTS = ["Name two rivers in Spain.", "How tall is a giraffe?", "Why is the sky blue?",
         "Spell the word necessary.", "What is 12 times 7?", "Who painted the Mona Lisa?",
         "Suggest a name for a cat.", "Define the word frugal."]
CONTEXT = ("The lighthouse on the northern cape was built in 1852 from granite quarried on the "
           "island itself. Its lamp burned whale oil until 1890, then kerosene, and since 1934 "
           "an electric bulb that can be seen from twenty nautical miles away. Two keepers "
           "lived in the cottage beside the tower until the light was automated in 1971, after "
           "which the cottage became a small museum about the families who tended the lamp.")
QUESTIONS = ["When was the lamp switched to electricity, and how far can it be seen?",
             "What happened to the keepers' cottage once the light no longer needed them?"]

# the multi-process runner starts worker processes: slow (make test-fast leaves it out)
RUNNER_MODES = ["in_memory", pytest.param("multi_processing", marks=pytest.mark.slow)]


def templated_rows() -> tuple[list[dict], dict[str, str]]:
    """Distinct templated rows and context questions, plus copies: (rows, copy id → its
    original's id)."""
    texts = [TEMPLATE.format(q=s) for s in SLOTS] + [f"{CONTEXT}\n\n{q}" for q in QUESTIONS]
    rows = [row(t, float(i % 3)) for i, t in enumerate(texts)]
    copies = {texts[1].replace("giraffe", "girafe").upper(): texts[1],
              texts[-1].replace(",", "").replace("cottage", "cotage"): texts[-1]}
    extra = [row(t, -1.0) for t in copies]
    return rows + extra, {row(c)["id"]: row(o)["id"] for c, o in copies.items()}


CFG = DedupConfig(enabled=True, num_partitions=3, template_min_docs=3, template_min_run=4)


def test_templated_rows_kept_and_their_copies_dropped() -> None:
    rows, copies = templated_rows()
    res = dedup_local(batches(rows, 4), CFG)
    assert {i: v[0] for i, v in res.items()} == copies
    assert all(v[1] == "near_duplicate" and v[2]["jaccard"] >= CFG.threshold
               for v in res.values())
    # without the template filter the shared template merges the distinct requests
    off = dedup_local(batches(rows, 4), CFG.model_copy(update={"template_df": 0}))
    assert len(off) > len(copies)
    # without the last-paragraph check the two questions on one context merge
    ctx = {r["id"] for r in rows if r["messages"][0]["content"].startswith(CONTEXT[:40])}
    no_tail = dedup_local(batches(rows, 4), CFG.model_copy(update={"last_paragraph": 0}))
    assert len(ctx & set(no_tail)) == 2


@pytest.mark.parametrize("mode", RUNNER_MODES)
def test_runners_match_reference_on_templates(mode: str) -> None:
    rows, copies = templated_rows()
    cfg = CFG.model_copy(update={"warn_cluster_size": 1})
    res = dedup_local(batches(rows, 3), cfg)
    kept = sorted(r["id"] for r in rows if r["id"] not in res)
    rejected = sorted((i, v[1], v[0]) for i, v in res.items())
    assert len(rejected) == len(copies)

    def rejects(b) -> list[tuple]:
        return list(zip(b.column("id").to_pylist(), b.column("reject_reason").to_pylist(),
                        b.column("duplicate_of").to_pylist(), strict=True))

    def warned(report: dict) -> list[int]:
        return [len(report["guard"]["warnings"]), len(report["guard"]["largest"][0]["sample"])]

    opts = PipelineOptions(runner="DirectRunner", direct_running_mode=mode,
                           direct_num_workers=2 if mode == "multi_processing" else 1)
    with TestPipeline(options=opts) as p:
        out = p | beam.Create(batches(rows, 3)) | DedupStage(cfg, RunContext(seed=0))
        assert_that(out[MAIN] | "M" >> beam.FlatMap(lambda b: b.column("id").to_pylist()),
                    equal_to(kept), label="kept")
        assert_that(out[REJECTED] | "R" >> beam.FlatMap(rejects), equal_to(rejected),
                    label="rejected")
        assert_that(out[REPORT] | "W" >> beam.Map(warned), equal_to([[2, 2]]), label="guard")


def test_df_sketch_never_undercounts_and_merges() -> None:
    h = MinHasher(unit="char", char_ngram=5)
    texts = [TEMPLATE.format(q=s) for s in SLOTS]
    sh, off = h.shingle_hashes(texts)
    a = DfTable.of(sh[:off[4]], off[:5], 1024)
    b = DfTable.of(sh[off[4]:], off[4:] - off[4], 1024)
    t = a.merge(b)
    assert t.docs == 8
    true_df = {}
    for d in range(8):
        for x in set(sh[off[d]:off[d + 1]].tolist()):
            true_df[x] = true_df.get(x, 0) + 1
    keys = np.array(sorted(true_df), np.uint32)
    est = t.estimate(keys)
    assert (est >= np.array([true_df[k] for k in keys.tolist()])).all()
    common = t.common(sh, 0.5, 2)  # in more than 4 of the 8 texts: the template's shingles
    assert common[off[0]:off[1]].mean() > 0.6
    kept_h, kept_off = drop_shingles(sh, off, common)
    assert len(kept_off) == 9 and kept_off[-1] == len(kept_h) == int((~common).sum())


def test_in_runs_keeps_only_long_runs_inside_one_text() -> None:
    m = np.array([1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1], bool)
    off = np.array([0, 6, 12])
    assert in_runs(m, off, 3).astype(int).tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert in_runs(m, off, 1).tolist() == m.tolist()


def test_star_keepers_never_chain() -> None:
    base = np.arange(16, dtype=np.uint32)
    sigs = np.stack([base, base.copy(), base.copy()])
    sigs[1, :6] += 100  # row 1: 10/16 like row 0
    sigs[2, :6] += 100
    sigs[2, 6:12] += 200  # row 2: 10/16 like row 1, 4/16 like row 0
    keeper, sim = clusters.star_keepers(sigs, np.zeros(3, bool), 0.6)
    assert keeper.tolist() == [0, 0, 2] and sim[1] == pytest.approx(10 / 16)
    tails = np.full((3, 8), 0xFFFFFFFF, np.uint32)
    tails[0], tails[1] = np.arange(8), np.arange(8) + 50  # different last paragraphs
    keeper, _ = clusters.star_keepers(sigs, np.zeros(3, bool), 0.6, tails, 0.3)
    assert keeper.tolist() == [0, 1, 1]


def test_last_paragraphs_and_guard() -> None:
    assert last_paragraphs(["one", "a\n\nb", "a\n \n\nb\n\n", ""]) == ["", "b", "b", ""]
    cl = [{"keeper": "k", "size": 4, "reasons": {"near_duplicate": 3},
           "members": ["k", "a", "b", "c"]}, {"keeper": "j", "size": 2, "reasons": {},
                                              "members": ["j", "x"]}]
    g = cluster_guard(cl, 3)
    assert g["largest"][0]["sample"] == ["k", "a", "b"] and len(g["warnings"]) == 1
    assert "k" in g["warnings"][0] and cluster_guard(cl, 0)["warnings"] == []
    assert manifest_warnings({"reports": {"dedup": {"guard": g}}}) == g["warnings"]
