"""Config of the LLM serving layer (the top-level `llm` block)."""

from __future__ import annotations

from typing import Literal

from transforms.config_base import StrictModel


class LLMConfig(StrictModel):
    """Which backend serves chat requests, and how."""

    backend: Literal["local", "vllm", "openai"] = "local"
    model: str = "smollm2-135m-instruct"
