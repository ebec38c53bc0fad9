"""The columnar ingest path (transforms/io/columnar.py) gives the same batches, dead letters
and report as the per-row reference path (adapters.py + canonical.py), on crafted and
generated JSONL: Unicode needing normalization, empty texts, missing/mistyped fields, extra
fields, system turns, mixed layouts, malformed/blank/oversized lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.ids import digest, row_id
from schemas.text import is_canonical
from tests._hypothesis import examples
from transforms.io._jsonl_block import MAX_BULK_OPENS, Lines, screen
from transforms.io.columnar import _hashes, _row_ids, convert_jsonl
from transforms.io.columnar_layouts import needs_work_pattern
from transforms.io.config import IngestConfig, SourceConfig
from transforms.io.plan import plan_sources
from transforms.io.read_sources import convert_split


def _run(path: Path, layout: str = "auto", **ingest: Any) -> tuple[list, list]:
    cfg = IngestConfig(**{"max_record_bytes": 4096, "batch_rows": 7, **ingest})
    sources = [SourceConfig(path=str(path), layout=layout)]
    outs = []
    for fast in (True, False):
        items = []
        for split in plan_sources(sources, cfg):
            items += list(convert_split(split, sources[0], cfg, fast=fast))
        outs.append(items)
    return outs[0], outs[1]


def assert_same(path: Path, layout: str = "auto", **ingest: Any) -> list:
    fast, ref = _run(path, layout, **ingest)
    assert [k for k, _ in fast if k == "example"] == [k for k, _ in ref if k == "example"]
    fb = [v for k, v in fast if k == "example"]
    rb = [v for k, v in ref if k == "example"]
    for a, b in zip(fb, rb, strict=True):
        assert a.schema.equals(b.schema)
        assert a.to_pylist() == b.to_pylist()
    for kind in ("pair", "deadletter", "report"):
        got = [v.to_pylist() if kind == "pair" else v for k, v in fast if k == kind]
        want = [v.to_pylist() if kind == "pair" else v for k, v in ref if k == kind]
        assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, want)), kind
    # conservation: every non-blank line is an example, a pair or a dead letter
    report = [v for k, v in fast if k == "report"]
    assert sum(r["rows_read"] for r in report) == sum(
        r["examples"] + r["pairs"] + r["deadletter"] for r in report)
    return fast


def _write(tmp_path: Path, rows: list[Any], name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(
        (r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()) + b"\n"
        for r in rows))
    return path


ALPACA = [
    {"instruction": "Add 2 and 2.", "input": "", "output": "4"},
    {"instruction": "Caf\u0065\u0301 au  lait ", "input": "  ", "output": "Yes.\r\nSure\u200b."},
    {"instruction": "Sum", "input": "1 2\n\n\n\n3", "output": "6", "system": "Be brief."},
    {"instruction": "Sys blank", "input": "x", "output": "y", "system": " \u00a0"},
    {"instruction": "Sys zw", "input": "\u3000", "output": "y", "system": "\u200b"},
    {"instruction": "Empty out", "input": "", "output": "   "},
    {"instruction": "", "input": "only input", "output": "z"},
    {"instruction": "Missing output"},
    {"instruction": 5, "output": "typed"},
    {"instruction": "extra", "output": "e", "id": 7, "tags": ["a"], "score": 0.5},
    {"instruction": "nulls", "input": None, "output": "n", "system": None},
    {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
    {"prompt": "p", "chosen": "good", "rejected": "bad"},
    {"instruction": "dolly row", "context": "ctx", "response": "r", "category": "qa"},
    {"instruction": "Ünïcödé ≈ π 🙂", "input": "日本語のテキスト", "output": "Ωμέγα — “quoted”"},
    {"instruction": "tab\there", "input": "", "output": "trailing \nspace"},
]


def test_alpaca_crafted_rows(tmp_path: Path) -> None:
    fast = assert_same(_write(tmp_path, ALPACA * 3))
    assert any(k == "deadletter" for k, _ in fast) and any(k == "pair" for k, _ in fast)


def test_malformed_blank_oversized_invalid_utf8_lines(tmp_path: Path) -> None:
    rows = ALPACA[:4] + [
        b"", b"   ", b'{"instruction": "unclosed"', b'{"instruction": "bad \xff", "output": "x"}',
        json.dumps({"instruction": "big", "output": "x" * 5000}).encode(),
        b'["not", "object"]', b"null", b'{"instruction": "a", "output": "b"}{"x": 1}',
        b'{"instruction": "nan", "output": "b", "v": NaN}', b'  {"instruction": "ws", "output": "b"}\r',
        b'{"instruction": "dup", "output": "b", "output": "c"}', b"\xef\xbb\xbf{\"a\": 1}",
    ] + ALPACA[4:]
    assert_same(_write(tmp_path, rows), layout="alpaca")


def test_deeply_nested_rows_take_the_per_row_path(tmp_path: Path) -> None:
    """pyarrow.json's time grows with the cube of the nesting depth: such rows skip it."""
    deep, many = MAX_BULK_OPENS + 1, MAX_BULK_OPENS // 2
    rows = [json.dumps({"instruction": "q", "output": "a", "extra": "[" * deep + "]" * deep}
                       ).encode(),  # brackets in a string count too: an upper bound suffices
            b'{"instruction": "q", "output": "a", "extra": ' + b"[" * deep + b"]" * deep + b"}",
            json.dumps({"instruction": "q", "output": "a", "extra": [[1]] * many}).encode(),
            *ALPACA[:4]]
    path = _write(tmp_path, rows)
    cand, slow = screen(Lines(path.read_bytes()), 1 << 20)
    assert slow.tolist() == [0, 1] and cand.tolist() == [2, 3, 4, 5, 6]
    assert_same(path, layout="alpaca")


