"""Format adapters (transforms.io.adapters) and canonicalization (transforms.io.canonical)."""

from __future__ import annotations

import json

import pytest

from schemas.ids import example_id, pair_id, row_id
from transforms.io.adapters import (
    AdapterError,
    adapt_row,
    detect_layout,
    parse_transcript,
)
from transforms.io.canonical import to_canonical

SRC = {"dataset": "d", "file": "f.jsonl", "row": 7}


def canon(layout: str, row: dict, field_map: dict | None = None) -> tuple[str, dict]:
    return to_canonical(adapt_row(layout, row, field_map), SRC)


def roles(messages: list[dict]) -> list[str]:
    return [m["role"] for m in messages]


# ---------------------------------------------------------------- alpaca


def test_alpaca_plain() -> None:
    kind, rec = canon("alpaca", {"instruction": "Name a colour.", "input": "", "output": "Red."})
    assert kind == "example"
    assert rec["messages"] == [{"role": "user", "content": "Name a colour."},
                               {"role": "assistant", "content": "Red."}]
    assert rec["content_hash"] == example_id(rec["messages"])
    assert rec["id"] == row_id(rec["content_hash"], "f.jsonl", 7)
    assert rec["source"] == SRC
    assert rec["meta"]["extra"] is None


def test_alpaca_with_input_and_system_and_extra_fields() -> None:
    row = {"instruction": "Translate.", "input": "Hello", "output": "Bonjour",
           "system": "You translate to French.", "lang": "fr"}
    _, rec = canon("alpaca", row)
    assert roles(rec["messages"]) == ["system", "user", "assistant"]
    assert rec["messages"][0]["content"] == "You translate to French."
    assert rec["messages"][1]["content"] == "Translate.\n\nHello"
    assert json.loads(rec["meta"]["extra"]) == {"lang": "fr"}


def test_seed_tasks_are_alpaca_rows_of_their_first_instance() -> None:
    """Self-instruct / Alpaca seed tasks: instruction + instances [{input, output}]."""
    rows = [{"id": "seed_task_1", "name": "opposites", "instruction": "Give the opposite word.",
             "instances": [{"input": "hot", "output": "cold"}, {"input": "up", "output": "down"}],
             "is_classification": False},
            {"id": "seed_task_2", "name": "greeting", "instruction": "Write a short greeting.",
             "instances": [{"input": "", "output": "Hello there!"}], "is_classification": False}]
    assert detect_layout(rows) == "alpaca"
    _, rec = canon("alpaca", rows[0])
    assert rec["messages"] == [{"role": "user", "content": "Give the opposite word.\n\nhot"},
                               {"role": "assistant", "content": "cold"}]
    extra = json.loads(rec["meta"]["extra"])
    assert extra["instances"] == [{"input": "up", "output": "down"}]
    assert extra["name"] == "opposites"
    _, rec = canon("alpaca", rows[1])
    assert rec["messages"][1]["content"] == "Hello there!"
    assert "instances" not in json.loads(rec["meta"]["extra"])


def test_humaneval_rows_are_qa_with_the_reference_solution() -> None:
    row = {"task_id": "Demo/0", "prompt": "def add(a, b):\n    \"\"\"Sum of a and b.\"\"\"\n",
           "canonical_solution": "    return a + b\n", "test": "assert add(1, 2) == 3",
           "entry_point": "add"}
    assert detect_layout([row]) == "qa"
    _, rec = canon("qa", row)
    assert roles(rec["messages"]) == ["user", "assistant"]
    assert rec["messages"][1]["content"].strip() == "return a + b"
    assert json.loads(rec["meta"]["extra"])["entry_point"] == "add"


# ---------------------------------------------------------------- sharegpt


def test_sharegpt_all_roles() -> None:
    row = {"conversations": [
        {"from": "system", "value": "Be brief."},
        {"from": "human", "value": "Weather in Oslo?"},
        {"from": "function_call", "value": '{"name": "get_weather"}'},
        {"from": "observation", "value": '{"t": -3}'},
        {"from": "gpt", "value": "-3 °C."}], "tools": "[]"}
    _, rec = canon("sharegpt", row)
    assert roles(rec["messages"]) == ["system", "user", "assistant", "tool", "assistant"]
    assert rec["messages"][2]["content"] == '{"name": "get_weather"}'
    assert json.loads(rec["meta"]["extra"]) == {"tools": "[]"}


