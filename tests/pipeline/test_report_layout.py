"""The report in Chromium: small at any row count, nothing overlapping, every chart under its
own stage; the demo run's console: progress lines, no dependency warnings, a note per
synthesis stage that produced nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.report.charts import bin_counts, histogram
from tests.pipeline import report_browser as rb

MAX_BYTES = 1_000_000


def _layout(report: Path, work: Path) -> list[str]:
    rb.require_chromium()
    work.mkdir(parents=True, exist_ok=True)
    return rb.problems_of(rb.measure(report, work))


def test_histograms_carry_bins_not_values() -> None:
    values = [float(i % 7919) for i in range(200_000)]
    rows, whole = bin_counts({"kept": values, "rejected": values[:5000]})
    assert whole and len(rows) <= 2 * 41
    assert sum(r["count"] for r in rows) == 205_000
    assert len(json.dumps(histogram({"kept": values}, "t", "x"))) < 30_000


def test_fractional_and_constant_values_get_round_bins() -> None:
    rows, whole = bin_counts({"a": [0.0] * 50})
    assert not whole and rows == [{"group": "a", "start": 0.0, "end": 0.1, "count": 50}]
    rows, whole = bin_counts({"a": [0, 1, 1, 2]})
    assert whole and [(r["start"], r["end"], r["count"]) for r in rows] == [
        (-0.5, 0.5, 1), (0.5, 1.5, 2), (1.5, 2.5, 1)]


@pytest.mark.slow
def test_report_of_a_100k_row_run_is_small_and_lays_out(tmp_path: Path) -> None:
    from bench.ingest_emit import make_records
    from pipeline.config import load_config
    from pipeline.run import run_config

    (tmp_path / "in").mkdir()
    paths = make_records(tmp_path / "in", 100_000)
    cfg = load_config(None, ["stages.quality.enabled=true", "ingest.max_record_bytes=1048576"],
                      inputs=[str(p) for p in paths], out=str(tmp_path / "out"))
    result = run_config(cfg)
    assert result.manifest["conservation"]["records_in"] == 100_000
    report = tmp_path / "out" / "report.html"
    print(f"report of a 100k-row run: {report.stat().st_size:,} bytes")
    assert report.stat().st_size < MAX_BYTES
    assert _layout(report.resolve(), tmp_path / "browser") == []


@pytest.mark.slow
def test_demo_report_lays_out_with_each_chart_under_its_stage(demo_run, tmp_path: Path) -> None:
    report = (demo_run.out / "report.html").resolve()
    assert report.stat().st_size < MAX_BYTES
    rb.require_chromium()
    charts = rb.measure(report, tmp_path)
    assert rb.problems_of(charts) == []
    staged = {c["stage"] for c in charts if c["stage"]}
    assert {"rise", "quality"} <= staged  # RISE's charts sit in RISE's block
    assert all(c["title"].startswith(f"{c['stage']}:") for c in charts if c["stage"])


@pytest.mark.slow
def test_demo_console_shows_progress_and_no_dependency_warnings(demo_run) -> None:
    err = demo_run.stderr
    assert "[refinery] " in err  # progress lines, though the output is a pipe
    for noise in ("TracerWarning", "UserWarning", "DeprecationWarning", "FutureWarning",
                  "is deprecated", "reads meta.quality_score"):
        assert noise not in err, noise
    manifest = json.loads((demo_run.out / "manifest.json").read_text())
    from pipeline.report.console import synthesis_notes

    for line in synthesis_notes(manifest).values():
        assert f"refinery: {line}" in err
        assert line.split(":")[0] in (demo_run.out / "report.html").read_text()


@pytest.mark.slow
def test_review_of_the_demo_has_something_to_show(demo_run, tmp_path: Path, capsys) -> None:
    from pipeline.cli import main

    review = tmp_path / "review.jsonl"
    assert main(["review", str(demo_run.out), "--stage", "compound", "--export",
                 str(review)]) == 0
    items = [json.loads(line) for line in review.read_text().splitlines()]
    assert items  # kept items, or (a small model) the candidates the pipeline rejected
    rejected = [i for i in items if i.get("pipeline_rejected")]
    assert all(i["user_turn"] and i["reject_detail"] for i in rejected)
    for item in rejected:  # a decision on a rejected candidate is ignored, not an error
        item["decision"] = "accept"
    review.write_text("".join(json.dumps(i) + "\n" for i in items))
    assert main(["review", str(demo_run.out), "--stage", "compound", "--apply", str(review),
                 "--to", str(tmp_path / "reviewed")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["accepted"] == 0 and summary["items"] == len(items) - len(rejected)


def test_answer_words_match_python_split() -> None:
    import random

    import pyarrow as pa

    from pipeline.report.data import answer_word_counts, response_text

    rng = random.Random(3)
    alphabet = ["a", "é", "字", " ", "\t", "\n", "\xa0", "\u2003", "\u3000", "\x1f", "\x85", ".",
                "\r", "\x0b"]
    rows = []
    plain = [c for c in alphabet if c.isascii() and c != "\x1f"]
    for i in range(900):  # ASCII spaces only (Arrow's split): ASCII texts and non-ASCII ones;
        # and texts with other spaces (the regex)
        letters = [plain, [*plain, "é", "字"], alphabet][i % 3]
        turns = [{"role": rng.choice(["user", "assistant", "system"]),
                  "content": "".join(rng.choice(letters) for _ in range(rng.randint(0, 12)))}
                 for _ in range(rng.randint(0, 4))]
        rows.append(turns)
    messages = pa.array(rows, pa.list_(pa.struct([("role", pa.string()),
                                                  ("content", pa.string())])))
    assert answer_word_counts(messages).tolist() == [len(response_text(r).split()) for r in rows]


def test_other_spaces_are_every_non_ascii_space_python_splits_on() -> None:
    from pipeline.report.data import OTHER_SPACES

    ascii_spaces = " \t\n\r\x0b\x0c"
    python_splits_on = "".join(chr(c) for c in range(0x110000)
                               if chr(c).isspace() and chr(c) not in ascii_spaces)
    assert python_splits_on == OTHER_SPACES


@pytest.mark.parametrize("batch_rows", [4, 8192])
def test_answer_words_take_the_first_rows_asked_for_across_batches_and_files(
        tmp_path: Path, monkeypatch, batch_rows: int) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.report.data import Shards, answer_word_counts
    from schemas.ids import content_id
    from schemas.records import example_row, examples_to_batch

    for part, first in enumerate((0, 23)):  # two files of 23 rows, row groups of 5
        rows = [example_row(content_id("t", i), [
            {"role": "user", "content": f"q {i}"},
            {"role": "assistant", "content": " ".join(["w"] * (i + 1))}],
            {"dataset": "odd" if i % 3 else "even", "file": "f.jsonl", "row": i})
            for i in range(first, first + 23)]
        pq.write_table(pa.Table.from_batches([examples_to_batch(rows)]),
                       tmp_path / f"train-{part}.parquet", row_group_size=5)
    shards = Shards(str(tmp_path))
    monkeypatch.setattr(Shards, "BATCH_ROWS", batch_rows)

    def odd(light: pa.Table) -> pa.Array:
        return pc.equal(pc.struct_field(light.column("source").combine_chunks(), "dataset"),
                        "odd")

    every = [answer_word_counts(pq.read_table(f, columns=["messages"]).column("messages")
                                .combine_chunks()).tolist() for f in shards.files]
    kept = [n for f, light, words in zip(shards.files, shards.light, every, strict=True)
            for n, k in zip(words, odd(light).to_pylist(), strict=True) if k]
    assert kept == [i + 1 for i in range(46) if i % 3]  # the reference: every row read
    for limit in (0, 1, 4, 5, 14, 15, 16, 30, 100):
        assert shards.answer_words(odd, limit) == kept[:limit], limit
