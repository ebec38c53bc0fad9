"""Progress lines from workers: plain text, at most one per stage per interval, none when off."""

from __future__ import annotations

import pytest

from transforms import progress


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress, "_STAGES", {})
    return now


def test_one_plain_line_per_interval(clock, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REFINERY_PROGRESS_S", "10")
    progress.tick("quality", rate_of="in", **{"in": 2000, "out": 1900})
    clock[0] += 4
    progress.tick("quality", rate_of="in", **{"in": 2000, "out": 2000})
    assert capsys.readouterr().err == ""  # the first line waits one interval
    clock[0] += 6
    progress.tick("quality", rate_of="in", **{"in": 1000, "out": 900})
    err = capsys.readouterr().err
    assert err == "[refinery] quality: 5,000 in, 4,800 out (10.0 s, 500.0 in/s)\n"
    clock[0] += 1
    progress.tick("quality", **{"in": 1})
    assert capsys.readouterr().err == ""


def test_zero_interval_turns_lines_off(clock, monkeypatch, capsys) -> None:
    monkeypatch.setenv("REFINERY_PROGRESS_S", "0")
    for _ in range(3):
        clock[0] += 60
        progress.tick("dedup", **{"in": 10})
    assert capsys.readouterr().err == ""