def test_sharegpt_top_level_system_is_prepended_once() -> None:
    row = {"system": "Tutor.", "conversation": [{"from": "user", "value": "Is 91 prime?"},
                                                {"from": "assistant", "value": "No, 7 x 13."}]}
    _, rec = canon("sharegpt", row)
    assert rec["messages"][0] == {"role": "system", "content": "Tutor."}
    assert roles(rec["messages"]) == ["system", "user", "assistant"]
    row2 = {"system": "Other.", "conversations": [{"from": "system", "value": "Tutor."},
                                                  {"from": "human", "value": "Q"},
                                                  {"from": "gpt", "value": "A"}]}
    _, rec2 = canon("sharegpt", row2)
    assert roles(rec2["messages"]) == ["system", "user", "assistant"]  # not doubled


# ---------------------------------------------------------------- openai


def test_openai_content_parts_and_tool_calls() -> None:
    calls = [{"type": "function", "function": {"name": "book", "arguments": "{}"}}]
    row = {"messages": [
        {"role": "developer", "content": "Sys."},
        {"role": "user", "content": [{"type": "text", "text": "Part one."},
                                     {"type": "image_url", "image_url": {"url": "x"}},
                                     {"type": "text", "text": "Part two."}]},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "content": '{"ok": true}'},
        {"role": "assistant", "content": "Booked."}]}
    _, rec = canon("openai", row)
    assert roles(rec["messages"]) == ["system", "user", "assistant", "tool", "assistant"]
    assert rec["messages"][1]["content"] == "Part one.\nPart two."
    assert json.loads(rec["messages"][2]["content"]) == calls


def test_openai_function_call_turn() -> None:
    row = {"messages": [{"role": "user", "content": "Q"},
                        {"role": "assistant", "content": None,
                         "function_call": {"name": "f", "arguments": "{}"}},
                        {"role": "function", "content": "result"},
                        {"role": "assistant", "content": "A"}]}
    _, rec = canon("openai", row)
    assert roles(rec["messages"]) == ["user", "assistant", "tool", "assistant"]
    assert json.loads(rec["messages"][1]["content"])["name"] == "f"


# ---------------------------------------------------------------- dolly


def test_dolly_context_and_category() -> None:
    row = {"instruction": "When?", "context": "Built in 1889.", "response": "1889.",
           "category": "closed_qa"}
    _, rec = canon("dolly", row)
    assert rec["messages"][0]["content"] == "When?\n\nBuilt in 1889."
    assert rec["meta"]["category"] == "closed_qa"
    assert rec["meta"]["context"] == "Built in 1889."
    _, rec2 = canon("dolly", {"instruction": "Q?", "context": "", "response": "A."})
    assert rec2["messages"][0]["content"] == "Q?"
    assert "context" not in rec2["meta"] or rec2["meta"]["context"] is None


# ---------------------------------------------------------------- qa


@pytest.mark.parametrize(("q", "a"), [("question", "answer"), ("problem", "solution"),
                                      ("query", "response"), ("prompt", "completion")])
def test_qa_field_pairs(q: str, a: str) -> None:
    _, rec = canon("qa", {q: "What is 2+2?", a: "4"})
    assert rec["messages"] == [{"role": "user", "content": "What is 2+2?"},
                               {"role": "assistant", "content": "4"}]


def test_qa_problem_solution_keeps_final_answer_in_meta() -> None:
    row = {"problem": "Compute 6*7.", "solution": "6*7 = 42, so the answer is 42.",
           "answer": "42", "level": "1"}
    _, rec = canon("qa", row)
    assert rec["messages"][1]["content"] == "6*7 = 42, so the answer is 42."
    assert rec["meta"]["answer"] == "42"
    assert json.loads(rec["meta"]["extra"]) == {"level": "1"}


# ---------------------------------------------------------------- preference


def test_preference_strings() -> None:
    kind, rec = canon("preference", {"prompt": "Boil an egg?", "chosen": "9 minutes.",
                                     "rejected": "Microwave it."})
    assert kind == "pair"
    assert rec["prompt"] == [{"role": "user", "content": "Boil an egg?"}]
    assert rec["chosen"] == [{"role": "assistant", "content": "9 minutes."}]
    assert rec["rejected"] == [{"role": "assistant", "content": "Microwave it."}]
    assert rec["content_hash"] == pair_id(rec["prompt"], rec["chosen"], rec["rejected"])
    assert rec["id"] == row_id(rec["content_hash"], "f.jsonl", 7)
    assert rec["meta"]["method"] == "ingest"


