"""Issue #13 items 3, 4 and 6: outputs never escape the output directory and inputs may not
overlap it; a typo'd flag is an error, not a Beam option; Beam's own flags still pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.cli import main as cli_main
from pipeline.release.check import ReleaseError, publish_release
from tests.reliability._helpers import OFF, manifest_of, run_cli, write_jsonl


def test_an_output_dir_inside_the_input_dir_is_refused(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "in.jsonl", 100)
    for out in (data / "out", data):
        code, err = run_cli(capsys, [data], out)
        assert code == 2 and "overlaps run.output_dir" in err
    assert sorted(p.name for p in data.iterdir()) == ["in.jsonl"]  # nothing written
    code, err = run_cli(capsys, [data / "*.jsonl"], data / "out")  # cannot reach out/: fine
    assert code == 0, err
    assert manifest_of(data / "out")["conservation"]["records_in"] == 100


def test_split_names_cannot_escape_the_output_dir(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 5)
    code, err = run_cli(capsys, [src], tmp_path / "deep" / "out", "--set",
                        "emit.split=../../escape")
    assert code == 2 and "emit.split" in err
    assert not list(tmp_path.rglob("*escape*"))


def test_release_versions_cannot_escape_the_releases_dir(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out"
    assert run_cli(capsys, [src], out)[0] == 0
    releases = tmp_path / "releases"
    for version in ("../x", str(tmp_path / "abs"), "a/b", ".."):
        with pytest.raises(ReleaseError, match="release version"):
            publish_release(str(out), str(releases), version)
    assert not (tmp_path / "x").exists() and not (tmp_path / "abs").exists()
    target = Path(publish_release(str(out), str(releases), "v1.0"))
    assert target == releases / "v1"  # normalized: v1.0 and v1 are one version
    assert json.loads((target / "manifest.json").read_text())["conservation"]["holds"]


def test_a_typod_flag_is_an_error_and_not_a_beam_option(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out"
    code = cli_main(["run", "configs/quality.yaml", "--inptu", str(src), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--inptu" in err and "neither a refinery flag" in err
    assert not out.exists()


def test_beam_flags_still_pass_through(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out"
    code = cli_main(["run", "configs/quality.yaml", "--input", str(src), "--out", str(out),
                     *OFF, "--direct_num_workers", "1", "--job_name=refinery-test"])
    assert code == 0, capsys.readouterr().err
