"""Issue #31 item 1: the output folder is Refinery's. A run refuses (exit 2) an `--out` that
holds files it did not write unless told to take it over, and never deletes them; an `--out`
that names a file is a usage error (exit 2) too."""

from __future__ import annotations

from pathlib import Path

from tests.reliability._helpers import manifest_of, run_cli, write_jsonl


def _users_folder(out: Path) -> None:
    (out / "sft").mkdir(parents=True)
    (out / "README.md").write_text("# my dataset card\n")
    (out / "sft" / "my_own_shard.parquet").write_bytes(b"PAR1 mine")
    (out / "notes.txt").write_text("keep me\n")


def test_a_folder_with_the_users_files_is_refused_and_left_as_it_was(tmp_path: Path,
                                                                    capsys) -> None:
    src = write_jsonl(tmp_path / "small.jsonl", 5)
    out = tmp_path / "out"
    _users_folder(out)
    code, err = run_cli(capsys, [src], out)
    assert code == 2, err
    assert "Refinery did not write" in err and "README.md" in err and "--take-over" in err
    assert (out / "README.md").read_text() == "# my dataset card\n"
    assert (out / "sft" / "my_own_shard.parquet").read_bytes() == b"PAR1 mine"
    assert not (out / "manifest.json").exists() and not (out / "current").exists()


def test_take_over_moves_clashing_files_aside_and_deletes_nothing(tmp_path: Path,
                                                                 capsys) -> None:
    src = write_jsonl(tmp_path / "small.jsonl", 5)
    out = tmp_path / "out"
    _users_folder(out)
    code, err = run_cli(capsys, [src], out, "--take-over")
    assert code == 0, err
    assert manifest_of(out)["conservation"]["records_out"] == 5
    assert (out / "notes.txt").read_text() == "keep me\n"  # not a published name: left alone
    displaced = list((out / ".displaced").iterdir())
    assert len(displaced) == 1
    assert (displaced[0] / "README.md").read_text() == "# my dataset card\n"
    assert (displaced[0] / "sft" / "my_own_shard.parquet").read_bytes() == b"PAR1 mine"
    assert (out / "sft").is_symlink() and (out / "README.md").is_symlink()
    # the folder is Refinery's now (plus the file it was told to leave): a rerun needs the
    # flag again only because of notes.txt
    assert run_cli(capsys, [src], out)[0] == 2
    (out / "notes.txt").unlink()
    assert run_cli(capsys, [src], out)[0] == 0


def test_a_rerun_into_refinerys_own_folder_is_not_refused(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "small.jsonl", 5)
    out = tmp_path / "out"
    assert run_cli(capsys, [src], out)[0] == 0
    assert run_cli(capsys, [src], out)[0] == 0
    assert manifest_of(out)["conservation"]["records_out"] == 5


def test_an_out_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "small.jsonl", 5)
    out = tmp_path / "out.txt"
    out.write_text("a file\n")
    code, err = run_cli(capsys, [src], out)
    assert code == 2 and "not a directory" in err
    assert out.read_text() == "a file\n"
