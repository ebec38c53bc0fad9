"""Shared test set-up: offline models, GPU marker handling, sample paths."""

from __future__ import annotations

import os
import tempfile
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
