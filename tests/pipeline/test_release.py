"""Release checks, atomic publishing (with a copy killed halfway), versions, diffs, cards."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.outputs.publish import published_dir
from pipeline.release import check as release
from pipeline.release.check import ReleaseError, check_release, publish_release
from pipeline.release.diff import diff_releases

ROOT = Path(__file__).resolve().parents[2]
STAGES_OFF = [a for name in ("quality", "dedup", "decontam", "rise", "tag_instruct", "compound")
              for a in ("--set", f"stages.{name}.enabled=false")]


def _run(out: Path, *args: str, inputs: tuple[str, ...] = ("alpaca.jsonl",)) -> Path:
    flags = [a for i in inputs for a in ("--input", str(ROOT / "data" / i))]
    assert main(["run", str(ROOT / "configs/demo.yaml"), "--out", str(out), *flags,
                 "--set", "emit.jsonl=false", *STAGES_OFF, *args]) == 0
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _run(tmp_path_factory.mktemp("release") / "run")


def test_check_loads_every_dataset_including_empty_ones(built: Path) -> None:
    summary = check_release(str(built))
    manifest = json.loads((built / "manifest.json").read_text())
    assert summary["rows"]["sft"]["train"] == manifest["conservation"]["records_out"] > 0
    assert summary["rows"]["preference"] == {"train": 0}  # alpaca has no pairs: 0-row shard


def test_check_reads_the_split_the_run_wrote(tmp_path: Path) -> None:
    out = _run(tmp_path / "run", "--set", "emit.split=validation")
    assert set(check_release(str(out))["rows"]["sft"]) == {"validation"}


def test_broken_or_missing_shard_blocks_the_release(built: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(published_dir(built), broken)
    shard = next((broken / "sft").glob("*.parquet"))
    shard.write_bytes(b"not the shard")
    with pytest.raises(ReleaseError, match="sha256"):
        check_release(str(broken))
    shard.unlink()
    with pytest.raises(ReleaseError, match="missing"):
        check_release(str(broken))


def test_publish_killed_halfway_leaves_nothing_and_a_retry_succeeds(
        built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    releases = tmp_path / "releases"
    checked = check_release(str(built))
    real_copy = release._copy
    copied: list[str] = []

    def dying_copy(src: Path, dst: Path) -> None:  # the copy dies after two files
        def copy_file(a: str, b: str) -> None:
            if len(copied) == 2:
                raise OSError("disk full (injected)")
            copied.append(a)
            shutil.copy2(a, b)

        shutil.copytree(src, dst, copy_function=copy_file)

    monkeypatch.setattr(release, "_copy", dying_copy)
    with pytest.raises(shutil.Error, match="injected"):
        publish_release(str(built), str(releases), "v1", checked)
    assert len(copied) == 2 and not (releases / "v1").exists()
    assert not list(releases.glob(".tmp-*")) and not (releases / "LATEST").exists()
    monkeypatch.setattr(release, "_copy", real_copy)
    target = Path(publish_release(str(built), str(releases), "v1", checked))
    assert (target / "manifest.json").exists() and (releases / "LATEST").read_text() == "v1\n"
    index = (releases / "releases.json").read_text()
    # publishing the same run again is a no-op (a retry after a crash resumes); another run
    # under v1 is refused (tests/reliability/test_release_recovery.py)
    assert publish_release(str(built), str(releases), "v1", checked) == str(target)
    assert (releases / "releases.json").read_text() == index


@pytest.mark.parametrize("version", ["../x", "/tmp/x", "v1/../../x", "1.0.", "v1;rm", "latest"])
def test_versions_cannot_escape_or_be_odd(built: Path, tmp_path: Path, version: str) -> None:
    with pytest.raises(ReleaseError, match="must look like"):
        publish_release(str(built), str(tmp_path / "releases"), version, {"rows": {}})
    assert not (tmp_path / "x").exists()


def test_versions_order_and_auto(tmp_path: Path) -> None:
    (tmp_path / "releases.json").write_text(json.dumps(
        [{"version": v} for v in ("v1", "v2", "v10", "v2.1")]))
    assert release.next_version(tmp_path) == "v11"
    assert release.next_version(tmp_path / "none") == "v1"


def test_diff_counts_added_removed_kept_by_source(tmp_path: Path) -> None:
    old = _run(tmp_path / "old", inputs=("alpaca.jsonl", "dolly.jsonl"))
    new = _run(tmp_path / "new", inputs=("alpaca.jsonl", "openai_messages.jsonl"))
    d = diff_releases(str(old), str(new))["datasets"]["sft"]
    old_rows = pq.read_table(old / "sft", columns=["id", "source"]).to_pylist()
    dolly = {r["id"] for r in old_rows if r["source"]["dataset"] == "dolly"}
    assert d["removed"] == len(dolly) == d["by_source"]["dolly"]["removed"] > 0
    assert d["added"] == d["by_source"]["openai_messages"]["added"] > 0
    assert d["by_source"]["alpaca"] == {"added": 0, "removed": 0, "kept": d["kept"]}


def _lines(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_diff_counts_a_row_moved_by_an_insert_as_kept(tmp_path: Path) -> None:
    """A row inserted at the top of a source file moves every later row (new positions, new
    ids, one content hash each): the diff keeps them as moved, adds the inserted row as a new
    source row and a copy of an existing row as a duplicate, and removes nothing."""
    rows = [{"instruction": f"Explain step {i} of brewing tea in two sentences.",
             "output": f"Step {i}: warm the pot, then steep the leaves for {i + 2} minutes."}
            for i in range(5)]
    top = {"instruction": "Name the tea that is rolled into small pellets.",
           "output": "Gunpowder tea is rolled into small pellets."}
    old, new = tmp_path / "old", tmp_path / "new"
    for out, content in ((old, rows), (new, [top, *rows, rows[1]])):  # one file, edited
        path = _lines(tmp_path / "tea.jsonl", content)
        assert main(["run", str(ROOT / "configs/demo.yaml"), "--out", str(out), "--input", path,
                     "--set", "emit.jsonl=false", *STAGES_OFF]) == 0
    d = diff_releases(str(old), str(new))["datasets"]["sft"]
    assert (d["added"], d["removed"], d["kept"], d["moved"]) == (2, 0, 5, 5)
    assert d["reasons"] == {"removed": {}, "added": {
        "new source row": 1, "duplicate (same content kept under another id)": 1},
        "kept": {"moved (same content, another source position)": 5}}
    new_rows = {(r["source"]["row"]): r for r in pq.read_table(
        new / "sft", columns=["id", "content_hash", "source"]).to_pylist()}
    old_rows = {(r["source"]["row"]): r for r in pq.read_table(
        old / "sft", columns=["id", "content_hash", "source"]).to_pylist()}
    added = {e["row"]: why for why, es in d["examples"]["added"].items() for e in es}
    assert added == {0: "new source row", 6: "duplicate (same content kept under another id)"}
    moved = {(e["old_row"], e["row"]): (e["old_id"], e["id"])
             for es in d["examples"]["kept"].values() for e in es}
    assert moved == {(i, i + 1): (old_rows[i]["id"], new_rows[i + 1]["id"]) for i in range(5)}
    assert all(old_rows[i]["content_hash"] == new_rows[i + 1]["content_hash"] != old_rows[i]["id"]
               for i in range(5))
    # the other way round: the top row deleted, the rows below moved up, the copy gone
    back = diff_releases(str(new), str(old))["datasets"]["sft"]
    assert (back["added"], back["removed"], back["kept"], back["moved"]) == (0, 2, 5, 5)
    assert back["reasons"]["removed"] == {
        "source row removed": 1, "duplicate (same content kept under another id)": 1}


def test_schema_change_needs_a_declaration(built: Path, tmp_path: Path) -> None:
    other = _run(tmp_path / "quality", "--set", "stages.quality.enabled=true")
    with pytest.raises(ReleaseError, match="schema"):
        check_release(str(other), previous_dir=str(built))
    assert check_release(str(other), previous_dir=str(built), allow_schema_change=True)[
        "schema_changes"] == ["sft"]


def test_cli_prints_for_people_json_behind_a_flag_and_refuses_an_unchanged_publish(
        built: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    releases = str(tmp_path / "releases")
    assert main(["release", "check", str(built), "--releases", releases]) == 0
    assert capsys.readouterr().out.startswith(f"PASS release check of {built}: ")
    assert main(["release", "check", str(built), "--releases", releases, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["sft"]["train"] > 0
    assert main(["release", "diff", str(built), "--releases", releases]) == 0
    summary = capsys.readouterr().out
    assert "sft: +" in summary and "new source file" in summary
    assert main(["release", "publish", str(built), "--releases", releases,
                 "--version", "auto"]) == 0
    assert capsys.readouterr().out.strip() == f"published {releases}/v1"
    # the same build again: nothing changed, refused (exit 3) unless forced
    assert main(["release", "publish", str(built), "--releases", releases,
                 "--version", "auto"]) == 3
    assert "nothing changed since v1" in capsys.readouterr().err
    assert not (tmp_path / "releases" / "v2").exists()
    assert main(["release", "publish", str(built), "--releases", releases, "--version", "auto",
                 "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["published"] == f"{releases}/v2"
    assert main(["release", "list", "--releases", releases]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == ["v1", "v2"] and "(latest)" in listing[1]
    # a broken build fails the check with a FAIL line
    broken = tmp_path / "broken"
    shutil.copytree(published_dir(str(built)), broken)
    next((broken / "sft").glob("*.parquet")).write_bytes(b"not parquet")
    assert main(["release", "check", str(broken), "--releases", releases]) == 3
    assert capsys.readouterr().out.startswith(f"FAIL release check of {broken}: ")
