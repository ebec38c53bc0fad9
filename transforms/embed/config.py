"""Config of the sentence-embedding model (the top-level `embeddings` block)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from transforms.config_base import StrictModel


class EmbeddingConfig(StrictModel):
    """The embedding model shared by semantic dedup, decontam paraphrase check and synthesis."""

    model: str = Field("all-MiniLM-L6-v2", description="package model name, local dir or hub id")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int | None = Field(
        None, ge=1, description="texts per forward pass; unset: 32 on CPU (less padding), "
        "256 on CUDA")
    normalize: bool = True
