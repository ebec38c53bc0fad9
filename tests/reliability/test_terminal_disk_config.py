"""Issue #31 held-back areas: row text shown on a terminal is data, never markup or control
sequences (the `inspect` table, the dead-letter view); a full disk while shards are written is
exit 3 naming the path, with the previous outputs intact; config parsing has limits (size,
alias expansion, depth) and fails fast with exit 2."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import transforms.io.write_shards as write_shards
from pipeline.cli import main as cli_main
from pipeline.report.inspect import print_rows, sample_rows
from tests.reliability._helpers import run_cli, write_jsonl
from tests.reliability.test_publish import snapshot

HOSTILE = "[bold red]MARKUP[/] \x1b[2J\x1b]0;pwned\x07 \u202eevil \r done"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _hostile_run(tmp_path: Path, capsys) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"instruction": HOSTILE, "output": "fine"}) + "\n"
                   + json.dumps({"instruction": "ok?", "output": "ok"}) + "\n"
                   + '{"broken": "' + HOSTILE.replace("\x1b", "\\u001b") + '\x1b[31m\n')
    out = tmp_path / "out"
    assert run_cli(capsys, [src], out, "--set", "ingest.max_error_rate=1")[0] == 0
    return out


def test_row_text_on_a_terminal_is_shown_as_data(tmp_path: Path, capsys) -> None:
    out = _hostile_run(tmp_path, capsys)
    for dataset in ("sft", "deadletter"):
        for stream in (Tty(), io.StringIO()):  # the rich table, and the plain pipe form
            print_rows(sample_rows(str(out), dataset), dataset, stream)
            shown = stream.getvalue()
            assert "\x1b[2J" not in shown and "\x1b]0;" not in shown and "\x07" not in shown
            assert "\u202e" not in shown and "\r" not in shown
            assert "\\u202e" in shown, shown  # shown escaped, as text
            if dataset == "deadletter":
                assert "\\x1b" in shown or "\\u001b" in shown, shown
            else:
                assert "[bold red]MARKUP[/]" in shown.replace("\n", "").replace("│", ""), shown


def test_a_full_disk_while_writing_shards_is_exit_3_naming_the_path(tmp_path: Path, capsys,
                                                                    monkeypatch) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out"
    assert run_cli(capsys, [src], out)[0] == 0
    before = snapshot(out)
    real = write_shards.write_bytes

    def full(path: str, data: bytes) -> None:  # fault injection: the disk fills up
        if path.endswith(".parquet") and "/sft/" in path:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real(path, data)

    monkeypatch.setattr(write_shards, "write_bytes", full)
    code, err = run_cli(capsys, [write_jsonl(tmp_path / "more.jsonl", 40)], out)
    assert code == 3, err
    assert "the disk is full: writing " in err and "/sft/" in err and ".parquet" in err
    assert "Traceback" not in err
    assert snapshot(out) == before


def _validate(tmp_path: Path, capsys, text: str) -> tuple[int, str]:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(text)
    (tmp_path / "in.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    code = cli_main(["validate", str(cfg), "--input", str(tmp_path / "in.jsonl")])
    return code, capsys.readouterr().err


def test_configs_built_to_explode_fail_fast(tmp_path: Path, capsys) -> None:
    # aliases of aliases: 8 lines that stand for 9**6 (531,441) values in beam.options
    lines = ["beam:", "  options:", '    a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"    a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 6)]
    code, err = _validate(tmp_path, capsys, "\n".join(lines) + "\n")
    assert code == 2 and "expands to more than" in err
    code, err = _validate(tmp_path, capsys, "beam:\n  options:\n    deep: " + "[" * 200
                          + "]" * 200 + "\n")
    assert code == 2 and "nests deeper than" in err
    code, err = _validate(tmp_path, capsys, "run:\n  name: " + "x" * (2 << 20) + "\n")
    assert code == 2 and "larger than" in err
    # ordinary anchors and aliases still work
    code, err = _validate(tmp_path, capsys, "run: &r {name: a}\nbeam:\n  options: {x: *r}\n")
    assert code == 0, err
