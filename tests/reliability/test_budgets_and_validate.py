"""Issue #13 items 2 and 12: error budgets per stage, empty output, `refinery validate` on
unknown signals / composite terms / wrong value types, an unreachable LLM endpoint."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline.cli import main as cli_main
from tests.reliability._helpers import manifest_of, run_cli, write_jsonl


@pytest.mark.parametrize(("override", "message"), [
    ("stages.quality.filters=[{signal: q_lenght, op: '>', value: 3}]",
     "unknown signal 'q_lenght'"),
    ("stages.quality.composite=[{signal: q_respons_words}]",
     "unknown signal 'q_respons_words' (did you mean 'q_response_words'?)"),
    ("stages.quality.filters=[{signal: q_response_words, op: '>', value: 'many'}]",
     "'many' cannot be compared with > to q_response_words, a number signal"),
    ("stages.quality.filters=[{signal: q_empty, op: '==', value: 1}]",
     "cannot be compared with == to q_empty, a bool signal"),
])
def test_validate_rejects_filters_that_cannot_work(override: str, message: str, capsys) -> None:
    code = cli_main(["validate", "configs/quality.yaml", "--set", override])
    err = capsys.readouterr().err
    assert code == 2 and message in err


def test_a_run_that_keeps_nothing_fails_unless_allowed(tmp_path: Path, capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 40)
    drop_all = ["--set", "stages.quality.enabled=true", "--set",
                "stages.quality.filters=[{signal: q_response_words, op: '>=', value: 0}]"]
    code, err = run_cli(capsys, [src], tmp_path / "out", *drop_all)
    assert code == 3 and "no output rows from 40 input records" in err
    assert not (tmp_path / "out" / "manifest.json").exists()
    code, err = run_cli(capsys, [src], tmp_path / "out", *drop_all,
                        "--set", "run.allow_empty=true")
    assert code == 0, err
    assert manifest_of(tmp_path / "out")["conservation"]["rejected"] == 40


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_llm_endpoint_fails_the_run_naming_the_stage(tmp_path: Path,
                                                                    capsys) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", 6)
    llm = ["llm.backend=openai", f"llm.base_url=http://127.0.0.1:{_closed_port()}/v1",
           "llm.max_retries=0", "llm.timeout_s=2", "llm.retries=0", "llm.cache=false",
           "stages.quality.enabled=true", "stages.quality.judge.enabled=true",
           "stages.quality.judge.use_logprobs=false", "stages.quality.filters=[]"]
    code, err = run_cli(capsys, [src], tmp_path / "out", *[a for x in llm for a in ("--set", x)])
    assert code == 3
    assert "aborted at stage quality" in err and "12 dead-letter entries for 6 rows" in err
    assert "top errors: 12×" in err and "deadletter.jsonl" in err


def test_a_stage_over_its_budget_names_its_top_errors(tmp_path: Path, capsys, monkeypatch
                                                      ) -> None:
    """Fault injection: the quality core fails on rows whose prompt says 'boom'."""
    import transforms.quality.core as core

    real = core.score_batch

    def faulty(batch, config):
        texts = [m[0]["content"] for m in batch.column("messages").to_pylist()]
        if any("boom" in t for t in texts):
            raise RuntimeError("injected fault")
        return real(batch, config)

    monkeypatch.setattr(core, "score_batch", faulty)
    src = tmp_path / "in.jsonl"
    lines = [f'{{"instruction": "boom {i}?", "output": "Answer {i}."}}' for i in range(3)]
    src.write_text("\n".join(lines) + "\n")
    write_jsonl(tmp_path / "more.jsonl", 17)
    code, err = run_cli(capsys, [src, tmp_path / "more.jsonl"], tmp_path / "out",
                        "--set", "stages.quality.enabled=true")
    assert code == 3
    assert "stage quality: 3 of 20 rows (15.0%)" in err
    assert "stages.quality.max_error_rate=0.05" in err and "3× RuntimeError: injected fault" in err
    code, err = run_cli(capsys, [src, tmp_path / "more.jsonl"], tmp_path / "out2",
                        "--set", "stages.quality.enabled=true",
                        "--set", "stages.quality.max_error_rate=0.2")
    assert code == 0, err
    assert manifest_of(tmp_path / "out2")["conservation"] == {
        "records_in": 20, "records_out": 17, "rejected": 0, "deadletter": 3, "holds": True}


