"""Config of the sentence-embedding model (the top-level `embeddings` block)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from transforms.config_base import StrictModel


class EmbeddingConfig(StrictModel):
    """The embedding model shared by semantic dedup, decontam paraphrase check and synthesis."""

    model: str = Field("all-MiniLM-L6-v2", description="package model name, local dir or hub id")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="auto: ONNX Runtime on CPU (exported offline from the local model "
        "and cached), the torch model on CUDA; torch: sentence-transformers everywhere")
    int8: bool = Field(True, description="ONNX: int8 weights when they agree with fp32 within "
                       "int8_min_cosine on calibration sentences (else fp32)")
    int8_min_cosine: float = Field(0.99, gt=0, le=1, description="mean cosine to fp32 that "
                                   "int8 must reach to be used")
    max_seq_length: int | None = Field(None, ge=8, description="tokens per text (longer ones "
                                       "are cut); unset: the model's own (256 for MiniLM)")
    cache_dir: str | None = Field(None, description="where ONNX exports are cached; unset: "
                                  "$REFINERY_CACHE/onnx or ~/.cache/refinery/onnx")
    batch_size: int | None = Field(
        None, ge=1, description="texts per forward pass (sorted by length); unset: 32 on CPU, "
        "256 on CUDA")
    normalize: bool = True
