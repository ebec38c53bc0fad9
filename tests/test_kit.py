"""The stage kit: prompts, seeds, per-backend LLM configs, model roles, GenerateStep against a
real OpenAI-compatible server (one model name per role), RunStep's failure policy, RejectRows,
merge_combine, and config reuse with `extends`."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.config import ConfigError, load_config
from pipeline.run import make_context
from schemas.ids import derive_seed
from schemas.records import example_row
from tests.llm._openai_server import ChatServer
from tests.llm.helpers import Collect, read_collected
from transforms.base import DEADLETTER, MAIN, REJECTED, RunContext
from transforms.kit import (
    GenerateStep,
    Rejection,
    RejectRows,
    RunStep,
    StepSpec,
    merge_combine,
    rejected_batch,
)
from transforms.llm.api import ChatRequest, SamplingParams
from transforms.llm.config import LLMConfig, LocalLLMConfig, OpenAIConfig, VLLMConfig
from transforms.llm.prompts import load_prompt
from transforms.tag_instruct import templates as tag_templates
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.core import step_seed

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "configs" / "demo.yaml"
KEY = "kit-test-key"
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}},
                 "required": ["answer"]}


# ---------------------------------------------------------------- prompts and seeds

def test_load_prompt_reads_template_schema_and_versions_by_content() -> None:
    p = load_prompt("tag_instruct", "compress")
    assert p.version == f"tag_instruct.compress@{p.template.version}" == tag_templates.version(
        "compress")
    assert p.schema is not None and p.schema["type"] == "object"
    assert p.render(instruction="Sort a list.", num_tags=3) == tag_templates.render(
        "compress", instruction="Sort a list.", num_tags=3)
    copy = p.answer_schema()
    copy["changed"] = True
    assert "changed" not in p.schema  # callers size their own copy
    assert load_prompt("tag_instruct", "respond").schema is None  # free text: no schema file
    shared = load_prompt("quality", "judge_quality", schema="judge")
    assert shared.schema is not None and shared.version.startswith("quality.judge_quality@")
    with pytest.raises(FileNotFoundError, match="no prompt template"):
        load_prompt("tag_instruct", "nope")
    with pytest.raises(FileNotFoundError, match="no answer schema"):
        load_prompt("quality", "judge_quality", schema="nope")


def test_derive_seed_is_stable_31_bit_and_sensitive_to_every_part() -> None:
    a = derive_seed(7, "id-1", 1, "expand")
    assert a == derive_seed(7, "id-1", 1, "expand") == step_seed(7, "id-1", 1, "expand")
    assert 0 <= a < 2 ** 31
    others = {derive_seed(8, "id-1", 1, "expand"), derive_seed(7, "id-2", 1, "expand"),
              derive_seed(7, "id-1", 2, "expand"), derive_seed(7, "id-1", 1, "retag")}
    assert a not in others and len(others) == 4


# ---------------------------------------------------------------- LLM configs and roles

def test_llm_config_is_one_model_per_backend() -> None:
    assert type(LLMConfig()) is LocalLLMConfig
    assert type(LLMConfig(backend="vllm", tensor_parallel_size=2)) is VLLMConfig
    assert isinstance(LLMConfig(backend="openai"), OpenAIConfig)
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        LLMConfig(tensor_parallel_size=2)  # a vLLM field on the local backend
    with pytest.raises(ConfigError, match=r"llm\.local\.tensor_parallel_size: Extra inputs"):
        load_config(DEMO, ["llm.tensor_parallel_size=2"])
    with pytest.raises(ConfigError, match=r"llm\.openai\.num_threads: Extra inputs"):
        load_config(DEMO, ["llm.backend=openai", "llm.num_threads=2"])
    assert load_config(DEMO).llm.backend == "local"  # a block without `backend` is local
    assert type(LLMConfig.model_validate({"backend": "vllm"})) is VLLMConfig
    assert LLMConfig.model_validate({}).num_threads == 1


def test_roles_are_declared_per_stage_and_default_to_the_run_llm() -> None:
    with pytest.raises(ConfigError, match=r"stages\.tag_instruct\.roles: .*unknown role"):
        load_config(DEMO, ["stages.tag_instruct.roles={judge: {model: x}}"])
    cfg = load_config(DEMO, ["stages.tag_instruct.roles={policy: {backend: openai, model: pol}}"])
    ctx = make_context(cfg)
    assert ctx.llm_for("tag_instruct", "policy") == OpenAIConfig(model="pol")
    assert ctx.llm_for("tag_instruct", "teacher") == cfg.llm  # not given: the run's llm
    assert ctx.llm_for("compound", "writer") == cfg.llm
    off = load_config(DEMO, ["stages.tag_instruct.enabled=false",
                             "stages.tag_instruct.roles={policy: {model: pol}}"])
    assert "tag_instruct" not in make_context(off).roles


# ---------------------------------------------------------------- GenerateStep on a real server

def _request(key: str, text: str) -> ChatRequest:
    return ChatRequest(key=key, messages=(("user", text),), json_schema=ANSWER_SCHEMA,
                       sampling=SamplingParams(max_tokens=16, seed=derive_seed(key)),
                       payload={"id": key, "text": text})


def _openai(server: ChatServer, model: str) -> OpenAIConfig:
    return OpenAIConfig(model=model, base_url=server.base_url, api_key_env="KIT_TEST_KEY",
                        cache=False, retries=0, max_retries=0, timeout_s=5.0)


def test_generate_step_uses_the_role_model_and_attributes_dead_letters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIT_TEST_KEY", KEY)
    with ChatServer(api_key=KEY) as server:
        ctx = RunContext(work_dir=str(tmp_path), llm=_openai(server, "run-model"),
                         roles={"demo": {"policy": _openai(server, "policy-model")}})
        reqs = [_request("a", "hello"), _request("b", "[fault:400*all] fails")]
        main_path, dead_path = tmp_path / "main.pkl", tmp_path / "dead.pkl"
        p = TestPipeline()
        pol = (p | "P" >> beam.Create(reqs)
               | "Pol" >> GenerateStep(ctx, stage="demo", step="expand", role="policy"))
        run = (p | "R" >> beam.Create(reqs[:1])
               | "Run" >> GenerateStep(ctx, stage="demo", step="respond"))
        (pol[MAIN], run[MAIN]) | beam.Flatten() | "CM" >> beam.ParDo(Collect(str(main_path)))
        pol[DEADLETTER] | "CD" >> beam.ParDo(Collect(str(dead_path)))
        result = p.run()
        result.wait_until_finish()
        models = sorted(b["model"] for b in server.bodies)
    results = read_collected(main_path)
    assert sorted((r.key, r.model) for r in results) == [("a", "openai:policy-model"),
                                                          ("a", "openai:run-model")]
    assert models == ["policy-model", "policy-model", "run-model"]
    (dead,) = read_collected(dead_path)
    assert (dead["stage"], dead["step"], dead["record_id"]) == ("demo", "expand", "b")
    json.dumps(dead)
    names = {c.key.metric.name for c in result.metrics().query(
        MetricsFilter().with_namespace("refinery.demo.expand"))["counters"]}
    assert {"requests", "failures"} <= names


# ---------------------------------------------------------------- RunStep, RejectRows, combine

class _EchoBackend:
    """Fault injection only: answers each request with its own text as JSON."""

    model_id = "echo"

    def __init__(self, config: LLMConfig):
        self.config = config

    def generate(self, requests):
        from transforms.llm.backend_base import Generation

        return [Generation(texts=[json.dumps({"answer": r.messages[-1][1]})]) for r in requests]

    def close(self) -> None:
        pass


def _parse(result) -> dict | Rejection:
    answer = result.parsed[0]["answer"]
    if answer.startswith("RAISE"):
        raise ValueError("cannot read this answer")
    if answer.startswith("SHORT"):
        return Rejection(_row(result.payload), "too_short", {"chars": len(answer)})
    return {**result.payload, "answer": answer}


def _row(item: dict) -> dict:
    return example_row(item["id"], [{"role": "user", "content": item["text"]}])


def test_run_step_routes_parse_failures_and_rejections(tmp_path: Path) -> None:
    spec = StepSpec("answer", load_prompt("tag_instruct", "respond"),
                    build=lambda it: _request(it["id"], it["text"]), parse=_parse,
                    row_of=lambda item: _row(item))
    ctx = RunContext(work_dir=str(tmp_path), llm=LLMConfig(cache=False, progress=False),
                     backend_factory=_EchoBackend)
    items = [{"id": "ok", "text": "fine"}, {"id": "bad", "text": "RAISE me"},
             {"id": "short", "text": "SHORT"}]

    def check_rejected(batches: list[pa.RecordBatch]) -> None:
        rows = sorted((r for b in batches for r in b.to_pylist()), key=lambda r: r["id"])
        assert [(r["id"], r["reject_stage"], r["reject_reason"]) for r in rows] == [
            ("bad", "demo", "answer_unparseable"), ("short", "demo", "too_short")]
        detail = json.loads(rows[0]["reject_detail"])
        assert detail["step"] == "answer" and "cannot read" in detail["error"]
        assert json.loads(detail["raw"]) == {"answer": "RAISE me"}

    with TestPipeline() as p:
        out = p | beam.Create(items) | RunStep(spec, ctx, stage="demo")
        assert_that(out[MAIN] | beam.Map(lambda it: it["answer"]), equal_to(["fine"]),
                    label="main")
        assert_that(out[DEADLETTER], equal_to([]), label="dead")
        rej = out[REJECTED] | RejectRows("demo", size=1)
        assert_that(rej, check_rejected, label="rejected")


def test_reject_rows_batches_sorted_by_reason_then_id() -> None:
    rejections = [Rejection(example_row(i, [{"role": "user", "content": i}]), r, {"n": n})
                  for n, (i, r) in enumerate([("b", "y"), ("c", "x"), ("a", "y"), ("d", "x")])]
    batch = rejected_batch(rejections, "demo")
    assert list(zip(batch.column("reject_reason").to_pylist(), batch.column("id").to_pylist(),
                    strict=True)) == [("x", "c"), ("x", "d"), ("y", "a"), ("y", "b")]
    assert json.loads(batch.column("reject_detail")[0].as_py()) == {"n": 1}

    def check(batches: list[pa.RecordBatch]) -> None:
        assert all(b.num_rows <= 3 for b in batches)
        for b in batches:  # each batch sorted
            keys = list(zip(b.column("reject_reason").to_pylist(), b.column("id").to_pylist(),
                            strict=True))
            assert keys == sorted(keys)
        assert sorted(r for b in batches for r in b.column("id").to_pylist()) == list("abcd")

    with TestPipeline() as p:
        assert_that(p | beam.Create(rejections) | RejectRows("demo", size=3), check)


def test_merge_combine_builds_a_combinefn_from_pure_functions() -> None:
    fn = merge_combine(lambda: {"n": 0}, lambda acc, x: {"n": acc["n"] + x},
                       lambda accs: {"n": sum(a["n"] for a in accs)},
                       lambda acc: {"stage": "demo", "total": acc["n"]})
    with TestPipeline() as p:
        assert_that(p | beam.Create(range(10)) | beam.CombineGlobally(fn),
                    equal_to([{"stage": "demo", "total": 45}]))


# ---------------------------------------------------------------- config reuse

def test_extends_deep_merges_relative_to_the_file_and_rejects_cycles(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("sources: [{path: a.jsonl}]\nrun: {name: base, seed: 3}\n"
                    "llm: {backend: local, num_threads: 2}\n"
                    "stages: {tag_instruct: {enabled: true, rounds: 3}}\n")
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("extends: ../base.yaml\nrun: {name: child}\n"
                     "llm: {backend: openai, model: m}\nstages: {tag_instruct: {rounds: 1}}\n")
    cfg = load_config(child)
    assert (cfg.run.name, cfg.run.seed) == ("child", 3)  # merged key by key
    assert cfg.stages.tag_instruct.enabled and cfg.stages.tag_instruct.rounds == 1
    assert cfg.llm == OpenAIConfig(model="m")  # another backend replaces the block
    (tmp_path / "x.yaml").write_text("extends: y.yaml\n")
    (tmp_path / "y.yaml").write_text("extends: x.yaml\n")
    with pytest.raises(ConfigError, match="extends: cycle"):
        load_config(tmp_path / "x.yaml")
    (tmp_path / "z.yaml").write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match="not found.*missing.yaml"):
        load_config(tmp_path / "z.yaml")


def test_gpu_config_is_the_release_config_with_gpu_models() -> None:
    release, gpu = load_config(ROOT / "configs" / "release.yaml"), load_config(
        ROOT / "configs" / "gpu.yaml")
    assert gpu.sources == release.sources
    assert gpu.stages.decontam == release.stages.decontam
    assert gpu.llm.backend == "vllm" and gpu.embeddings.device == "cuda"
    assert TagInstructConfig.model_validate(gpu.stages.tag_instruct.model_dump()).rounds == 3


def test_the_run_config_and_registry_load_without_beam() -> None:
    """Every registered stage's config (and io's) imports without Beam: `refinery validate`
    and the config reference stay fast, and a stage's config lives apart from its transform."""
    import subprocess
    import sys

    code = ("import sys, pipeline.config, pipeline.stages as s; "
            "[spec.config_class for spec in s.STAGES]; print('apache_beam' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"


def test_graph_warns_when_a_read_field_has_no_earlier_writer(caplog, monkeypatch) -> None:
    import dataclasses

    from pipeline import graph, stages
    from pipeline.graph import enabled_stages

    # dedup only prefers the quality score (keeper: best score, else smallest id): no warning
    with caplog.at_level("INFO", logger="pipeline.graph"):
        names = [s.name for s in enabled_stages(load_config(DEMO, ["stages.quality.enabled=false"]))]
    assert "quality" not in names and "dedup" in names
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert "stage dedup uses meta.quality_score when present" in caplog.text
    caplog.clear()
    # a stage that needs a field nobody writes is warned about
    needy = [dataclasses.replace(s, reads=s.prefers, prefers=()) for s in stages.STAGES]
    monkeypatch.setattr(graph, "STAGES", tuple(needy))
    with caplog.at_level("WARNING", logger="pipeline.graph"):
        enabled_stages(load_config(DEMO, ["stages.quality.enabled=false"]))
    assert "stage dedup reads meta.quality_score, which no earlier enabled stage writes" \
        in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="pipeline.graph"):
        enabled_stages(load_config(DEMO))
    assert "reads" not in caplog.text
