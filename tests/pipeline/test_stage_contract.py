"""The stage contract, checked for every registered stage (pipeline/stages.py) on the same tiny
input. Stages that call a model get the generic schema backend (tests/pipeline/
_schema_backend.py) through RunContext.backend_factory, so the whole serving layer runs.

For each stage: the constructor is `Stage(config, ctx, *, label=None)`; `expand` returns exactly
the spec's outputs; row outputs match the Arrow schemas; every declared `writes` field appears;
reports are JSON-able, name the stage and merge; dead-letter entries name the stage. Curation
stages: every input row ends in exactly one of kept / rejected (with a reason) / dead letter.
Synthesis stages: every seed is accounted for in the outputs and in the stage's own report.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.manifest import merge_reports
from pipeline.stages import STAGES, StageSpec
from schemas.records import (
    EXAMPLE_SCHEMA,
    PAIR_SCHEMA,
    REJECT_FIELDS,
    example_row,
    examples_to_batch,
)
from schemas.step_pairs import STEP_PAIR_SCHEMA
from tests.llm.helpers import Collect, read_collected
from tests.pipeline._schema_backend import SchemaBackend
from transforms.base import (
    DEADLETTER,
    EXAMPLES,
    MAIN,
    PAIRS,
    REJECTED,
    REPORT,
    STEP_PAIRS,
    TAG_PAIRS,
    RunContext,
)
from transforms.llm.config import LLMConfig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.model  # loads the packaged embedding model where a stage needs it

# Settings a stage needs to do something on the tiny input (everything else: defaults).
SETTINGS: dict[str, dict[str, Any]] = {
    "quality": {"judge": {"enabled": True, "use_logprobs": False}},
    "decontam": {"benchmarks": [{"name": "mini_gsm8k", "preset": "gsm8k",
                                 "path": str(ROOT / "data/benchmarks/mini_gsm8k.jsonl")}]},
    "tag_instruct": {"rounds": 1, "num_candidates": 2, "fallback_min_count": 1},
    "rise": {"methods": ["rule_edit", "self_edit", "sampled"]},
    "length_filter": {"min_chars": 12},
    # every row answered again (without it, answered rows are not this stage's seeds)
    "respond": {"overwrite": True, "n": 2, "judge": {"enabled": True, "use_logprobs": False}},
}


def _msgs(user: str, assistant: str | None) -> list[dict[str, str]]:
    out = [{"role": "user", "content": user}]
    return out + ([{"role": "assistant", "content": assistant}] if assistant is not None else [])


def tiny_rows() -> list[dict[str, Any]]:
    """Ordinary answers, a copy, a refusal, a math problem, a benchmark item, an unanswered
    prompt and a context-grounded question: something for every stage to keep and to drop."""
    bench = json.loads((ROOT / "data/benchmarks/mini_gsm8k.jsonl").read_text().splitlines()[0])
    specs = [
        ("photo", _msgs("Explain how photosynthesis turns light into chemical energy.",
                        "Plants capture light with chlorophyll and use its energy to turn water "
                        "and carbon dioxide into glucose and oxygen."), {}),
        ("photo_copy", _msgs("Explain how photosynthesis turns light into chemical energy.",
                             "Plants capture light with chlorophyll and use its energy to turn "
                             "water and carbon dioxide into glucose and oxygen."), {}),
        ("refusal", _msgs("Write a limerick about a cat.",
                          "As an AI language model, I cannot write poems."), {}),
        ("math", _msgs("Tom has 3 boxes with 4 pens each. He gives away 5 pens. How many pens "
                       "does he have left?",
                       "Step 1: Tom has 3 * 4 = 12 pens.\nStep 2: He keeps 12 - 5 = 7 pens.\n"
                       "#### 7"), {"answer": "7"}),
        ("bench", _msgs(bench["question"], bench["answer"]), {}),
        ("noanswer", _msgs("What is the capital of Peru?", None), {}),
        ("bridge", _msgs("When did the Brooklyn Bridge open?", "It opened in 1883."),
         {"context": "The Brooklyn Bridge spans the East River and opened on May 24, 1883."}),
        ("short", _msgs("Name a prime number.", "Seven."), {}),
    ]
    return [example_row(rid, msgs, {"dataset": "tiny", "file": "tiny.jsonl", "row": i}, **meta)
            for i, (rid, msgs, meta) in enumerate(specs)]


def _context(tmp_path: Path) -> RunContext:
    return RunContext(seed=5, output_dir=str(tmp_path), work_dir=str(tmp_path / "_work"),
                      llm=LLMConfig(cache=False, progress=False, retries=0, batch_size=8),
                      backend_factory=SchemaBackend)


def _run(spec: StageSpec, tmp_path: Path) -> tuple[set[str], dict[str, list[Any]]]:
    """(the keys `expand` returned, everything each output held)."""
    config = spec.config_class(enabled=True, **SETTINGS.get(spec.name, {}))
    stage = spec.load()(config, _context(tmp_path), label=spec.name)
    paths = {}
    p = TestPipeline()
    out = p | beam.Create([examples_to_batch(tiny_rows())], reshuffle=False) | stage
    for key, pcoll in out.items():
        paths[key] = tmp_path / f"{key}.pkl"
        pcoll | f"Collect{key}" >> beam.ParDo(Collect(str(paths[key])))
    p.run().wait_until_finish()
    return set(out), {key: read_collected(path) for key, path in paths.items()}


def _check_schema(batch: pa.RecordBatch, base: pa.Schema, extra: list[tuple] = ()) -> None:
    """Every base column (and meta field) present with its type; `extra` columns too."""
    for field in list(base) + [pa.field(n, t) for n, t in extra]:
        got = batch.schema.field(field.name).type
        if field.name == "meta":
            have = {got.field(i).name: got.field(i).type for i in range(got.num_fields)}
            for i in range(field.type.num_fields):
                want = field.type.field(i)
                assert have.get(want.name) == want.type, f"meta.{want.name}: {have.get(want.name)}"
        else:
            assert got == field.type, f"{field.name}: {got} != {field.type}"


def _meta_fields(batches: list[pa.RecordBatch]) -> set[str]:
    out = set()
    for b in batches:
        meta = b.schema.field("meta").type
        out |= {f"meta.{meta.field(i).name}" for i in range(meta.num_fields)}
    return out


def _accounted(seed_id: str, got: dict[str, list[Any]]) -> bool:
    """The seed's id appears in some output row or dead-letter entry (ids, parents, keys)."""
    texts = [json.dumps(r, default=str) for key in (EXAMPLES, PAIRS, TAG_PAIRS, REJECTED)
             for b in got.get(key, []) for r in b.to_pylist()]
    texts += [json.dumps(e, default=str) for e in got.get(DEADLETTER, [])]
    marks = (f'"{seed_id}"', f'"{seed_id}|', f'"{seed_id}:', f':{seed_id}"')
    return any(m in t for t in texts for m in marks)


