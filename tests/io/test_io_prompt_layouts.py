"""Prompt-only examples and the layouts added for them (transforms/io/prompt_layouts.py),
folded field names, per-row detection in files that mix layouts, dataset presets, and the
held-back public shapes (MT-Bench, MBPP, TruthfulQA CSV) read from samples in data/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main as cli_main
from pipeline.config import IngestConfig, SourceConfig
from transforms.io.adapters import AdapterError, adapt_row, detect_layout
from transforms.io.canonical import to_canonical
from transforms.io.plan import plan_sources
from transforms.io.presets import PRESETS, layout_problems
from transforms.io.read_sources import convert_split

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SRC = {"dataset": "d", "file": "f.jsonl", "row": 0}


def canon(layout: str, row: dict, field_map: dict | None = None) -> dict:
    kind, rec = to_canonical(adapt_row(layout, row, field_map), SRC)
    assert kind == "example"
    return rec


def turns(rec: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in rec["messages"]]


def read(source: SourceConfig, fast: bool = True, **ingest: Any) -> dict[str, list]:
    """Examples (row dicts), pairs, dead letters and reports of every split of `source`."""
    cfg = IngestConfig(**ingest)
    out: dict[str, list] = {"example": [], "pair": [], "deadletter": [], "report": []}
    for split in plan_sources([source], cfg):
        for kind, value in convert_split(split, source, cfg, fast=fast):
            out[kind] += value.to_pylist() if kind in ("example", "pair") else [value]
    return out


# ---------------------------------------------------------------- each prompt-only layout


@pytest.mark.parametrize(("row", "want"), [
    ({"instruction": "Write a haiku about rain."}, [("user", "Write a haiku about rain.")]),
    ({"instruction": "Translate.", "input": "Good night."}, [("user", "Translate.\n\nGood night.")]),
    ({"instruction": "Answer.", "context": "Paris is in France.", "category": "closed_qa"},
     [("user", "Answer.\n\nParis is in France.")]),
    ({"prompt": "Explain gravity."}, [("user", "Explain gravity.")]),
    ({"prompt": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Hi"}]}, [("system", "Be brief."), ("user", "Hi")]),
    ({"question": "Why is the sea salty?"}, [("user", "Why is the sea salty?")]),
    ({"query": "Best way to boil rice?", "system": "You are a chef."},
     [("system", "You are a chef."), ("user", "Best way to boil rice?")]),
    ({"problem": "Solve x + 2 = 5."}, [("user", "Solve x + 2 = 5.")]),
])
def test_prompt_layout_rows_end_with_a_user_turn(row: dict, want: list) -> None:
    assert detect_layout([row]) == "prompt"
    rec = canon("prompt", row)
    assert turns(rec) == want and rec["messages"][-1]["role"] == "user"


def test_prompt_layout_keeps_category_context_and_extra_fields() -> None:
    rec = canon("prompt", {"instruction": "Answer.", "context": "ctx", "category": "qa",
                           "id": "s-1"})
    assert rec["meta"]["category"] == "qa" and rec["meta"]["context"] == "ctx"
    assert json.loads(rec["meta"]["extra"]) == {"id": "s-1"}


def test_mt_bench_turns_become_user_turns_answered_later() -> None:
    row = {"question_id": 81, "category": "writing", "turns": ["Write a poem.", "Shorten it."],
           "reference": ["a", "b"]}
    assert detect_layout([row]) == "mt_bench"
    rec = canon("mt_bench", row)
    assert turns(rec) == [("user", "Write a poem."), ("user", "Shorten it.")]
    assert rec["meta"]["category"] == "writing"
    assert json.loads(rec["meta"]["extra"]) == {"question_id": 81, "reference": ["a", "b"]}
    arena = canon("mt_bench", {"question_id": "x", "turns": [{"content": "Plan a trip."}]})
    assert turns(arena) == [("user", "Plan a trip.")]
    with pytest.raises(AdapterError, match="non-empty list"):
        adapt_row("mt_bench", {"turns": []})


def test_text_layout_only_when_set_explicitly() -> None:
    with pytest.raises(AdapterError, match="cannot detect the layout"):
        detect_layout([{"text": "Tell me a joke."}])
    assert turns(canon("text", {"text": "Tell me a joke."})) == [("user", "Tell me a joke.")]


def test_prompt_only_example_must_have_a_user_turn_last() -> None:
    with pytest.raises(AdapterError, match="no user turn"):
        canon("prompt", {"prompt": [{"role": "system", "content": "s"}]})


# ---------------------------------------------------------------- new response-bearing layouts


def test_mbpp_full_and_sanitized_shapes() -> None:
    full = {"text": "Write a function to add two numbers.", "code": "def add(a, b):\r\n  return a + b",
            "task_id": 1, "test_setup_code": "", "test_list": ["assert add(1, 2) == 3"],
            "challenge_test_list": []}
    assert detect_layout([full]) == "mbpp"
    rec = canon("mbpp", full)
    assert turns(rec) == [
        ("user", "Write a function to add two numbers.\n\nYour code should pass these tests:\n"
                 "assert add(1, 2) == 3"),
        ("assistant", "def add(a, b):\n  return a + b")]
    assert json.loads(rec["meta"]["extra"]) == {"challenge_test_list": [], "task_id": 1,
                                                "test_setup_code": ""}
    sanitized = {"prompt": "Write a function to add.", "code": "def add(a, b): return a + b",
                 "test_imports": [], "test_list": ["assert add(2, 2) == 4"], "task_id": 2}
    assert detect_layout([sanitized]) == "mbpp"
    assert canon("mbpp", sanitized)["messages"][0]["content"].endswith("assert add(2, 2) == 4")


@pytest.mark.parametrize(("row", "q", "a"), [
    ({"Type": "Adversarial", "Question": "Is the Moon made of cheese?",
      "Best Answer": "No, it is made of rock", "Correct Answers": "No"},
     "Is the Moon made of cheese?", "No, it is made of rock"),
    ({"question": "q?", "best_answer": "b", "correct_answers": ["b"]}, "q?", "b"),
    ({"query": "What is 2+2?", "response": "4"}, "What is 2+2?", "4"),
    ({"input": "Say hi", "output": "Hi"}, "Say hi", "Hi"),
    ({"QUESTION": "Capital of Peru?", "ANSWER": "Lima"}, "Capital of Peru?", "Lima"),
])
def test_qa_shapes_in_any_field_case(row: dict, q: str, a: str) -> None:
    assert detect_layout([row]) == "qa"
    assert turns(canon("qa", row)) == [("user", q), ("assistant", a)]


def test_conversation_lists_of_role_or_from_turns() -> None:
    row = {"conversation": [{"role": "user", "content": "Hi"}, {"from": "gpt", "value": "Hello"},
                            {"role": "human", "value": "Bye"}]}
    assert detect_layout([row]) == "sharegpt"
    assert turns(canon("sharegpt", row)) == [("user", "Hi"), ("assistant", "Hello"),
                                             ("user", "Bye")]


def test_folding_keeps_a_clashing_field_under_its_own_name() -> None:
    rec = canon("qa", {"question": "q", "Question": "Q", "answer": "a"})
    assert turns(rec)[0] == ("user", "q")
    assert json.loads(rec["meta"]["extra"]) == {"Question": "Q"}


# ---------------------------------------------------------------- per-row detection


def test_rows_missing_their_response_in_a_layout_file_stay_errors() -> None:
    """An Alpaca row without its output is broken (dead letter); a row whose fields are those
    of a prompt layout only is a prompt."""
    with pytest.raises(AdapterError, match="missing field 'output'"):
        canon("alpaca", {"instruction": "x", "input": ""})
    assert turns(canon("alpaca", {"prompt": "Explain tides."})) == [("user", "Explain tides.")]
    with pytest.raises(AdapterError, match="no question/answer field pair"):
        canon("qa", {"question": "q"})


@pytest.mark.parametrize("fast", [True, False])
def test_junk_first_lines_do_not_condemn_the_file(tmp_path: Path, fast: bool) -> None:
    """250 comment/junk lines, then 1,000 valid rows: every valid row is read."""
    path = tmp_path / "late.jsonl"
    junk = [b"# exported by a tool, comment line %d" % i for i in range(200)]
    junk += [json.dumps({"note": f"header {i}"}).encode() for i in range(50)]
    valid = [json.dumps({"instruction": f"Task {i}", "output": f"Done {i}."}).encode()
             if i % 2 else json.dumps({"question": f"Why {i}?"}).encode() for i in range(1000)]
    path.write_bytes(b"\n".join(junk + valid) + b"\n")
    got = read(SourceConfig(path=str(path)), fast=fast, split_bytes=4096)
    assert len(got["example"]) == 1000 and len(got["deadletter"]) == 250
    assert sum(1 for r in got["example"] if r["messages"][-1]["role"] == "user") == 500
    errors = {d["error"].split(":")[0] for d in got["deadletter"]}
    assert errors == {"ReadError", "AdapterError"}
    notes = [d for d in got["deadletter"] if "cannot detect the layout" in d["error"]]
    assert len(notes) == 50 and "['note']" in notes[0]["error"] and "preset" in notes[0]["error"]
    assert all(r["layout"] == "auto" for r in got["report"])


def test_layout_problems_name_the_fields_and_the_fix() -> None:
    entries = [{"stage": "ingest", "file": "x.jsonl", "row": i, "raw": json.dumps({"foo": 1, "bar": 2}),
                "error": "AdapterError: cannot detect the layout from fields ['bar', 'foo']; ..."}
               for i in range(3)]
    entries.append({"stage": "ingest", "file": "y.jsonl", "row": 0, "raw": "{", "error": "ReadError"})
    lines = layout_problems(entries)
    assert len(lines) == 1 and lines[0].startswith("x.jsonl: 3 row(s) with no known layout")
    assert "bar, foo" in lines[0] and "preset" in lines[0] and "refinery layouts" in lines[0]


def test_console_prints_the_fields_seen_and_the_fix(tmp_path: Path, capsys) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_text("".join(json.dumps({"ask": f"q{i}", "reply": "r"}) + "\n" for i in range(4)))
    code = cli_main(["ingest", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 3  # every row dead-lettered: over the error budget
    assert "4 row(s) with no known layout (fields seen: ask, reply)" in err and "preset" in err


def test_refinery_layouts_lists_layouts_and_presets(capsys) -> None:
    assert cli_main(["layouts"]) == 0
    out = capsys.readouterr().out
    for name in ("mt_bench", "mbpp", "prompt", "text", *PRESETS):
        assert f"  {name} " in out, name


# ---------------------------------------------------------------- held-back public shapes


@pytest.mark.parametrize(("name", "preset", "rows", "last_role"), [
    ("mt_bench_style.jsonl", None, 4, "user"),
    ("mt_bench_style.jsonl", "mt_bench", 4, "user"),
    ("mbpp_style.jsonl", None, 3, "assistant"),
    ("mbpp_style.jsonl", "mbpp", 3, "assistant"),
    ("truthfulqa_style.csv", None, 3, "assistant"),
    ("truthfulqa_style.csv", "truthfulqa", 3, "assistant"),
    ("seeds.jsonl", None, 20, "user"),
])
def test_public_shapes_ingest_with_no_dead_letters(name: str, preset: str | None, rows: int,
                                                   last_role: str) -> None:
    got = read(SourceConfig(path=str(DATA / name), preset=preset))
    assert not got["deadletter"] and not got["pair"]
    assert len(got["example"]) == rows
    assert {r["messages"][-1]["role"] for r in got["example"]} == {last_role}


def test_truthfulqa_csv_best_answer_is_the_answer() -> None:
    got = read(SourceConfig(path=str(DATA / "truthfulqa_style.csv"), preset="truthfulqa"))
    first = got["example"][0]
    assert turns(first) == [("user", "Does a goldfish only remember things for three seconds?"),
                            ("assistant", "No, goldfish can remember things for months")]
    assert json.loads(first["meta"]["extra"])["category"] == "Misconceptions"


def test_seed_multi_turn_rows_keep_every_turn() -> None:
    got = read(SourceConfig(path=str(DATA / "seeds.jsonl")))
    multi = [r for r in got["example"] if len(r["messages"]) > 1]
    assert [[m["role"] for m in r["messages"]] for r in multi] == [["user", "user"]] * 2


def test_presets_set_layout_and_field_map_unless_given() -> None:
    humaneval = SourceConfig(path="x", preset="humaneval")
    assert humaneval.layout == "qa" and humaneval.field_map["answer"] == "canonical_solution"
    rec = canon(humaneval.layout, {"task_id": "HumanEval/0", "prompt": "def f():\n",
                                   "canonical_solution": "    return 1\n", "test": "..."},
                humaneval.field_map)
    assert turns(rec) == [("user", "def f():"), ("assistant", "return 1")]
    assert SourceConfig(path="x", preset="mbpp", layout="qa").layout == "qa"


def test_columnar_path_equals_per_row_on_mixed_prompt_files(tmp_path: Path) -> None:
    """Files mixing full rows, prompt-only rows and other-case field names give the same
    batches, dead letters and reports on the columnar and the per-row path."""
    from tests.io.test_io_columnar import assert_same

    rows = [{"instruction": "Add 2 and 2.", "input": "", "output": "4"},
            {"instruction": "Seed without output"},
            {"prompt": "A prompt row"},
            {"instruction": "Extra", "output": "x", "Category": "c", "ID": 3},
            {"question": "Q only", "Answer": None},
            {"Question": "Cased", "Answer": "yes"},
            {"turns": ["t1", "t2"]},
            {"instruction": "Nulls", "input": None, "output": "n"}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * 3))
    for layout in ("auto", "alpaca", "prompt"):
        fast = assert_same(path, layout=layout)
        assert any(k == "example" for k, _ in fast)
