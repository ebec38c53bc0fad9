"""The explained release diff: two releases of a small curation config (no model stages) where
the second adds a decontamination benchmark, raises a quality threshold, edits two source rows
and drops one source file. Every removed and added row must get the reason the test's own
change implies, in the terminal summary, CHANGELOG.md and the HTML page (in Chromium)."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from tests.pipeline.test_report import _browse

ROOT = Path(__file__).resolve().parents[2]
EDITS = {4: ("Describe how a lighthouse lens focuses light for passing ships.",
             "A Fresnel lens stacks rings of prisms around a central bulb. Each ring bends the "
             "light into one horizontal beam, so the lamp is seen many kilometres out at sea."),
         5: ("Summarize why tides rise and fall twice a day.",
             "The Moon's gravity pulls the ocean into a bulge on the near side, and inertia "
             "leaves a second bulge on the far side; Earth turns under both bulges each day.")}
FILE_GONE = "source file removed"
CHANGED = "content changed (new id)"
QUALITY = "now rejected by quality: low_quality_score"


def _config(repo: Path, threshold: float, benchmarks: list[str], sources: list[str]) -> Path:
    bench = {"mini_humaneval": "humaneval", "mini_gsm8k": "gsm8k"}
    lines = [
        "run: {name: diff-test, seed: 7}",
        "sources:", *[f"  - {{path: {repo / s}, name: {s.split('.')[0]}}}" for s in sources],
        "ingest: {max_error_rate: 0.25, max_record_bytes: 65536}",
        "stages:",
        "  quality:",
        "    enabled: true",
        "    filters:",
        f"      - {{signal: quality_score, op: '<', value: {threshold}, reason: low_quality_score}}",
        "      - {signal: q_refusal, op: '>', value: 0, reason: refusal}",
        "  dedup: {enabled: true, key: prompt, exact: true, near: true, threshold: 0.7, "
        "semantic: false}",
        "  decontam:",
        "    enabled: true",
        "    rules: [tulu3, gpt3]",
        "    benchmarks:",
        *[f"      - {{name: {b}, path: {ROOT / 'data/benchmarks' / (b + '.jsonl')}, "
          f"preset: {bench[b]}}}" for b in benchmarks],
        "  rise: {enabled: false}",
        "  tag_instruct: {enabled: false}",
        "  compound: {enabled: false}",
        "emit: {num_shards: 1, jsonl: false}",
    ]
    path = repo / f"release-{len(benchmarks)}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _release(config: Path, out: Path, releases: Path, capsys) -> str:
    assert main(["release", "build", str(config), "--out", str(out), "--releases",
                 str(releases)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["release", "diff", str(out), "--releases", str(releases)]) == 0
    summary = capsys.readouterr().out
    assert main(["release", "publish", str(out), "--releases", str(releases),
                 "--version", "auto"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return summary


def _rows(folder: Path) -> list[dict]:
    return [r for f in sorted(folder.glob("*.parquet"))
            for r in pq.read_table(f, columns=["id", "source", "meta"]).to_pylist()]


@pytest.mark.slow
def test_explained_diff_gives_every_row_its_true_reason(tmp_path: Path, capsys) -> None:
    repo, rel = tmp_path / "repo", tmp_path / "releases"
    repo.mkdir()
    for name in ("alpaca.jsonl", "dolly.jsonl", "gsm8k_style.parquet"):
        shutil.copy(ROOT / "data" / name, repo / name)
    sources = ["alpaca.jsonl", "dolly.jsonl", "gsm8k_style.parquet"]
    _release(_config(repo, 0.2, ["mini_humaneval"], sources), tmp_path / "b1", rel, capsys)
    v1 = _rows(rel / "v1" / "sft")
    v1_rejected = {r["id"] for f in (rel / "v1" / "rejected").glob("*.parquet")
                   for r in pq.read_table(f, columns=["id"]).to_pylist()}
    scores = sorted(r["meta"]["quality_score"] for r in v1)
    k = next(k for k in range(3, len(scores) - 1) if scores[k] < scores[k + 1])
    threshold = (scores[k] + scores[k + 1]) / 2  # the k+1 lowest-scoring rows fall below it

    # the changes: edit two alpaca rows, drop dolly, raise the threshold, add mini_gsm8k
    lines = (repo / "alpaca.jsonl").read_bytes().split(b"\n")  # holds invalid UTF-8 rows
    for row, (q, a) in EDITS.items():
        lines[row] = json.dumps({"instruction": q, "input": "", "output": a}).encode()
    (repo / "alpaca.jsonl").write_bytes(b"\n".join(lines))
    (repo / "dolly.jsonl").unlink()
    config = _config(repo, threshold, ["mini_humaneval", "mini_gsm8k"],
                     ["alpaca.jsonl", "gsm8k_style.parquet"])
    terminal = _release(config, tmp_path / "b2", rel, capsys)
    v2 = _rows(rel / "v2" / "sft")
    decontam = {r["id"]: json.loads(r["reject_detail"]) for r in pq.read_table(
        rel / "v2" / "rejected" / "decontam.parquet").to_pylist()}

    # what the test's changes imply, row by row (pipeline order: quality before decontam)
    new_ids = {r["id"] for r in v2}
    truth_removed: dict[str, str] = {}
    for r in v1:
        if r["id"] in new_ids:
            continue
        file, row = r["source"]["file"], r["source"]["row"]
        if file.endswith("dolly.jsonl"):
            truth_removed[r["id"]] = FILE_GONE
        elif file.endswith("alpaca.jsonl") and row in EDITS:
            truth_removed[r["id"]] = CHANGED
        elif r["meta"]["quality_score"] < threshold:
            truth_removed[r["id"]] = QUALITY
        else:
            assert decontam[r["id"]]["benchmark"] == "mini_gsm8k", r
            truth_removed[r["id"]] = (f"now rejected by decontam: contaminated_"
                                      f"{decontam[r['id']]['rule']} (benchmark mini_gsm8k)")
    old_ids = {r["id"] for r in v1}
    truth_added = {}
    for r in v2:
        if r["id"] in old_ids:
            continue
        edited = r["source"]["file"].endswith("alpaca.jsonl") and r["source"]["row"] in EDITS
        assert edited or r["id"] in v1_rejected, r  # nothing else may appear
        if edited:
            truth_added[r["id"]] = CHANGED
    assert Counter(truth_removed.values())[FILE_GONE] >= 5
    assert Counter(truth_removed.values())[CHANGED] == 2
    assert Counter(truth_removed.values())[QUALITY] >= 1
    assert any(w.startswith("now rejected by decontam") for w in truth_removed.values())
    assert Counter(truth_added.values())[CHANGED] == 2

    # the JSON: every row's reason
    diff = json.loads((rel / "v2" / "release_diff.json").read_text())["datasets"]["sft"]
    got_removed = {e["id"]: why for why, rows in diff["examples"]["removed"].items()
                   for e in rows}
    got_added = {e["id"]: why for why, rows in diff["examples"]["added"].items() for e in rows}
    assert got_removed == truth_removed
    for i, why in truth_added.items():
        assert got_added[i] == why
    assert all(w.startswith("newly passing ") for i, w in got_added.items()
               if i not in truth_added)
    expected = {"removed": dict(Counter(truth_removed.values())),
                "added": dict(Counter(got_added.values()))}
    assert {k: dict(v) for k, v in diff["reasons"].items()} == expected
    changes = diff["config_change"]
    assert "+ decontam.benchmarks[mini_gsm8k]" in changes[
        next(w for w in truth_removed.values() if "decontam" in w)]
    assert any("quality.filters[0].value" in c and str(threshold) in c for c in changes[QUALITY])

    # the terminal summary: counts per reason, config change named
    counted = {(m.group(1), m.group(3).strip()): int(m.group(2)) for m in re.finditer(
        r"^  ([+−])(\d+)\s+(.+?)(?:  e\.g\. .*)?$", terminal, re.M)}
    for kind, sign in (("removed", "−"), ("added", "+")):
        for why, n in expected[kind].items():
            assert counted[(sign, why)] == n, (why, terminal)
    assert "config change: + decontam.benchmarks[mini_gsm8k]" in terminal

    # CHANGELOG.md: the same counts per reason
    changelog = (rel / "v2" / "CHANGELOG.md").read_text()
    for kind in ("removed", "added"):
        for why, n in expected[kind].items():
            assert f"| {kind} | {why} | {n} |" in changelog

    # the HTML page, rendered by Chromium: each row under its reason, edits side by side
    page = rel / "v2" / "release_diff.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    dom = _browse(page, tmp_path, "--dump-dom").stdout
    sections = re.split(r"<h3 ", dom)[1:]
    seen: dict[str, str] = {}
    for sec in sections:
        kind = re.search(r'data-kind="(\w+)"', sec).group(1)
        why = re.search(r'data-reason="([^"]+)"', sec).group(1).replace("&amp;", "&")
        for i in re.findall(r'<tr data-id="([0-9a-f]+)"', sec):
            seen[f"{kind}:{i}"] = why
    for i, why in truth_removed.items():
        assert seen[f"removed:{i}"] == why
    for i, why in truth_added.items():
        assert seen[f"added:{i}"] == why
    changed = sections[[i for i, s in enumerate(sections)
                        if f'data-reason="{CHANGED}"' in s and 'data-kind="removed"' in s][0]]
    assert "<del>" in changed and "<ins>" in changed and "lighthouse" in changed
