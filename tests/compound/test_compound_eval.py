"""`refinery eval compound` on 20 records (data/compound/compound_qa_sample, written in the
released Compound-QA layout; also the authors' released files when ../shared/evaldata has them)
against a scripted candidate and judge behind an OpenAI-compatible server on 127.0.0.1: the
report's win / tie / loss and omission counts per type equal what the script told the judge,
and a failed judge call is counted, not dropped."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from tests.llm._loopback import LoopbackServer
from transforms.compound import evaluate as ev
from transforms.compound.compound_qa import read_records
from transforms.llm.config import LLMConfig

SAMPLE = Path("data/compound/compound_qa_sample")
RELEASED = Path("../shared/evaldata/compound_qa_understanding")
_QUESTION = re.compile(r"^Compound question: (.+)$", re.MULTILINE)


class EvalServer(LoopbackServer):
    """`candidate-model` answers "ANSWER: <question>"; `judge-model` replies the verdict and the
    omissions the plan gives for the question it grades (an int: that HTTP status; a str:
    that text)."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan, self.lock, self.calls = plan, threading.Lock(), Counter()
        super().__init__()

    def handle(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        prompt = body["messages"][-1]["content"]
        with self.lock:
            self.calls[(body["model"], body.get("temperature"), body.get("max_tokens"))] += 1
        if body["model"] == "candidate-model":
            content = "ANSWER: " + prompt.rsplit("\n\n", 1)[-1]
        else:
            question = _QUESTION.search(prompt).group(1)
            plan = self.plan[question]
            if isinstance(plan, int):
                return self.send_json(h, plan, b'{"error": "scripted failure"}')
            if isinstance(plan, str):  # an answer that is no verdict
                content = plan
                plan = None
            else:
                verdict, omitted = plan
            if plan is not None:
                subs = [{"question": f"part {i}", "answered": i >= omitted} for i in range(3)]
                content = json.dumps({"reasoning": "scripted", "sub_questions": subs,
                                      "verdict": verdict})
        out = {"id": "x", "object": "chat.completion", "model": body["model"],
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content}}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 10}}
        return self.send_json(h, 200, json.dumps(out).encode())


def _records(folder: Path, per_file: int) -> list[dict[str, Any]]:
    out = []
    for path in sorted(folder.glob("*.jsonl")):
        out += list(read_records(path.name, path.read_text(encoding="utf-8")))[:per_file]
    return out


