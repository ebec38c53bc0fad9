"""Config of the LLM serving layer (the top-level `llm` block)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from transforms.config_base import StrictModel


class LLMConfig(StrictModel):
    """Which backend serves chat requests, and how."""

    backend: Literal["local", "vllm", "openai"] = Field(
        "local", description="local: transformers on CPU (embedded default); vllm: offline engine "
        "on a GPU; openai: any OpenAI-compatible /v1/chat/completions endpoint")
    model: str = Field(
        "smollm2-135m-instruct",
        description="packaged model name (smollm2-135m-instruct), a local directory or a hub id; "
        "for openai the model name sent to the endpoint")

    # batching and Beam
    batch_size: int = Field(32, ge=1, description="requests per model call (RunInference max batch)")
    min_batch_size: int | None = Field(
        None, ge=1, description="RunInference min batch size; default: batch_size (fixed batches)")
    share_model_across_processes: bool = Field(
        False, description="one model per machine shared by all worker processes (vllm on one GPU) "
        "instead of one per worker process")
    progress: bool = Field(True, description="show a tqdm progress bar (local backend)")

    # structured output
    retries: int = Field(
        2, ge=0, description="re-generations of an answer that fails its JSON Schema before it goes "
        "to the dead letter")
    retry_temperature: float = Field(
        0.7, ge=0, description="temperature used for schema retries of greedy (temperature 0) "
        "requests, so a retry can produce a different answer")

    # response cache
    cache: bool = Field(True, description="reuse earlier answers found in cache_dir")
    cache_dir: str | None = Field(
        None, description="where answers are persisted (local path, gs://, s3://); default: "
        "<work_dir>/llm_cache when the stage passes work_dir, else ~/.cache/refinery/llm_cache")

    # local backend
    model_cache_dir: str = Field(
        "~/.cache/refinery/models",
        description="where a GGUF model converted for transformers is saved and reused")
    gguf_file: str | None = Field(
        None, description="GGUF file inside a model directory; set automatically for packaged models")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="local backend device")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="local weights dtype; auto: float32 on CPU, bfloat16 on CUDA")
    num_threads: int | None = Field(
        1, ge=1, description="torch CPU threads for the local model (None: torch's default, one "
        "per core); 1 is fastest when the cores are shared with other workers")

    # vllm backend
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per model")
    gpu_memory_utilization: float = Field(
        0.85, gt=0, le=1, description="vllm: fraction of GPU memory the engine may use")
    max_model_len: int | None = Field(None, ge=16, description="vllm: context length override")
    enforce_eager: bool = Field(False, description="vllm: disable CUDA graphs (faster start)")
    vllm_kwargs: dict[str, object] = Field(
        default_factory=dict, description="vllm: extra keyword arguments for vllm.LLM")

    # openai backend
    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="openai: endpoint base URL (…/v1)")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="openai: name of the environment variable holding the API "
        "key (the key itself never appears in configs, logs or reports)")
    concurrency: int = Field(8, ge=1, description="openai: requests in flight at once")
    timeout_s: float = Field(60.0, gt=0, description="openai: per-request timeout in seconds")
    max_retries: int = Field(
        5, ge=0, description="openai: retries of a failed HTTP call (5xx, 429, timeouts, dropped "
        "connections, malformed bodies)")
    backoff_base_s: float = Field(0.5, ge=0, description="openai: first backoff delay")
    backoff_max_s: float = Field(30.0, ge=0, description="openai: longest backoff delay")
    json_mode: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema", description="openai: response_format used when a request has a schema")
