"""Counts and acceptance per category."""

from __future__ import annotations

import pytest

from transforms.compound import report
from transforms.compound.categories import CATEGORIES


def test_summary_counts_per_category() -> None:
    evs = [report.event("Factual-Statement", "accepted"),
           report.event("Factual-Statement", "rejected", "rule_sub_answer_off_topic"),
           report.event("Comparison-and-Selection", "rejected", "llm_check_not_covering",
                        partner="found"),
           report.event("Comparison-and-Selection", "deadletter", "backend_error",
                        partner="fallback")]
    r = report.summarize(evs)
    assert r["stage"] == "compound"
    assert (r["seeds"], r["accepted"], r["rejected"], r["deadletter"]) == (4, 1, 2, 1)
    assert r["acceptance"] == 0.25
    assert list(r["per_category"]) == list(CATEGORIES)
    fs = r["per_category"]["Factual-Statement"]
    assert (fs["seeds"], fs["accepted"], fs["acceptance"]) == (2, 1, 0.5)
    assert fs["reasons"] == {"rule_sub_answer_off_topic": 1}
    assert r["per_category"]["Cause-and-Effect"]["acceptance"] is None
    assert r["partners"] == {"fallback": 1, "found": 1}
    assert "total" in report.format_table(r)


def test_merge_equals_one_pass() -> None:
    evs = [report.event(c, o, None if o == "accepted" else "x")
           for c in CATEGORIES for o in report.OUTCOMES]
    a, b = report.empty(), report.empty()
    for i, ev in enumerate(evs):
        report.add(a if i % 2 else b, ev)
    assert report.finish(report.merge([a, b])) == report.summarize(evs)


def test_unknown_outcome_is_an_error() -> None:
    with pytest.raises(ValueError):
        report.event("Factual-Statement", "lost")