# What each synthesis stage's report says about its seeds: (seeds counted, all accounted for).
REPORT_ACCOUNTING = {
    "tag_instruct": lambda r: (r["seeds"], r["conserved"] and all(
        x["inputs"] == x["accepted"] + x["rejected"] + x["deadletter"] for x in r["rounds"])),
    "compound": lambda r: (r["seeds"], r["seeds"] == r["accepted"] + r["rejected"]
                           + r["deadletter"]),
    "respond": lambda r: (r["seeds"], r["conserved"]),
    # rise: each problem ends exactly once, paired, rejected or dead-lettered
    "rise": lambda r: (r["problems_in"], r["conservation_holds"]),
}


@pytest.mark.parametrize("spec", STAGES, ids=[s.name for s in STAGES])
def test_stage_contract(spec: StageSpec, tmp_path: Path) -> None:
    params = list(inspect.signature(spec.load().__init__).parameters.values())[1:]
    assert [(p.name, p.kind) for p in params] == [
        ("config", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("label", inspect.Parameter.KEYWORD_ONLY)], "Stage(config, ctx, *, label=None)"
    assert params[2].default is None

    keys, got = _run(spec, tmp_path)
    assert keys == set(spec.outputs)
    rows_in = tiny_rows()

    # schemas of the row outputs
    for key in (MAIN, EXAMPLES):
        for b in got.get(key, []):
            _check_schema(b, EXAMPLE_SCHEMA)
    for b in got.get(PAIRS, []) + got.get(TAG_PAIRS, []):
        _check_schema(b, PAIR_SCHEMA)
    for b in got.get(STEP_PAIRS, []):
        _check_schema(b, STEP_PAIR_SCHEMA)
    for b in got.get(REJECTED, []):
        base = PAIR_SCHEMA if "chosen" in b.schema.names else EXAMPLE_SCHEMA
        _check_schema(b, base, REJECT_FIELDS)
        assert set(b.column("reject_stage").to_pylist()) == {spec.name}
        assert all(b.column("reject_reason").to_pylist())
    own_dead = []  # entries of a sub-step (e.g. quality.judge) are for inspection: rows kept
    for entry in got.get(DEADLETTER, []):
        json.dumps(entry)
        assert entry["stage"].split(".")[0] == spec.name and entry["error"]
        if entry["stage"] == spec.name:
            own_dead.append(entry)

    # declared meta writes appear on the rows the stage outputs
    written = _meta_fields([b for k in (MAIN, EXAMPLES, PAIRS, TAG_PAIRS, REJECTED)
                           for b in got.get(k, [])])
    assert set(spec.writes) <= written, f"declared writes missing: {set(spec.writes) - written}"

    # reports: JSON-able, named after the stage, mergeable
    reports = got.get(REPORT, [])
    assert len(reports) == 1 and reports[0]["stage"] == spec.name
    merged = merge_reports(json.loads(json.dumps(reports)) + [{"stage": "other"}])
    assert merged[spec.name] == reports[0]

    if spec.kind == "curation":
        ends = Counter(r["id"] for key in (MAIN, REJECTED) for b in got.get(key, [])
                       for r in b.to_pylist())
        ends.update(e["record_id"] for e in own_dead)
        assert ends == Counter(r["id"] for r in rows_in), "each row ends exactly once"
    else:
        seeds, conserved = REPORT_ACCOUNTING[spec.name](reports[0])
        assert seeds == len(rows_in) and conserved
        missing = [r["id"] for r in rows_in if not _accounted(r["id"], got)]
        assert not missing, f"seeds with no trace in any output: {missing}"
