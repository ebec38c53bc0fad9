"""Benchmark loading: every built-in field mapping, every file format, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from decontam_helpers import fixture_specs
from pydantic import ValidationError

from transforms.decontam.benchmarks import (
    BenchmarkError,
    guess_preset,
    item_text,
    load_benchmarks,
)
from transforms.decontam.config import BenchmarkSpec, DecontamConfig

# One row per built-in layout, shaped like the public release of each benchmark.
LAYOUTS = {
    "gsm8k": ({"question": "Q text", "answer": "A #### 1"}, "Q text", "0"),
    "math": ({"problem": "Find $x$.", "solution": "s", "unique_id": "test/algebra/1.json"},
             "Find $x$.", "test/algebra/1.json"),
    "humaneval": ({"task_id": "HumanEval/3", "prompt": "def f():\n", "test": "t"},
                  "def f():", "HumanEval/3"),
    "mbpp": ({"task_id": 11, "text": "Write a function.", "code": "c"}, "Write a function.",
             "11"),
    "mmlu": ({"question": "Pick one.", "choices": ["red", "blue"], "answer": 1},
             "Pick one.\nred\nblue", "0"),
    "arc": ({"id": "Mercury_1", "question": "Why?",
             "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"},
            "Why?\na\nb", "Mercury_1"),
    "truthfulqa": ({"type": "Adversarial", "question": "Is it true?", "best_answer": "no"},
                   "Is it true?", "0"),
    "mt_bench": ({"question_id": 81, "category": "writing", "turns": ["First.", "Second."]},
                 "First.\nSecond.", "81"),
    "alpaca_eval": ({"instruction": "Say hi.", "output": "hi", "generator": "g"}, "Say hi.",
                    "0"),
    "ifeval": ({"key": 1000, "prompt": "Write 300 words.", "instruction_id_list": []},
               "Write 300 words.", "1000"),
}


@pytest.mark.parametrize("preset", sorted(LAYOUTS))
def test_builtin_mappings(tmp_path: Path, preset: str) -> None:
    row, text, item_id = LAYOUTS[preset]
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps(row) + "\n")
    items = load_benchmarks([BenchmarkSpec(name=f"my_{preset}", path=str(path),
                                            preset=preset)])
    assert (items.texts, items.ids, items.benchmarks) == ([text], [item_id], [f"my_{preset}"])


def test_original_arc_layout_with_nested_choices() -> None:
    row = {"id": "x", "question": {"stem": "Which?", "choices": [{"text": "a", "label": "A"},
                                                                 {"text": "b", "label": "B"}]}}
    fields = ["question.stem|question", "choices.text|question.choices.text"]
    assert item_text(row, fields) == "Which?\na\nb"


@pytest.mark.parametrize(("name", "preset"), [("gsm8k_test", "gsm8k"), ("MATH-500", "math"),
                                              ("openai_humaneval", "humaneval"),
                                              ("MT-Bench", "mt_bench"), ("ai2_arc", "arc"),
                                              ("alpaca_eval", "alpaca_eval"), ("custom", None)])
def test_preset_guessed_from_name(name: str, preset: str | None) -> None:
    assert guess_preset(name) == preset


def test_all_file_formats_give_the_same_items(tmp_path: Path) -> None:
    rows = [{"question": f"Question number {i}?", "answer": str(i)} for i in range(3)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "a.json").write_text(json.dumps(rows))
    (tmp_path / "b.json").write_text(json.dumps({"data": rows}))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    (tmp_path / "a.csv").write_text("question,answer\n" + "".join(
        f"{r['question']},{r['answer']}\n" for r in rows))
    loaded = [load_benchmarks([BenchmarkSpec(name="gsm8k", path=str(tmp_path / f))]).texts
              for f in ("a.jsonl", "a.json", "b.json", "a.parquet", "a.csv")]
    assert all(t == [r["question"] for r in rows] for t in loaded)


def test_fixture_benchmarks_load(tmp_path: Path) -> None:
    items = load_benchmarks(fixture_specs())
    assert items.counts() == {"gsm8k": 10, "humaneval": 3, "mt_bench": 2, "mmlu": 2}
    assert items.ids[items.bench.index(2)] == "901"


def test_limit_glob_and_empty_rows(tmp_path: Path) -> None:
    for part in range(2):
        (tmp_path / f"p{part}.jsonl").write_text("".join(
            json.dumps({"question": "" if i == 0 else f"q{part}{i}"}) + "\n" for i in range(3)))
    items = load_benchmarks([BenchmarkSpec(name="gsm8k", path=str(tmp_path / "p*.jsonl"))])
    assert items.texts == ["q01", "q02", "q11", "q12"] and items.skipped == {"gsm8k": 2}
    limited = load_benchmarks([BenchmarkSpec(name="gsm8k", path=str(tmp_path / "p0.jsonl"),
                                             limit=1)])
    assert limited.texts == ["q01"]


def test_missing_file_names_the_benchmark(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="benchmark 'gsm8k': file not found"):
        load_benchmarks([BenchmarkSpec(name="gsm8k", path=str(tmp_path / "none.jsonl"))])


def test_unreachable_hf_dataset_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = BenchmarkSpec(name="gsm8k", hf="openai/gsm8k-does-not-exist", hf_config="main")
    with pytest.raises(BenchmarkError, match="cannot load Hugging Face dataset.*point `path`"):
        load_benchmarks([spec])


def test_no_mapping_and_wrong_fields_fail_clearly(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"body": "text"}) + "\n")
    with pytest.raises(BenchmarkError, match="no field mapping"):
        load_benchmarks([BenchmarkSpec(name="custom", path=str(path))])
    with pytest.raises(BenchmarkError, match="no items with text"):
        load_benchmarks([BenchmarkSpec(name="gsm8k", path=str(path))])
    assert load_benchmarks([BenchmarkSpec(name="custom", path=str(path),
                                          fields=["body"])]).texts == ["text"]


def test_config_validation() -> None:
    cfg = DecontamConfig(rules=["gpt3", {"name": "mine", "n": 5, "min_coverage": 0.2}])
    assert [(r.name, r.n, r.min_coverage) for r in cfg.rules] == [("gpt3", 13, 0.0),
                                                                   ("mine", 5, 0.2)]
    assert [r.name for r in DecontamConfig().rules] == ["tulu3", "gpt3"]
    with pytest.raises(ValidationError, match="unknown rule"):
        DecontamConfig(rules=["gpt4"])
    with pytest.raises(ValidationError, match="no benchmarks"):
        DecontamConfig(enabled=True)
    with pytest.raises(ValidationError, match="exactly one of"):
        BenchmarkSpec(name="x")
    with pytest.raises(ValidationError, match="unique"):
        DecontamConfig(rules=["gpt3", "gpt3"])
    with pytest.raises(ValidationError, match="extra"):
        DecontamConfig(benchmark=[])
