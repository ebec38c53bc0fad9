"""The summary table after `refinery run`: its columns add up to its total lines; RISE's pairs
count once per kind (full pairs in preference, step pairs in preference_steps) and pairs
written again in a second layout (tag_policy_sharegpt) are not counted twice."""

from __future__ import annotations

import re

from pipeline.report.console import summary_table

MANIFEST = {
    "counts": {
        "outputs": {"sft": {"ingest": 240, "respond": 15},
                    "preference": {"ingest": 5, "rise": 200},
                    "preference_steps": {"rise": 289},
                    "tag_policy": {"tag_instruct": 2},
                    "tag_policy_sharegpt": {"tag_instruct": 2}},
        "rejected": {"quality": {"too_short": 3, "refusal": 1}, "dedup": {"exact_duplicate": 1},
                     "respond": {"response_truncated": 5},
                     "compound": {"judge_rejected": 4}, "tag_instruct": {"unverified": 3}},
        "deadletter": {"ingest": 2, "ingest.file": 1, "rise": 1},
    },
    "conservation": {"records_in": 252, "records_out": 245, "rejected": 5, "deadletter": 2,
                     "holds": True},
    "timings": {"total_s": 12.5, "stages": {"quality": 1.5, "dedup": 0.7, "rise": 3.0}},
}


def _table(text: str) -> dict[str, list[int]]:
    rows = {}
    for line in text.splitlines():
        m = re.match(r"^(\w[\w ]*?)\s{2,}([\d,]*)\s+([\d,]+)\s+([\d,]+)(\s+[\d.]+)?$", line)
        if m:
            rows[m.group(1)] = [int(x.replace(",", "") or 0) for x in m.group(2, 3, 4)]
    return rows


def test_columns_add_up_to_the_totals_and_the_conservation_line() -> None:
    text = summary_table(MANIFEST, "out/x")
    rows = _table(text)
    curation = ["ingest", "quality", "dedup"]
    synthesis = ["respond", "tag_instruct", "compound", "rise"]
    assert set(rows) == {*curation, *synthesis, "input total", "synthesis total"}, text
    for block, total in ((curation, "input total"), (synthesis, "synthesis total")):
        assert [sum(rows[s][i] for s in block) for i in range(3)] == rows[total]
    c = MANIFEST["conservation"]
    assert rows["input total"] == [c["records_out"], c["rejected"], c["deadletter"]]
    assert f"records in 252 = out {rows['input total'][0]} + rejected {rows['input total'][1]} " \
        f"+ dead letter {rows['input total'][2]}: holds" in text
    assert rows["rise"] == [489, 0, 1]  # 200 full + 289 step pairs, each in its dataset
    assert rows["tag_instruct"] == [2, 3, 0]  # the 2 policy pairs once, not once per layout
    assert "unreadable files: 1" in text
    assert text.splitlines()[0].split() == ["stage", "produced", "rejected", "dead", "letter",
                                            "seconds"]


def test_a_synthesis_stage_that_made_nothing_says_why_in_one_line() -> None:
    from pipeline.report.console import synthesis_notes

    manifest = {**MANIFEST, "config": {"llm": {"backend": "local"}},
                "synthesis": {"compound": {"rejected": 4, "deadletter": 0, "out_sft": 0,
                                           "out_preference": 0},
                              "rise": {"rejected": 0, "deadletter": 1, "out_sft": 0,
                                       "out_preference": 489}}}
    notes = synthesis_notes(manifest)
    assert list(notes) == ["compound"]  # rise made pairs: nothing to explain
    line = notes["compound"]
    assert "\n" not in line
    assert "4 candidates tried" in line and "judge_rejected 4" in line
    assert "--set llm.backend=openai" in line and "stages.compound.roles.{" in line
    assert "writer" in line


def test_validate_checks_that_inputs_exist(tmp_path, capsys) -> None:
    from pipeline.cli import main

    missing, glob = tmp_path / "nope.jsonl", tmp_path / "none-*.jsonl"
    assert main(["validate", "configs/dedup.yaml", "--input", str(missing), "--input",
                 str(glob)]) == 2
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert f"sources.0.path: file not found: {missing}" in err
    assert f"sources.1.path: no file matches {str(glob)!r}" in err
    assert main(["validate", "configs/dedup.yaml"]) == 0
