"""Counts and acceptance per category."""

from __future__ import annotations

import pytest

from transforms.compound import report
from transforms.compound.categories import CATEGORIES


def test_summary_counts_per_category() -> None:
    evs = [report.event("Factual-Statement", "accepted", n_sub=2),
           report.event("Factual-Statement", "accepted", n_sub=3),
           report.event("Factual-Statement", "rejected", "rule_sub_answer_off_topic", n_sub=3),
           report.event("Comparison-and-Selection", "rejected", "llm_check_not_covering",
                        partner="found"),
           report.event("Comparison-and-Selection", "deadletter", "backend_error",
                        partner="fallback")]
    r = report.summarize(evs)
    assert r["stage"] == "compound"
    assert (r["seeds"], r["accepted"], r["rejected"], r["deadletter"]) == (5, 2, 2, 1)
    assert r["acceptance"] == 0.4
    assert list(r["per_category"]) == list(CATEGORIES)
    fs = r["per_category"]["Factual-Statement"]
    assert (fs["seeds"], fs["accepted"], fs["acceptance"]) == (3, 2, 0.6667)
    assert fs["reasons"] == {"rule_sub_answer_off_topic": 1}
    assert fs["sub_questions_accepted"] == {"2": 1, "3": 1}
    assert fs["sub_questions_all"] == {"2": 1, "3": 2}
    assert r["per_category"]["Comparison-and-Selection"]["sub_questions_all"] == {}
    assert r["per_category"]["Cause-and-Effect"]["acceptance"] is None
    assert r["partners"] == {"fallback": 1, "found": 1}
    assert "total" in report.format_table(r) and "2:1 3:1" in report.format_table(r)


def test_merge_equals_one_pass() -> None:
    evs = [report.event(c, o, None if o == "accepted" else "x", n_sub=2 + i % 3)
           for i, c in enumerate(CATEGORIES) for o in report.OUTCOMES]
    a, b = report.empty(), report.empty()
    for i, ev in enumerate(evs):
        report.add(a if i % 2 else b, ev)
    assert report.finish(report.merge([a, b])) == report.summarize(evs)


def test_unknown_outcome_is_an_error() -> None:
    with pytest.raises(ValueError):
        report.event("Factual-Statement", "lost")
