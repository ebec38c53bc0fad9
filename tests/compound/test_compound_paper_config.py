"""configs/compound_paper.yaml against scripted writer / judge / answer models behind a real
OpenAI-compatible server on 127.0.0.1: each role's requests carry that role's decoding, seeds
without a context are rejected and counted, Comparison-and-Selection items come from one
context (no partner seed), and the config fails validation when a role has no block."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that
from pydantic import ValidationError

from pipeline.config import RunConfig, load_config, read_config_file
from schemas.records import example_row, examples_to_batch
from tests.compound._outputs import by_kind, tagged
from tests.compound._role_server import CONTEXT, ROLE_MODELS, RoleServer
from transforms.base import RunContext
from transforms.compound.categories import CATEGORIES

PAPER = "configs/compound_paper.yaml"
WITH_CONTEXT = ("ctxa", "ctxb")
WITHOUT = ("barea", "bareb", "barec")


def _role(server: RoleServer, role: str) -> str:
    return (f"stages.compound.roles.{role}={{backend: openai, model: {ROLE_MODELS[role]}, "
            f"base_url: '{server.base_url}', cache: false, retries: 0, max_retries: 0, "
            "batch_size: 8, concurrency: 4}")


def _seeds() -> list[dict]:
    return [example_row(name, [{"role": "user", "content": f"When did the bridge open? case-{name}"},
                               {"role": "assistant", "content": "In 1883."}],
                        {"dataset": "t", "file": "t.jsonl", "row": i},
                        context=CONTEXT if name in WITH_CONTEXT else None)
            for i, name in enumerate(WITH_CONTEXT + WITHOUT)]


def _check(items) -> None:
    got = by_kind(items)
    accepted = Counter((r["meta"]["seed_id"], r["meta"]["category"]) for r in got["examples"])
    assert accepted == Counter({(s, c): 1 for s in WITH_CONTEXT for c in CATEGORIES})
    skipped = Counter(r["meta"]["seed_id"] for r in got["rejected"]
                      if r["reject_reason"] == "seed_without_context")
    assert skipped == Counter({s: len(CATEGORIES) for s in WITHOUT})
    assert len(got["rejected"]) == len(WITHOUT) * len(CATEGORIES) and not got["deadletter"]
    (rep,) = got["report"]
    assert rep["reasons"] == {"seed_without_context": len(WITHOUT) * len(CATEGORIES)}
    for r in got["examples"]:  # one context: no partner, the seed's own context in the turn
        assert r["meta"]["partner_id"] is None and r["meta"]["partner_context"] is None
        assert r["messages"][0]["content"].startswith(CONTEXT)


@pytest.mark.slow
def test_paper_config_roles_decoding_context_and_one_context_comparison(tmp_path) -> None:
    from transforms.compound.stage import CompoundStage

    with RoleServer({}) as server:
        cfg = load_config(PAPER, overrides=[_role(server, r) for r in ROLE_MODELS])
        stage = cfg.stages.compound
        assert stage.require_context and stage.partner_categories == []
        ctx = RunContext(seed=cfg.run.seed, work_dir=str(tmp_path), llm=cfg.llm,
                         roles={"compound": stage.roles})
        with TestPipeline() as p:
            out = p | beam.Create([examples_to_batch(_seeds())]) | CompoundStage(stage, ctx)
            assert_that(tagged(out), _check)
        decoding = {(q["step"], tuple(sorted(q["sampling"].items()))) for q in server.requests}
    # each step's requests carry its role's decoding from the paper config, and only that
    writer = (("max_tokens", 512), ("temperature", 0.7), ("top_p", 0.95))
    judge = (("max_tokens", 512), ("temperature", 0.0), ("top_p", 1.0))
    answer = (("max_tokens", 2048), ("temperature", 0.0), ("top_p", 1.0))
    assert decoding == {("question", writer), ("question_check", judge),
                        ("answer", answer), ("answer_check", judge)}
    # no request was made for a seed without a context, and no writer prompt had a partner
    assert {q["case"] for q in server.requests} == set(WITH_CONTEXT)
    assert not any("Second seed" in q["prompt"] for q in server.requests)


@pytest.mark.parametrize("role", ["writer", "judge", "answer"])
def test_paper_config_fails_validation_without_a_role(role: str) -> None:
    data = read_config_file(Path(PAPER))
    del data["stages"]["compound"]["roles"][role]
    with pytest.raises(ValidationError) as err:
        RunConfig.model_validate(data)
    assert "require_roles" in str(err.value) and role in str(err.value)


def test_paper_config_is_valid_as_shipped() -> None:
    stage = load_config(PAPER).stages.compound
    assert stage.sampling.for_step("question") == (0.7, 0.95, 512)
    assert stage.sampling.for_step("question_check") == (0.0, 1.0, 512)
    assert stage.sampling.for_step("answer") == (0.0, 1.0, 2048)
