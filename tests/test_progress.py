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


def test_long_work_prints_a_line_every_interval_with_time_left(clock, monkeypatch,
                                                               capsys) -> None:
    monkeypatch.setenv("REFINERY_PROGRESS_S", "10")
    monkeypatch.setattr(progress, "_start_beat", lambda: None)  # the test drives the beat
    with progress.working("llm compound", "a batch of 8 requests"):
        clock[0] += 30
    progress.tick("llm compound", rate_of="requests", requests=8)
    assert capsys.readouterr().err == "[refinery] llm compound: 8 requests (30.0 s, 0.3 " \
        "requests/s)\n"
    with progress.working("llm compound", "a batch of 8 requests"):
        clock[0] += 5
        assert progress.beat_lines() == []  # the tick above printed 5 s ago
        clock[0] += 6
        assert progress.beat_lines() == [
            "[refinery] llm compound: 8 requests (41.0 s, 0.2 requests/s); working on a batch "
            "of 8 requests for 11 s, ~19 s left"]
        clock[0] += 9
        assert progress.beat_lines() == []
        clock[0] += 25
        assert progress.beat_lines() == [
            "[refinery] llm compound: 8 requests (75.0 s, 0.1 requests/s); working on a batch "
            "of 8 requests for 45 s, taking longer than earlier ones"]
    clock[0] += 1
    progress.tick("llm compound", rate_of="requests", requests=8)  # says how the batch ended
    assert capsys.readouterr().err == "[refinery] llm compound: 16 requests (76.0 s, 0.2 " \
        "requests/s)\n"
    clock[0] += 60
    assert progress.beat_lines() == []  # nothing runs: no line


def test_beat_thread_prints_while_a_block_runs(monkeypatch, capsys) -> None:
    monkeypatch.setenv("REFINERY_PROGRESS_S", "0.2")
    monkeypatch.setattr(progress, "_STAGES", {})
    with progress.working("embed", "1,000 texts", eta=False):
        import time

        time.sleep(1.5)
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("[refinery] embed: started (") for line in err)
    assert "working on 1,000 texts for" in err[-1]


def test_a_running_pipeline_fills_silent_intervals(clock, monkeypatch) -> None:
    monkeypatch.setenv("REFINERY_PROGRESS_S", "10")
    monkeypatch.setattr(progress, "_start_beat", lambda: None)
    monkeypatch.setattr(progress, "_LAST", [0.0])
    with progress.running():
        clock[0] += 9
        assert progress.beat_lines() == []
        clock[0] += 1
        assert progress.beat_lines() == ["[refinery] run: pipeline running for 10 s"]
        progress.tick("quality", rate_of="in", **{"in": 66, "out": 65})
        clock[0] += 10
        assert progress.beat_lines() == [
            "[refinery] run: pipeline running for 20 s; so far quality 66 in, 65 out"]
        with progress.working("dedup", "a batch of 65 rows"):
            clock[0] += 10  # the stage's own line, not the run's
            assert progress.beat_lines()[0].startswith("[refinery] dedup: started")
    clock[0] += 30
    assert progress.beat_lines() == []  # the pipeline ended: quiet
