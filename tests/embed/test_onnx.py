"""The ONNX Runtime embedding path: exported offline from the packaged model, cached, int8 only
where it agrees with fp32, batches sorted by length, and vectors that agree with the fp32 torch
model (sentence-transformers) on the same texts."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from transforms.embed.config import EmbeddingConfig
from transforms.embed.model import Embedder, pick_backend, resolve_model_path

TEXTS = [
    "How many apples does Sam have left after giving four of his ten apples away?",
    "Write a short poem about the sea at night.",
    "Explain recursion to a beginner programmer, with one small example in Python and a note "
    "on why every recursive function needs a base case that stops it.",
    "hi",
    "List three uses of a paper clip that are not holding paper together.",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("onnx-cache"))


@functools.cache
def _torch_vectors() -> np.ndarray:
    return Embedder(EmbeddingConfig(backend="torch", device="cpu")).encode(TEXTS)


def test_onnx_int8_agrees_with_fp32_torch(cache: str) -> None:
    emb = Embedder(EmbeddingConfig(cache_dir=cache, device="cpu"))
    got = emb.encode(TEXTS)
    assert emb.backend == "onnx-int8" and got.shape == (len(TEXTS), 384)
    cos = (got * _torch_vectors()).sum(axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.97, cos
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_export_is_cached_and_fp32_matches_torch(cache: str) -> None:
    Embedder(EmbeddingConfig(cache_dir=cache, device="cpu")).encode(TEXTS[:1])
    exports = [p for p in Path(cache).iterdir() if not p.name.startswith(".")]
    assert len(exports) == 1 and (exports[0] / "meta.json").exists()
    stamp = (exports[0] / "model.onnx").stat().st_mtime_ns
    # int8 is refused when it cannot reach the required agreement: fp32 ONNX then
    fp32 = Embedder(EmbeddingConfig(cache_dir=cache, device="cpu", int8_min_cosine=1.0))
    got = fp32.encode(TEXTS)
    assert fp32.backend == "onnx-fp32"
    assert (exports[0] / "model.onnx").stat().st_mtime_ns == stamp  # not exported again
    assert np.allclose(got, _torch_vectors(), atol=1e-4)


def test_order_and_batching_do_not_change_vectors(cache: str) -> None:
    emb = Embedder(EmbeddingConfig(cache_dir=cache, device="cpu", batch_size=2))
    one = emb.encode(TEXTS)
    rev = emb.encode(TEXTS[::-1])[::-1]
    assert np.allclose(one, rev, atol=1e-5)
    assert emb.encode([]).shape == (0, 384)


def test_max_seq_length_cuts_long_texts(cache: str) -> None:
    long = TEXTS[2]
    cut = Embedder(EmbeddingConfig(cache_dir=cache, device="cpu", max_seq_length=8))
    full = Embedder(EmbeddingConfig(cache_dir=cache, device="cpu"))
    prefix = " ".join(long.split()[:4])  # 4 words: within 8 tokens with [CLS]/[SEP]
    # one text per call: int8 activations are scaled per batch, so neighbours matter a little
    assert float(cut.encode([long])[0] @ full.encode([long])[0]) < 0.95  # the cut changed it
    assert np.allclose(cut.encode([prefix]), full.encode([prefix]), atol=1e-6)  # untouched


def test_backend_choice() -> None:
    assert pick_backend(EmbeddingConfig(), "cpu") == "onnx"
    assert pick_backend(EmbeddingConfig(), "cuda") == "torch"
    assert pick_backend(EmbeddingConfig(backend="torch"), "cpu") == "torch"
    with pytest.raises(ValueError, match="CPU only"):
        pick_backend(EmbeddingConfig(backend="onnx"), "cuda")
    assert Path(resolve_model_path("all-MiniLM-L6-v2")).is_dir()