def test_type_conflict_falls_back_per_row(tmp_path: Path) -> None:
    rows = [{"instruction": "a", "input": "", "output": "b"},
            {"instruction": "c", "input": 3, "output": "d"}] * 5
    assert_same(_write(tmp_path, rows))


def test_openai_rows(tmp_path: Path) -> None:
    def conv(*turns: tuple[str, Any], **extra: Any) -> dict:
        return {"messages": [{"role": r, "content": c} for r, c in turns], **extra}
    rows = [
        conv(("system", "Be nice."), ("user", "Hi  there"), ("assistant", "Hello!")),
        conv(("developer", "Dev"), ("user", "q"), ("assistant", "a"), ("tool", "t"),
             ("function", "f"), ("user", "q2"), ("assistant", "a2")),
        conv(("user", "only user")),
        conv(("User", "capital role"), ("assistant", "a")),
        conv(("robot", "unknown"), ("assistant", "a")),
        conv(("user", "  "), ("assistant", "a")),
        conv(("system", ""), ("user", "q"), ("assistant", "a")),
        {"messages": []},
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": None,
                                                        "tool_calls": [{"id": 1}]}]},
        {"messages": [{"role": "user", "content": "q"}, None]},
        conv(("user", "q"), ("assistant", "a"), id="x1", source="web"),
        conv(("user", "e\u0301"), ("assistant", "\ufeffbom")),
        {"instruction": "alpaca in openai file", "output": "o"},
    ]
    assert_same(_write(tmp_path, rows * 2), layout="openai")
    parts = [{"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]},
                           {"role": "assistant", "content": "y"}]}]
    assert_same(_write(tmp_path, parts + rows[:2], "parts.jsonl"), layout="openai")


def test_dolly_and_qa_rows(tmp_path: Path) -> None:
    dolly = [{"instruction": "i", "context": "c  c", "response": "r", "category": "open_qa"},
             {"instruction": "i2", "context": "", "response": "r2", "category": "x"},
             {"instruction": "i3", "context": None, "response": "r3", "category": None},
             {"instruction": "i4", "context": " \u200b", "response": "r4", "category": 3},
             {"instruction": "i5", "response": "r5", "extra_field": {"a": [1, 2]}}]
    assert_same(_write(tmp_path, dolly * 2, "dolly.jsonl"), layout="dolly")
    qa = [{"question": "q", "answer": "a"}, {"question": "q2", "answer": "", "context": "c"},
          {"question": "q3", "answer": "a3", "context": None},
          {"problem": "p", "solution": "s", "answer": "42"}]
    assert_same(_write(tmp_path, qa * 2, "qa.jsonl"), layout="qa")
    math = [{"problem": "p", "solution": "s  ", "answer": "4\u00a02", "level": "L1"},
            {"problem": "p2", "solution": "s2", "answer": None},
            {"problem": "p3", "solution": "s3", "answer": 7}]
    assert_same(_write(tmp_path, math * 2, "math.jsonl"), layout="qa")


def test_splits_limits_and_batches(tmp_path: Path) -> None:
    path = _write(tmp_path, ALPACA * 20)
    assert_same(path, split_bytes=1024, batch_rows=5)
    cfg = IngestConfig(split_bytes=1024)
    source = SourceConfig(path=str(path), limit=13)
    for split in plan_sources([source], cfg):
        a = list(convert_split(split, source, cfg, fast=True))
        b = list(convert_split(split, source, cfg, fast=False))
        assert [v.to_pylist() for k, v in a if k == "example"] == [
            v.to_pylist() for k, v in b if k == "example"]
        assert a[-1] == b[-1]


