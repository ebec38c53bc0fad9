"""The rise report's pure empty/add/merge/finish, driven without Beam: any split of the events
merges to the same report, and the counts add up (in = paired + rejected + dead letter)."""

from __future__ import annotations

import random

from transforms.rise import report

EVENTS = [
    {"problems_in": 4},
    {"samples": {"total": 5, "correct": 3, "incorrect": 2, "truncated": 0},
     "problems_with_correct": 1, "problems_with_incorrect": 1},
    report.summarize_pairs([{"meta": {"pair_kind": "full", "method": "sampled"}},
                            {"meta": {"pair_kind": "step", "method": "self_edit",
                                      "error_type": "change_value", "edit_distance": 2,
                                      "result_changed": True}}]),
    {"problems_paired": 1},
    {"problems_paired": 1},
    report.summarize_rejected(["no_correct_sample"]),
    {"deadletter": 1},
    {"edit_rejected": {"self_edit:admits_error": 1}},
    {"edit_rejected": {"self_edit:edit_unparseable": 1}},
    {"edits_survived": 1},
    {"edit_deadletter": 1},
]


def _fold(events: list[dict]) -> dict:
    acc = report.empty()
    for e in events:
        acc = report.add(acc, e)
    return acc


def test_any_split_merges_to_the_same_report() -> None:
    whole = report.finish(_fold(EVENTS))
    for seed in range(5):
        shuffled = random.Random(seed).sample(EVENTS, len(EVENTS))
        cut = seed + 2
        parts = [_fold(shuffled[:cut]), _fold(shuffled[cut:]), report.empty()]
        assert report.finish(report.merge(parts)) == whole


def test_counts_add_up() -> None:
    rep = report.finish(_fold(EVENTS))
    assert rep["stage"] == "rise" and rep["conservation_holds"]
    assert (rep["problems_in"], rep["problems_paired"], rep["problems_rejected"],
            rep["problems_deadletter"]) == (4, 2, 1, 1)
    assert rep["pairs_by_kind"] == {"full": 1, "step": 1}
    assert rep["mean_edit_distance"] == 2 and rep["step_pairs_result_changed_share"] == 1.0
    # an unreadable edit was checked and dropped, like a filter's rejection
    assert rep["self_edit_filter"] == {"checked": 3, "passed": 1}
    assert rep["edit_deadletter"] == 1


def test_an_empty_report_holds() -> None:
    rep = report.finish(report.merge([]))
    assert rep["problems_in"] == 0 and rep["conservation_holds"] and rep["pairs"] == 0