def _plan(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Record i: verdict win/tie/loss in turn, i % 3 omitted sub-questions; the 7th call fails,
    the 8th verdict cannot be read."""
    plan: dict[str, Any] = {}
    for i, rec in enumerate(records):
        plan[rec["com_question"]] = 400 if i == 6 else "It is a tie, I think." if i == 7 \
            else (ev.VERDICTS[i % 3], i % 3)
    return plan


def _cfg(server: EvalServer, tmp_path: Path, per_file: int) -> ev.CompoundEvalConfig:
    def block(model: str) -> LLMConfig:
        return LLMConfig(backend="openai", model=model, base_url=server.base_url, cache=False,
                         retries=0, max_retries=0, batch_size=8, concurrency=4)

    return ev.CompoundEvalConfig(
        candidate=block("candidate-model"), judge=block("judge-model"), limit=per_file,
        candidate_sampling=ev.Decoding(temperature=0.0, max_tokens=300),
        judge_sampling=ev.Decoding(temperature=0.0, max_tokens=200),
        output_dir=str(tmp_path), examples=2)


def _expected(records: list[dict[str, Any]], plan: dict[str, Any]) -> dict[str, Counter]:
    want: dict[str, Counter] = {}
    for rec in records:
        cell = want.setdefault(rec["category"], Counter())
        p = plan[rec["com_question"]]
        if isinstance(p, int | str):
            cell["failed"] += 1
            continue
        verdict, omitted = p
        cell["n"] += 1
        cell[verdict] += 1
        cell["with_omission"] += omitted > 0
        cell["sub_questions"] += 3
        cell["sub_omitted"] += omitted
    return want


@pytest.mark.slow
@pytest.mark.parametrize("folder", [
    SAMPLE, pytest.param(RELEASED, marks=pytest.mark.skipif(
        not RELEASED.is_dir(), reason="runs where ../shared/evaldata/compound_qa_understanding "
        "(the released Compound-QA files) is beside the checkout"))],
    ids=["sample", "released"])
def test_eval_counts_match_the_script(folder: Path, tmp_path: Path) -> None:
    from transforms.compound.evaluate_run import run_eval

    records = _records(folder, 4)
    assert len(records) == 20 and len({r["com_question"] for r in records}) == 20
    plan = _plan(records)
    with EvalServer(plan) as server:
        if folder == SAMPLE:  # through the command line, every setting from --llm
            from pipeline.cli import main

            base = ["backend=openai", f"base_url={server.base_url}", "cache=false",
                    "retries=0", "max_retries=0"]
            llm = [f"candidate.{kv}" for kv in [*base, "model=candidate-model"]] + \
                [f"judge.{kv}" for kv in [*base, "model=judge-model"]]
            args = ["eval", "compound", str(folder), "--limit", "4", "--out",
                    str(tmp_path / "rep.json"), "--llm", "candidate_sampling.max_tokens=300",
                    "--llm", "judge_sampling.max_tokens=200", "--set",
                    "examples=2", "--set", f"output_dir={tmp_path}"]
            for kv in llm:
                args += ["--llm", kv]
            assert main(args) == 0
            report = json.loads((tmp_path / "rep.json").read_text())
        else:
            report = run_eval([str(folder)], _cfg(server, tmp_path, 4), str(tmp_path / "rep.json"))
            assert json.loads((tmp_path / "rep.json").read_text()) == report
    assert report["records"] == 20
    want = _expected(records, plan)
    for cat, cell in want.items():
        got = report["per_type"][cat]
        assert {k: got[k] for k in cell} == dict(cell), cat
        assert got["omission_rate"] == round(cell["with_omission"] / cell["n"], 4)
    assert report["per_dimension"]["Understanding"]["n"] == 18
    assert report["failed"] == {"judge_deadletter": 1, "judge_unparseable": 1}
    total = sum(want.values(), Counter())
    assert report["overall"]["win"] == total["win"] and report["overall"]["loss"] == total["loss"]
    # example rows: omissions first, at most two per cell, with the candidate's answer
    for rows in report["examples"].values():
        assert 1 <= len(rows) <= 2 and rows[0]["candidate"].startswith("ANSWER: ")
        if any(cell_rows["omitted"] for cell_rows in rows):
            assert rows[0]["omitted"]
    # each role was called with its own decoding
    assert set(server.calls) == {("candidate-model", 0.0, 300), ("judge-model", 0.0, 200)}


def test_report_is_order_free_and_merges() -> None:
    def event(i: int) -> dict[str, Any]:
        verdict = ev.VERDICTS[i % 3]
        return {"dimension": "D", "category": "Cause-and-Effect", "verdict": verdict,
                "n_sub": 2, "omitted": ["x"] if i % 2 else [],
                "example": {"id": f"r{i}", "verdict": verdict, "omitted": ["x"] if i % 2 else []}}

    one = ev.empty()
    for i in range(9):
        ev.add(one, event(i), 2)
    parts = [ev.empty(), ev.empty()]
    for i in reversed(range(9)):
        ev.add(parts[i % 2], event(i), 2)
    a, b = ev.finish(one), ev.finish(ev.merge(parts, 2))
    assert a == b
    cell = a["per_cell"]["D/Cause-and-Effect"]
    assert (cell["win"], cell["tie"], cell["loss"], cell["with_omission"]) == (3, 3, 3, 4)
    assert [e["id"] for e in a["examples"]["D/Cause-and-Effect"]] == ["r5", "r1"]


def test_our_synthesized_rows_read_as_records() -> None:
    row = {"id": "abc", "messages": [], "meta": {"category": "Factual-Statement",
                                                 "context": "C.", "com_question": "Q? R?",
                                                 "com_reference": "A."}}
    (rec,) = read_records("sft/part-0.jsonl", json.dumps(row))
    assert rec == {"id": "abc", "context": "C.", "com_question": "Q? R?", "com_reference": "A.",
                   "category": "Factual-Statement", "dimension": "synthesized"}


def test_a_released_file_reads_as_seeds_with_the_preset() -> None:
    """`preset: compound_qa`: every record becomes a seed (context in meta.context, ID kept)."""
    from pipeline.config import IngestConfig, SourceConfig
    from transforms.compound.core import seed_from_row
    from transforms.io.plan import plan_sources
    from transforms.io.read_sources import convert_split

    path = SAMPLE / "Understanding_Cause_and_Effect.jsonl"
    source = SourceConfig(path=str(path), preset="compound_qa")
    rows, ingest = [], IngestConfig()
    for split in plan_sources([source], ingest):
        for kind, value in convert_split(split, source, ingest):
            assert kind in ("example", "report")  # no dead letter, no pairs
            rows += value.to_pylist() if kind == "example" else []
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == len(raw) == 4
    for row, rec in zip(rows, raw, strict=True):
        seed, reason = seed_from_row(row, require_context=True)
        assert reason is None
        assert seed["context"] == rec["context"] and seed["question"] == rec["com_question"]
        assert json.loads(row["meta"]["extra"])["id"] == rec["ID"]


def test_shipped_eval_config_and_flags() -> None:
    from pipeline.compound_eval import load_eval_config
    from pipeline.config import ConfigError

    cfg = load_eval_config("configs/eval/compound.yaml", ["candidate.model=my-ft"], 5,
                           ["examples=1"])
    assert (cfg.candidate.model, cfg.judge.model, cfg.limit, cfg.examples) == \
        ("my-ft", "my-judge", 5, 1)
    with pytest.raises(ConfigError):
        load_eval_config(None, ["examples=2"])  # --llm takes role keys only
    with pytest.raises(ConfigError):
        load_eval_config(None, ["judge.temprature=0"])  # a typo is a validation error


def test_a_run_output_directory_reads_our_synthesized_items(tmp_path: Path) -> None:
    """The stage's own output rows (Parquet under OUT/sft, or OUT/jsonl/sft when emitted)."""
    import pyarrow.parquet as pq

    from tests.compound._role_server import CONTEXT, answer_for, question
    from transforms.compound import core
    from transforms.compound.evaluate_run import load_records

    rows = []
    for i, cat in enumerate(("Cause-and-Effect", "Comparison-and-Selection")):
        q = question(cat)
        item = {"seed": {"id": f"s{i}", "question": "Q", "answer": "A", "context": CONTEXT},
                "partner": None, "category": cat, "compound_question": q["compound_question"],
                "sub_questions": q["sub_questions"], "steps_reached": ["question", "answer"],
                **answer_for(q["sub_questions"])}
        rows.append(core.output_row(item, 4000))
    (tmp_path / "sft").mkdir()
    pq.write_table(pa.Table.from_batches([core.rows_to_batch(rows)]),
                   tmp_path / "sft" / "part-0.parquet")
    recs = load_records([str(tmp_path)])
    assert [(r["category"], r["dimension"], r["context"]) for r in recs] == [
        ("Cause-and-Effect", "synthesized", CONTEXT),
        ("Comparison-and-Selection", "synthesized", CONTEXT)]
    assert [r["com_question"] for r in recs] == [r["meta"]["com_question"] for r in rows]
    assert all(r["com_reference"] for r in recs)