def test_not_for_this_path(tmp_path: Path) -> None:
    path = _write(tmp_path, ALPACA[:2])
    cfg = IngestConfig()
    mapped = SourceConfig(path=str(path), layout="alpaca", field_map={"output": "input"})
    split = plan_sources([mapped], cfg)[0]
    assert convert_jsonl(split, mapped, cfg, "x", lambda *a: ("deadletter", {})) is None


def test_needs_work_pattern_is_a_superset_of_non_canonical() -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    samples = ["plain", "two  spaces", "é", "e\u0301", "\u1100\u1161", "ok ≈ π", "\u00ad",
               "a\u200bb", " lead", "trail\n", "x\n\n\ny", "\u3000", "中文", "🙂", "\u212b"]
    flagged = pc.match_substring_regex(pa.array(samples), needs_work_pattern()).to_pylist()
    for text, hit in zip(samples, flagged, strict=True):
        assert hit or is_canonical(text), text


TEXT = st.text(st.sampled_from(list("ab \n\t\r.é\u0301\u00a0\u200b日🙂\u3000Å\u212b\x1f")),
               max_size=12)
VALUE = st.one_of(TEXT, st.none(), st.integers(-3, 3))


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(
    st.fixed_dictionaries({"instruction": TEXT, "output": TEXT},
                          optional={"input": VALUE, "system": VALUE, "meta": VALUE}),
    st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "tool", "bot"]),
         "content": TEXT}), max_size=4)}),
), min_size=1, max_size=25), layout=st.sampled_from(["alpaca", "openai"]))
def test_property_fast_equals_per_row(tmp_path: Path, rows: list[dict], layout: str) -> None:
    assert_same(_write(tmp_path, rows, f"prop_{layout}.jsonl"), layout=layout)


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single(tmp_path: Path, n: int) -> None:
    assert_same(_write(tmp_path, ALPACA[:n], f"n{n}.jsonl"), layout="alpaca")


def test_clean_rows_take_the_columnar_path(tmp_path: Path) -> None:
    """Well-formed rows are all converted column-wise (none handed to the per-row path)."""
    rows = [r for r in ALPACA if {"instruction", "output"} <= set(r) <= {"instruction", "input", "output", "system"}
            and all(isinstance(v, str) and v.strip() for k, v in r.items() if k != "input")]
    path = _write(tmp_path, rows)
    cfg = IngestConfig()
    source = SourceConfig(path=str(path))
    split = plan_sources([source], cfg)[0]
    calls: list[int] = []
    items = list(convert_jsonl(split, source, cfg, "in", lambda row, raw, parsed: (
        calls.append(row), ("deadletter", {}))[1]))
    assert not calls
    assert sum(b.num_rows for k, b in items if k == "example") == len(rows)


@pytest.mark.parametrize("mixed", [False, True])
def test_batches_are_compact_copies_not_slices(tmp_path: Path, mixed: bool) -> None:
    """Each batch holds only its own rows' bytes (a slice would pickle the whole split), in
    table order (all rows columnar) and in row order (some rows from the per-row path)."""
    clean = [r for r in ALPACA if set(r) == {"instruction", "input", "output"}
             and all(isinstance(v, str) and v.strip() for k, v in r.items() if k != "input")]
    path = _write(tmp_path, (ALPACA if mixed else clean) * 40)
    cfg = IngestConfig(batch_rows=7)
    source = SourceConfig(path=str(path), layout="alpaca" if mixed else "auto")
    batches = [v for split in plan_sources([source], cfg)
               for k, v in convert_split(split, source, cfg) if k == "example"]
    assert len(batches) > 3 and all(b.num_rows <= 7 for b in batches)
    for b in batches:
        assert b.get_total_buffer_size() <= b.nbytes + 1024, b.num_rows
    rows = [r["source"]["row"] for b in batches for r in b.to_pylist()]
    assert rows == sorted(rows)


@pytest.mark.parametrize("large", [False, True])
def test_hashes_and_row_ids_match_the_per_row_functions(large: bool) -> None:
    texts = ["", "a", "café ≈ 3.14", "x" * 5000, "\x1e\x1f", "last"]
    arr = pa.array(texts, pa.large_string() if large else pa.string()).slice(1)  # an offset
    hashes = _hashes(arr)
    assert hashes.type == pa.string()
    assert hashes.to_pylist() == [digest(t.encode()) for t in texts[1:]]
    rows = np.array([0, 7, 10, 123456, 2**40], np.int64)
    assert _row_ids(hashes, "dir/a b.jsonl", rows).to_pylist() == [
        row_id(h, "dir/a b.jsonl", int(r)) for h, r in zip(hashes.to_pylist(), rows, strict=True)]
    assert _hashes(pa.array([], pa.string())).to_pylist() == []
