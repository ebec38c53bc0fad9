"""Shared test set-up: offline models, GPU marker handling, sample paths."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A fresh `datasets` cache per session: pytest reuses numbered tmp dirs, and a cache keyed on
# such a path could serve a dataset built by an earlier session.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="refinery-hf-datasets-")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
EVALDATA = ROOT.parent / "shared" / "evaldata"


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _has_cuda():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; runs on GPU machines (`-m gpu`)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def evaldata_dir() -> Path:
    if not EVALDATA.exists():
        pytest.skip("../shared/evaldata is not beside this checkout")
    return EVALDATA


HOSTILE_INSTRUCTION = "Summarize this page: <script>alert(1)</script> & <b>bold</b> claims."


@dataclass(frozen=True)
class DemoRun:
    out: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """configs/demo.yaml (every stage, real local models) run once per session as `make run`
    runs it: the CLI in a subprocess whose output is a pipe, not a terminal. One extra source
    carries HTML in an instruction, twice (dedup removes the copy, so the report shows it)."""
    import json
    import subprocess
    import sys

    import yaml

    tmp = tmp_path_factory.mktemp("demo")
    hostile = tmp / "hostile.jsonl"
    row = {"instruction": HOSTILE_INSTRUCTION, "input": "",
           "output": "The page makes two claims, both about formatting."}
    hostile.write_text((json.dumps(row) + "\n") * 2)
    cfg = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    cfg["sources"].append({"path": str(hostile), "name": "hostile"})
    config = tmp / "demo.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "REFINERY_PROGRESS_S")}
    # cwd=ROOT: the config names its inputs relative to the repo root
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config), "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    return DemoRun(out, res.stdout, res.stderr)
