"""Issue #31 item 5: every stored text (manifest, report, card, dead letter) is scrubbed of
credentials in URLs; `*_env` fields must be variable names, so a key pasted there is refused
(exit 2) without being echoed or stored."""

from __future__ import annotations

from pathlib import Path

from tests.reliability._helpers import run_cli, write_jsonl
from transforms.redact import redact

PASSWORD = "hunter2-Pa55w0rd-XYZ"
PASTED = "sk-pasted0123456789abcdef"


def _stored(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file()] + [
        p for p in (out / "current").resolve().rglob("*") if p.is_file()]


def test_a_password_in_base_url_reaches_no_stored_file(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 4)
    (tmp_path / "in.jsonl").open("a").write('{"broken http://bob:' + PASSWORD + '@x.org/\n')
    out = tmp_path / "out"
    code, err = run_cli(capsys, [src], out, "--set", "llm.backend=openai", "--set",
                        f"llm.base_url=http://alice:{PASSWORD}@127.0.0.1:9/v1")
    assert code == 0, err
    assert "http://[REDACTED]@127.0.0.1:9/v1" in (out / "manifest.json").read_text()
    files = _stored(out)
    assert {p.name for p in files} >= {"manifest.json", "report.html", "README.md",
                                       "deadletter.jsonl"}
    for path in files:
        assert PASSWORD.encode() not in path.read_bytes(), path
    assert PASSWORD not in err


def test_a_key_pasted_into_an_env_field_is_refused_and_not_echoed(tmp_path: Path,
                                                                  capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 4)
    out = tmp_path / "out"
    code, err = run_cli(capsys, [src], out, "--set", "llm.backend=openai",
                        "--set", f"llm.api_key_env={PASTED}")
    assert code == 2
    assert "api_key_env must be the name of an environment variable" in err
    assert PASTED not in err
    assert not out.exists() or all(PASTED.encode() not in p.read_bytes() for p in _stored(out))


def test_url_credentials_are_masked_and_plain_urls_kept() -> None:
    assert redact("see https://u:p4ss@h.example/x and https://h.example/a@b") == \
        "see https://[REDACTED]@h.example/x and https://h.example/a@b"
