"""The model-stage contract (contract.py): every registered stage that calls a model has a
case, and each case's stage, run through the real pipeline against one scripted server,
sends a failed call to the dead letter (stage and step named), an unreadable answer to
rejected/ as `<step>_unparseable` with the raw answer, and a rule's rejection to rejected/
with its reason; the good row ends in an output."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.run import run_config
from pipeline.stages import STAGES
from tests.model_contract.contract import MODES, ModelStageCase, marker, role_model
from tests.model_contract.server import ContractServer
from transforms.llm.config import ModelRoles

HERE = Path(__file__).resolve().parent


def _load_cases() -> list[ModelStageCase]:
    cases: list[ModelStageCase] = []
    for path in sorted(HERE.glob("cases_*.py")):
        cases += importlib.import_module(f"tests.model_contract.{path.stem}").CASES
    return cases


CASES = _load_cases()
MODEL_STAGES = {s.name: list(s.config_class.ROLES) for s in STAGES
                if issubclass(s.config_class, ModelRoles) and s.config_class.ROLES}


def test_every_stage_that_calls_a_model_has_a_case() -> None:
    """A stage calls a model when its config declares model roles; each needs a case."""
    assert {"quality", "respond", "tag_instruct"} <= set(MODEL_STAGES)
    missing = sorted(set(MODEL_STAGES) - {c.stage for c in CASES})
    assert not missing, f"model stages without a contract case: {missing}"


def _run(case: ModelStageCase, server: ContractServer, tmp_path: Path) -> tuple[Path, dict]:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(case.row(f"Case {i} {marker(m)}")) + "\n"
                            for i, m in enumerate(MODES)))
    block = {"backend": "openai", "base_url": server.base_url, "max_retries": 0,
             "retries": 0, "cache": False, "timeout_s": 30}
    roles = {r: {**block, "model": role_model(case.stage, r)} for r in MODEL_STAGES[case.stage]}
    settings = {**case.settings, "roles": roles}
    spec = next(s for s in STAGES if s.name == case.stage)
    if "max_error_rate" in spec.config_class.model_fields:  # failures are what we ask for
        settings.setdefault("max_error_rate", 1.0)
    sets = [f"stages.{case.stage}={json.dumps(settings)}",
            f"llm={json.dumps({**block, 'model': 'run-model'})}", "emit.num_shards=1",
            *case.sets]
    cfg = load_config(None, sets, inputs=[str(rows)], out=str(tmp_path / "out"))
    return tmp_path / "out", run_config(cfg).manifest


def _rejected(out: Path) -> list[dict]:
    return [r for p in sorted((out / "rejected").glob("*.parquet"))
            for r in pq.read_table(p).to_pylist()]


def _marked(row: dict, mode: str) -> bool:
    return marker(mode) in json.dumps(row, ensure_ascii=False, default=str)


def _text(answer: object) -> str:
    return answer if isinstance(answer, str) else json.dumps(answer)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_failures_land_where_the_policy_says(case: ModelStageCase, tmp_path: Path) -> None:
    with ContractServer([case], MODEL_STAGES) as server:  # the model names route to this case
        out, manifest = _run(case, server, tmp_path)
    assert not [m for m, _ in server.requests if m == "run-model"]  # every call: its role
    dead_file = out / "deadletter" / "deadletter.jsonl"
    dead = [json.loads(x) for x in dead_file.read_text().splitlines()] if dead_file.exists() \
        else []
    rejected = _rejected(out)
    stage = case.deadletter_stage or case.stage
    for mode in ("http_500", "drop"):  # a failed call: the dead letter, stage and step named
        mine = [d for d in dead if _marked(d, mode)]
        assert mine and all((d["stage"], d.get("step")) == (stage, case.step) for d in mine), \
            (mode, mine)
        assert not [r for r in rejected if _marked(r, mode)]
    unread = [r for r in rejected if _marked(r, "unparseable")]
    assert [r["reject_reason"] for r in unread] == [case.unparseable_reason]
    detail = json.loads(unread[0]["reject_detail"])
    assert detail["step"] == case.step and detail["raw"] == _text(case.unparseable)
    assert unread[0]["reject_stage"] == (case.reject_stage or case.stage)
    ruled = [r for r in rejected if _marked(r, "rule")]
    assert [r["reject_reason"] for r in ruled] == [case.rule_reason]
    assert not [r for r in rejected if _marked(r, "good")]
    assert not [d for d in dead if _marked(d, "good")]
    assert manifest["conservation"]["holds"]