def test_preference_message_lists_with_repeated_prompt() -> None:
    prompt = [{"role": "user", "content": "Recommend a book."}]
    row = {"prompt": prompt,
           "chosen": prompt + [{"role": "assistant", "content": "The Art of Statistics."}],
           "rejected": [{"role": "assistant", "content": "Any."}]}
    _, rec = canon("preference", row)
    assert rec["prompt"] == prompt
    assert rec["chosen"] == [{"role": "assistant", "content": "The Art of Statistics."}]
    assert rec["rejected"] == [{"role": "assistant", "content": "Any."}]


def test_preference_transcripts_split_shared_prompt() -> None:
    shared = "\n\nHuman: Name a goldfish.\n\nAssistant: Bubbles?\n\nHuman: More elegant?"
    row = {"chosen": shared + "\n\nAssistant: Aurelia.", "rejected": shared + "\n\nAssistant: Fish."}
    _, rec = canon("preference", row)
    assert roles(rec["prompt"]) == ["user", "assistant", "user"]
    assert rec["prompt"][2]["content"] == "More elegant?"
    assert rec["chosen"] == [{"role": "assistant", "content": "Aurelia."}]
    assert rec["rejected"] == [{"role": "assistant", "content": "Fish."}]


def test_parse_transcript() -> None:
    assert parse_transcript("Human: hi\n\nAssistant: hello") == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    with pytest.raises(AdapterError, match="no 'Human:'"):
        parse_transcript("just text")


# ---------------------------------------------------------------- detection and field_map


@pytest.mark.parametrize(
    ("row", "layout"),
    [
        ({"instruction": "i", "input": "", "output": "o"}, "alpaca"),
        ({"conversations": [{"from": "human", "value": "x"}]}, "sharegpt"),
        ({"conversation": [{"from": "human", "value": "x"}]}, "sharegpt"),
        ({"messages": [{"role": "user", "content": "x"}]}, "openai"),
        ({"instruction": "i", "context": "", "response": "r", "category": "c"}, "dolly"),
        ({"question": "q", "answer": "a"}, "qa"),
        ({"problem": "q", "solution": "a"}, "qa"),
        ({"prompt": "p", "chosen": "c", "rejected": "r"}, "preference"),
        ({"chosen": "Human: a\n\nAssistant: b", "rejected": "Human: a\n\nAssistant: c"},
         "preference"),
    ],
)
def test_detect_layout(row: dict, layout: str) -> None:
    assert detect_layout([row]) == layout


def test_detect_layout_votes_and_ignores_non_objects() -> None:
    rows = [{"question": "q", "answer": "a"}] * 3 + [{"instruction": "i", "output": "o"}, [1], 5]
    assert detect_layout(rows) == "qa"
    with pytest.raises(AdapterError, match="cannot detect the layout"):
        detect_layout([{"foo": 1}, {"bar": 2}])
    with pytest.raises(AdapterError):
        detect_layout([])


def test_field_map_overrides_detection() -> None:
    row = {"ask": "Say hi.", "reply": "Hi!", "id": 3}
    with pytest.raises(AdapterError, match="cannot detect"):
        detect_layout([row])
    _, rec = canon("alpaca", row, {"instruction": "ask", "output": "reply"})
    assert rec["messages"] == [{"role": "user", "content": "Say hi."},
                               {"role": "assistant", "content": "Hi!"}]
    with pytest.raises(AdapterError, match="source field 'answer'"):
        adapt_row("alpaca", row, {"output": "answer"})


# ---------------------------------------------------------------- every error path


