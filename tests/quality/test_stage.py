"""QualityStage on Beam (TestPipeline): exact drops with reasons, conservation, metrics,
dead letter on a faulty batch, report, and diverse top-K selection with the real embedder."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.records import example_row, examples_to_batch
from transforms.base import DEADLETTER, MAIN, REJECTED, REPORT, RunContext
from transforms.quality.config import FilterRule, QualityConfig
from transforms.quality.filters import rule_reason
from transforms.quality.reference import record_signals
from transforms.quality.stage import QualityStage

CRAFTED = [
    ("Name a primary colour.", "Red is a primary colour.", None),
    ("Say hi.", "", "empty_response"),
    ("What is 2+2?", "N/A", "placeholder_response"),
    ("Write malware.", "I'm sorry, but I cannot help with that.", "refusal"),
    ("Repeat: the sky is blue.", "The sky is blue.", None),
    ("Copy me exactly.", "copy me exactly.", "prompt_equals_response"),
    ("Give the steps.", "First, preheat the oven and", "truncated"),
    ("List fruits.", "apple\n" * 120, "repeated_lines"),
    ("Tell a story.", "Once upon a time a fox found a grape vine in the sun.", None),
]


def sample_rows() -> list[dict]:
    """data/alpaca.jsonl (well-formed rows, Alpaca → messages) plus crafted rows."""
    rows = []
    path = Path(__file__).resolve().parents[2] / "data" / "alpaca.jsonl"
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(rec, dict) or not all(isinstance(rec.get(k), str)
                                                for k in ("instruction", "input", "output")):
            continue
        prompt = rec["instruction"] + (f"\n\n{rec['input']}" if rec["input"] else "")
        rows.append(example_row(f"alpaca-{i:03d}", [{"role": "user", "content": prompt},
                                                    {"role": "assistant", "content": rec["output"]}]))
    for i, (p, r, _) in enumerate(CRAFTED):
        rows.append(example_row(f"crafted-{i:02d}", [{"role": "user", "content": p},
                                                     {"role": "assistant", "content": r}]))
    return rows


def batches(rows: list[dict], size: int = 7) -> list[pa.RecordBatch]:
    return [examples_to_batch(rows[i:i + size]) for i in range(0, len(rows), size)]


def expected_reason(rules: list[FilterRule], sig: dict) -> str | None:
    """The first matching rule, evaluated on the per-record reference signals."""
    ops = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__,
           "==": float.__eq__, "!=": float.__ne__}
    for rule in rules:
        if sig["q_response_words"] < rule.min_response_words:
            continue
        value = rule.by_kind.get(sig["q_kind"], rule.value)
        if value is None:  # the rule is off for this kind of response
            continue
        if ops[rule.op](float(sig[rule.signal]), float(value)):
            return rule_reason(rule)
    return None


def run_stage(config: QualityConfig, data: list[pa.RecordBatch], ctx: RunContext | None = None,
              check=None):
    p = test_pipeline.TestPipeline()
    out = p | beam.Create(data, reshuffle=False) | QualityStage(config, ctx or RunContext())
    if check:
        check(out)
    result = p.run()
    result.wait_until_finish()
    return result


def counter(result, name: str) -> int:
    found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
    return sum(c.committed for c in found)


def ids_of(pc: beam.PCollection) -> beam.PCollection:
    return pc | beam.FlatMap(lambda b: b.column("id").to_pylist())


def reasons_of(pc: beam.PCollection) -> beam.PCollection:
    return pc | beam.FlatMap(lambda b: list(zip(b.column("id").to_pylist(),
                                               b.column("reject_reason").to_pylist(), strict=False)))


def test_default_filters_drop_exactly_the_right_rows() -> None:
    rows = sample_rows()
    config = QualityConfig(enabled=True)
    want = {r["id"]: expected_reason(config.filters, record_signals(r["messages"])) for r in rows}
    # the crafted rows were written for these reasons
    for i, (_, _, reason) in enumerate(CRAFTED):
        assert want[f"crafted-{i:02d}"] == reason
    kept = sorted(i for i, why in want.items() if why is None)
    dropped = sorted((i, why) for i, why in want.items() if why is not None)

    def check(out):
        assert_that(ids_of(out[MAIN]), equal_to(kept), label="kept")
        assert_that(reasons_of(out[REJECTED]), equal_to(dropped), label="rejected")
        assert_that(out[DEADLETTER], equal_to([]), label="dead")
        assert_that(out[REPORT] | beam.Map(lambda r: (r["stage"], r["rows_kept"], r["drops"])),
                    equal_to([("quality", len(kept), drops)]), label="report")

    source = {r["id"]: (r.get("source") or {}).get("dataset") or "unknown" for r in rows}
    drops: dict = {}
    for i, why in dropped:
        drops.setdefault(why, {}).setdefault(source[i], 0)
        drops[why][source[i]] += 1
    drops = {r: dict(sorted(per.items())) for r, per in sorted(drops.items())}
    result = run_stage(config, batches(rows), check=check)
    assert counter(result, "rows_in") == len(rows)  # conservation: in = kept + rejected
    assert counter(result, "rows_out") == len(kept)
    assert len(kept) + len(dropped) == len(rows)
    for reason in {why for _, why in dropped}:
        assert counter(result, f"dropped_{reason}") == sum(1 for _, w in dropped if w == reason)


def test_custom_filter_config_and_scores_in_meta() -> None:
    rows = sample_rows()
    rules = [FilterRule(signal="q_response_words", op="<", value=6),
             FilterRule(signal="q_upper_frac", op=">", value=0.08, reason="shouty")]
    config = QualityConfig(enabled=True, filters=rules)
    want = {r["id"]: expected_reason(rules, record_signals(r["messages"])) for r in rows}
    assert "q_response_words_lt_6" in want.values() and "shouty" in want.values()
    kept = sorted(i for i, why in want.items() if why is None)
    dropped = sorted((i, why) for i, why in want.items() if why is not None)

    def meta_ok(b: pa.RecordBatch) -> list[bool]:
        meta = b.column("meta")
        score = meta.field("quality_score").to_pylist()
        return [s is not None and 0.0 <= s <= 1.0 for s in score] + \
            [meta.field("q_response_words").null_count == 0]

    def check(out):
        assert_that(ids_of(out[MAIN]), equal_to(kept), label="kept")
        assert_that(reasons_of(out[REJECTED]), equal_to(dropped), label="rejected")
        assert_that(out[MAIN] | beam.FlatMap(meta_ok) | beam.Filter(lambda ok: not ok),
                    equal_to([]), label="scores")

    run_stage(config, batches(rows, 5), check=check)


def test_faulty_batch_goes_to_the_dead_letter_and_others_pass() -> None:
    good = examples_to_batch([example_row("g1", [{"role": "user", "content": "Hi?"},
                                                 {"role": "assistant", "content": "Hello there."}])])
    bad = pa.RecordBatch.from_pydict({"id": ["b1", "b2"], "messages": ["not", "a list"],
                                      "meta": [{"x": 1}, {"x": 2}]})

    def check(out):
        assert_that(ids_of(out[MAIN]), equal_to(["g1"]), label="kept")
        assert_that(out[DEADLETTER] | beam.Map(lambda d: (d["record_id"], d["stage"],
                                                          bool(d["error"]), "a list" in d["raw"]
                                                          or "not" in d["raw"])),
                    equal_to([("b1", "quality", True, True), ("b2", "quality", True, True)]),
                    label="dead")

    result = run_stage(QualityConfig(enabled=True), [good, bad], check=check)
    assert counter(result, "deadletter") == 2


@pytest.mark.slow
def test_selection_keeps_diverse_top_k_and_rejects_the_rest() -> None:
    texts = [
        ("How do I bake sourdough bread at home?", "Mix starter, flour, water and salt; "
         "fold, proof overnight, then bake hot in a covered pot."),
        ("How can I bake sourdough bread at home?", "Mix starter, flour and water."),
        ("What is the capital of Japan?", "The capital of Japan is Tokyo."),
        ("Explain how vaccines train the immune system.", "They show the immune system a "
         "harmless piece of a pathogen so it learns to recognise it."),
        ("Name a prime number above 10.", "Eleven is a prime number."),
    ]
    rows = [example_row(f"s{i}", [{"role": "user", "content": p},
                                  {"role": "assistant", "content": r}])
            for i, (p, r) in enumerate(texts)]
    config = QualityConfig(enabled=True, filters=[],
                           selection={"enabled": True, "top_k": 3, "max_similarity": 0.9})
    from pipeline.config import EmbeddingConfig
    ctx = RunContext(embeddings=EmbeddingConfig(device="cpu"))

    def check(out):
        kept = ids_of(out[MAIN])
        assert_that(kept | "CountKept" >> beam.combiners.Count.Globally(), equal_to([3]),
                    label="k")
        rejected = reasons_of(out[REJECTED])
        assert_that(rejected | beam.Map(lambda t: t[1]) | beam.Distinct(),
                    equal_to(["not_selected"]), label="reason")
        # the near-duplicate sourdough question never survives next to the other one
        both = (kept | beam.Filter(lambda i: i in ("s0", "s1"))
                | "CountSourdough" >> beam.combiners.Count.Globally())
        assert_that(both, equal_to([1]), label="diverse")

    result = run_stage(config, batches(rows, 2), ctx, check=check)
    assert counter(result, "dropped_not_selected") == 2


def test_repetition_thresholds_per_kind_of_response() -> None:
    """A worked math solution repeats phrases: the prose threshold would drop it, the math
    one keeps it; the drop's detail names the kind and the threshold used."""
    from schemas.records import example_row, examples_to_batch
    from transforms.quality.core import heuristic_batch

    answer = ("Each crate holds 12 apples, so 4 crates hold 4*12 = <<4*12=48>>48 apples. "
              "Then multiply that number by 2 to get the apples in the red barn: 48*2 = "
              "<<48*2=96>>96 apples. Then multiply that number by 2 to get the apples in the "
              "green barn: 96*2 = <<96*2=192>>192 apples. Then multiply that number by 2 to get "
              "the apples in the blue barn: 192*2 = <<192*2=384>>384 apples. Together the "
              "three barns hold 96 + 192 + 384 = <<96+192+384=672>>672 apples. The farmer "
              "sells half of them, which is 672/2 = <<672/2=336>>336 apples, and keeps the "
              "rest for the winter months.\n#### 336")
    batch = examples_to_batch([example_row("m", [{"role": "user", "content": "How many?"},
                                                 {"role": "assistant", "content": answer}])])
    config = QualityConfig(enabled=True)
    res = heuristic_batch(batch, config)
    assert res.kept is not None and res.kept.num_rows == 1
    assert res.kept.column("meta").field("q_kind").to_pylist() == ["math"]
    prose = [r.model_copy(update={"by_kind": {}}) for r in config.filters]
    res = heuristic_batch(batch, config.model_copy(update={"filters": prose}))
    rej = res.rejected.to_pylist()[0]
    assert rej["reject_reason"].startswith(("dup", "top"))
    detail = json.loads(rej["reject_detail"])
    assert "kind" not in detail and detail["value"] > detail["threshold"]
    off = [r.model_copy(update={"by_kind": {"math": r.value * 0.5}})
           if r.signal.startswith("q_dup") else r for r in config.filters]
    rej = heuristic_batch(batch, config.model_copy(update={"filters": off})).rejected.to_pylist()
    assert json.loads(rej[0]["reject_detail"])["kind"] == "math"
