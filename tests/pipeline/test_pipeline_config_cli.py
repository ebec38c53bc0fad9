"""Config loading and validation, command-line overrides, and the CLI commands that do not
run a whole pipeline (validate, config-reference, python -m pipeline, ingest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as cli_main
from pipeline.config import ConfigError, load_config, parse_override, set_dotted

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"

BAD_CONFIG = """
run:
  seed: not-a-number
  colour: blue
sources:
  - {path: data/alpaca.jsonl, format: yaml}
  - {name: no-path}
ingest:
  batch_rows: 0
  max_error_rate: 1.5
emit:
  compression: lz4
beam:
  direct_running_mode: warp
"""


def test_validate_lists_every_problem_with_field_paths(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(BAD_CONFIG)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    problems = info.value.problems
    paths = [line.split(":", 1)[0] for line in problems]
    for expected in ("run.seed", "run.colour", "sources.0.format", "sources.1.path",
                     "ingest.batch_rows", "ingest.max_error_rate", "emit.compression",
                     "beam.direct_running_mode"):
        assert expected in paths, (expected, problems)
    assert len(problems) == 8
    assert any("Extra inputs are not permitted" in p for p in problems if p.startswith("run.colour"))
    assert any("'not-a-number'" in p for p in problems if p.startswith("run.seed"))

    code = cli_main(["validate", str(cfg)])
    err = capsys.readouterr().err
    assert code != 0
    assert "8 problem(s)" in err
    for expected in ("run.seed", "sources.1.path", "beam.direct_running_mode"):
        assert f"  {expected}:" in err


def test_validate_good_config_and_unreadable_files(tmp_path: Path, capsys) -> None:
    assert cli_main(["validate", str(DEMO)]) == 0
    assert "valid (config hash" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "broken.yaml").write_text("run: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="sources: .*at least one source"):
        load_config(tmp_path / "empty.yaml")


def test_set_overrides_nested_and_list_keys() -> None:
    cfg = load_config(DEMO, [
        "emit.num_shards=4",
        "sources.1.limit=3",
        "sources.0.field_map={instruction: prompt, output: reply}",
        "beam.options.max_num_workers=8",
        "ingest.max_error_rate=0.5",
        "run.name=with=equals",
    ])
    assert cfg.emit.num_shards == 4
    assert cfg.sources[1].limit == 3
    assert cfg.sources[0].field_map == {"instruction": "prompt", "output": "reply"}
    assert cfg.beam.options == {"max_num_workers": 8}
    assert cfg.ingest.max_error_rate == 0.5
    assert cfg.run.name == "with=equals"
    base = load_config(DEMO)
    assert cfg.config_hash() != base.config_hash()
    assert load_config(DEMO).config_hash() == base.config_hash()


def test_set_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="sources.9: no list item '9'"):
        load_config(DEMO, ["sources.9.limit=3"])
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(DEMO, ["emit.num_shards"])
    with pytest.raises(ConfigError, match=r"emit\.shards: Extra inputs are not permitted"):
        load_config(DEMO, ["emit.shards=4"])  # unknown key rejected
    with pytest.raises(ConfigError, match=r"run\.seed\.x: cannot set|run\.seed:"):
        load_config(DEMO, ["run.seed.x=1"])
    data: dict = {"a": [{"b": 1}]}
    set_dotted(data, "a.0.c.d", 2)
    assert data == {"a": [{"b": 1, "c": {"d": 2}}]}
    assert parse_override("k=") == ("k", "")
    assert parse_override("k=[1, 2]") == ("k", [1, 2])


def test_input_and_out_override_sources_and_output_dir(tmp_path: Path) -> None:
    cfg = load_config(DEMO, inputs=["a.jsonl", "b.parquet"], out=str(tmp_path / "o"))
    assert [s.path for s in cfg.sources] == ["a.jsonl", "b.parquet"]
    assert all(s.format == "auto" and s.layout == "auto" for s in cfg.sources)
    assert cfg.run.output_dir == str(tmp_path / "o")
    assert cfg.run.name == "refinery-demo"  # the rest of the config is kept


def test_unknown_cli_arguments_rejected_outside_run(capsys) -> None:
    assert cli_main(["validate", str(DEMO), "--bogus"]) == 2
    assert "unknown arguments" in capsys.readouterr().err


def test_config_reference_matches_docs() -> None:
    from pipeline.reference import config_reference

    doc = ROOT / "docs" / "CONFIG.md"
    if not doc.exists():
        raise AssertionError("docs/CONFIG.md is missing: run refinery config-reference > docs/CONFIG.md")
    text = config_reference()
    assert text == doc.read_text(), "docs/CONFIG.md is stale: run refinery config-reference"
    for key in ("run.seed", "sources[].field_map", "ingest.max_error_rate", "emit.num_shards",
                "beam.direct_running_mode"):
        assert f"`{key}`" in text


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def test_python_m_pipeline_validate(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(DEMO)], cwd=ROOT,
                        capture_output=True, text=True, env=_env(), timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CONFIG)
    res = subprocess.run([sys.executable, "-m", "pipeline", "validate", str(bad)], cwd=ROOT,
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert res.returncode == 2
    assert "run.seed" in res.stderr and "emit.compression" in res.stderr


def test_refinery_ingest_command(tmp_path: Path, capsys) -> None:
    data = ROOT / "data"
    out = tmp_path / "canon"
    code = cli_main(["ingest", str(data / "openai_messages.jsonl"), str(data / "qa.csv"),
                     "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out.splitlines()[0])
    assert summary["conservation"]["holds"] is True
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(i["path"]).name for i in manifest["inputs"]] == ["openai_messages.jsonl",
                                                                   "qa.csv"]
    assert {i["layout"] for i in manifest["inputs"]} == {"openai", "qa"}
    rows = sum(pq.read_table(p).num_rows for p in (out / "sft").glob("*.parquet"))
    dead = len((out / "deadletter" / "deadletter.jsonl").read_text().splitlines())
    assert rows + dead == manifest["conservation"]["records_in"] == 6 + 9
    assert (out / "README.md").exists() and (out / "report.html").exists()


def _default_mismatches(doc: str) -> tuple[int, list[str]]:
    """(rows checked, rows whose documented default differs from a fresh default config)."""
    from pipeline.reference import default_config
    from transforms.llm.config import LLMConfig

    fresh = default_config().model_dump(mode="json")
    checked, bad, llm_variant = 0, [], fresh["llm"]
    for line in doc.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) < 4:
            continue
        key, kind, default = cells[0].strip("`"), cells[1], cells[2]
        if key == "llm.*":  # the rows after it belong to another backend
            llm_variant = LLMConfig(backend=kind.removeprefix("backend: ")).model_dump(mode="json")
            continue
        if kind == "section" or "[]" in key or not default.startswith("`"):
            continue
        node: object = {**fresh, "llm": llm_variant} if key.startswith("llm.") else fresh
        for part in key.split("."):
            node = node[part]  # type: ignore[index]
        checked += 1
        if json.loads(default.strip("`")) != node:
            bad.append(f"{key}: documented {default}, default {json.dumps(node)}")
    return checked, bad


def test_every_documented_default_is_the_real_default() -> None:
    doc = (ROOT / "docs" / "CONFIG.md").read_text()
    checked, bad = _default_mismatches(doc)
    assert checked > 150 and bad == []
    # the check notices a wrong default (the bug it was written for: tag_instruct.expand)
    wrong = doc.replace("| `stages.tag_instruct.expand.temperature` | float | `0.9` |",
                        "| `stages.tag_instruct.expand.temperature` | float | `0.0` |")
    assert wrong != doc and _default_mismatches(wrong)[1] == [
        "stages.tag_instruct.expand.temperature: documented `0.0`, default 0.9"]