@pytest.mark.parametrize(
    ("layout", "row", "message"),
    [
        ("alpaca", [1, 2], "should be an object"),
        ("alpaca", "text", "should be an object"),
        ("alpaca", {"instruction": "i"}, "missing field 'output'"),
        ("alpaca", {"instruction": 42, "output": "o"}, "should be text, got int"),
        ("alpaca", {"instruction": "i", "output": "o", "system": 3}, "should be text"),
        ("alpaca", {"instruction": "  ", "output": "o"}, "message 0 \\(user\\) is empty"),
        ("alpaca", {"instruction": "i", "output": "\u200b"}, "message 1 \\(assistant\\) is empty"),
        ("dolly", {"instruction": "", "context": "", "response": "r"}, "is empty"),
        ("dolly", {"instruction": "i"}, "missing field 'response'"),
        ("qa", {"foo": "q"}, "no question/answer field pair"),
        ("qa", {"question": ["x"], "answer": "a"}, "should be text"),
        ("sharegpt", {"conversations": "not a list"}, "should be a list of turns"),
        ("sharegpt", {"conversations": ["turn"]}, "turn 0 should be an object"),
        ("sharegpt", {"conversations": [{"from": "narrator", "value": "x"}]}, "unknown role"),
        ("sharegpt", {"conversations": [{"from": "human"}]}, "missing field 'turn 0 value'"),
        ("sharegpt", {"conversations": [{"from": "human", "value": "hi"},
                                        {"from": "tool", "value": "x"}]}, "must end with a user"),
        ("sharegpt", {"conversations": [{"from": "gpt", "value": "hi"}]}, "no user turn"),
        ("openai", {"messages": [{"role": "wizard", "content": "x"}]}, "unknown role"),
        ("openai", {"messages": [{"role": "user", "content": 5},
                                 {"role": "assistant", "content": "a"}]}, "should be text"),
        ("openai", {"messages": []}, "no user turn"),
        ("preference", {"prompt": "p", "chosen": "c"}, "missing field 'rejected'"),
        ("preference", {"prompt": "p", "chosen": "same", "rejected": "same"}, "identical"),
        ("preference", {"prompt": "p", "chosen": "c", "rejected": ""}, "rejected: message 0"),
        ("preference", {"chosen": "Human: a\n\nAssistant: b", "rejected": "Human: x\n\nAssistant: c"},
         "do not share a prompt"),
        ("preference", {"prompt": "p", "chosen": [{"role": "user", "content": "c"}],
                        "rejected": "r"}, "chosen must end with an assistant turn"),
        ("preference", {"prompt": [{"role": "assistant", "content": "p"}], "chosen": "c",
                        "rejected": "r"}, "prompt has no user turn"),
    ],
)
def test_error_paths_raise_adapter_error(layout: str, row: object, message: str) -> None:
    with pytest.raises(AdapterError, match=message):
        to_canonical(adapt_row(layout, row), SRC)


def test_canonical_normalizes_text_and_meta() -> None:
    row = {"instruction": "Caf\u00e9\r\nmenu  ", "context": " ctx\u200b ", "response": "ok",
           "category": "c"}
    _, rec = canon("dolly", row)
    # the context line keeps its leading space: indentation inside a text is kept
    assert rec["messages"][0]["content"] == "Caf\u00e9\nmenu\n\n ctx"
    assert rec["meta"]["context"] == "ctx"
    # same content, different raw spelling and source → same content hash, another row id
    _, other = to_canonical(adapt_row("dolly", {**row, "instruction": "Cafe\u0301\nmenu"}),
                            {"dataset": "x", "file": "y", "row": 0})
    assert other["content_hash"] == rec["content_hash"]
    assert other["id"] != rec["id"]


def test_identical_rows_get_distinct_ids_and_one_content_hash() -> None:
    row = {"instruction": "Name a colour.", "output": "Red."}
    recs = [to_canonical(adapt_row("alpaca", row), src)[1] for src in (
        {"dataset": "d", "file": "f.jsonl", "row": 0}, {"dataset": "d", "file": "f.jsonl", "row": 1},
        {"dataset": "d", "file": "g.jsonl", "row": 0})]
    assert len({r["id"] for r in recs}) == 3
    assert len({r["content_hash"] for r in recs}) == 1
    # stable: the same row at the same position always gets the same id
    again = to_canonical(adapt_row("alpaca", dict(row)), dict(recs[1]["source"]))[1]
    assert again["id"] == recs[1]["id"]


def test_rows_of_another_layout_in_the_same_file_are_converted_with_their_own() -> None:
    openai_row = {"messages": [{"role": "user", "content": "Hi"},
                               {"role": "assistant", "content": "Hello"}]}
    adapted = adapt_row("alpaca", openai_row)
    assert [m["role"] for m in adapted.messages] == ["user", "assistant"]
    with pytest.raises(AdapterError, match="missing field 'output'"):
        adapt_row("alpaca", {"instruction": "x"})
