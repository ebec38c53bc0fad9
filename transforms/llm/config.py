"""Config of the LLM serving layer (the top-level `llm` block, and a stage's role blocks).

`LLMConfig` is one model per backend, told apart by `backend` (a pydantic discriminated
union): `LocalLLMConfig` (transformers on CPU, the embedded default), `VLLMConfig` (offline
engine on a GPU) and `OpenAIConfig` (any OpenAI-compatible endpoint). A field of another
backend is a validation error (e.g. `tensor_parallel_size` given to `backend: local`).
`LLMConfig(**fields)` builds the variant named by `backend` (default local); in a config model
declare the field as `AnyLLMConfig` so YAML is validated against the right variant.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, TypeAdapter, field_validator, model_validator

from transforms.config_base import StrictModel

BACKENDS = ("local", "vllm", "openai")


class LLMConfig(StrictModel):
    """What every backend shares: the model, batching, schema retries and the response cache.
    Calling `LLMConfig(...)` returns the subclass of the given `backend` (default local)."""

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
    max_run_s: float | None = Field(
        None, gt=0, description="ours: the whole run's time for model calls, counted from its "
        "start (the `llm` block's value): a request asked after it fails at once to the dead "
        "letter, one in flight is cut short (openai), so a run cannot hang on a slow server; "
        "null: no limit")

    # response cache
    cache: bool = Field(True, description="reuse earlier answers found in cache_dir")
    cache_dir: str | None = Field(
        None, description="where answers are persisted (local path, gs://, s3://); default: "
        "<work_dir>/llm_cache when the stage passes work_dir, else ~/.cache/refinery/llm_cache")

    def __new__(cls, *args: Any, **data: Any) -> LLMConfig:
        if cls is LLMConfig:  # the base dispatches to the backend's model
            backend = data.get("backend", "local")
            if backend not in _BY_BACKEND:
                raise ValueError(f"llm.backend: unknown backend {backend!r}; one of {BACKENDS}")
            cls = _BY_BACKEND[backend]
        return super().__new__(cls)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> LLMConfig:  # type: ignore[override]
        """On the base class: validate as the variant `backend` names (as `AnyLLMConfig`)."""
        if cls is LLMConfig:
            return _ADAPTER.validate_python(obj, **kwargs)
        return super().model_validate(obj, **kwargs)


class _WeightsConfig(LLMConfig):
    """Backends that load weights themselves (local, vllm): where packaged models live."""

    model_cache_dir: str = Field(
        "~/.cache/refinery/models",
        description="where a GGUF model converted for transformers is saved and reused")
    gguf_file: str | None = Field(
        None, description="GGUF file inside a model directory; set automatically for packaged models")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="weights dtype; auto: float32 on CPU, bfloat16 on CUDA (local), "
        "the model's own (vllm)")


class LocalLLMConfig(_WeightsConfig):
    """`backend: local`: transformers on this machine."""

    backend: Literal["local"] = "local"
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="local backend device")
    num_threads: int | None = Field(
        1, ge=1, description="torch CPU threads for the local model (None: torch's default, one "
        "per core); 1 is fastest when the cores are shared with other workers")


class VLLMConfig(_WeightsConfig):
    """`backend: vllm`: vLLM's offline engine on GPUs."""

    backend: Literal["vllm"] = "vllm"
    batch_size: int = Field(
        2048, ge=1, description="vllm: prompts per `LLM.chat` call (RunInference batch); the "
        "engine schedules them itself (continuous batching), so thousands keep the GPU busy")
    tensor_parallel_size: int = Field(1, ge=1, description="vllm: GPUs per model")
    gpu_memory_utilization: float = Field(
        0.85, gt=0, le=1, description="vllm: fraction of GPU memory the engine may use")
    max_model_len: int | None = Field(None, ge=16, description="vllm: context length override")
    enforce_eager: bool = Field(False, description="vllm: disable CUDA graphs (faster start)")
    vllm_kwargs: dict[str, object] = Field(
        default_factory=dict, description="vllm: extra keyword arguments for vllm.LLM")


class OpenAIConfig(LLMConfig):
    """`backend: openai`: any OpenAI-compatible /v1/chat/completions endpoint."""

    backend: Literal["openai"] = "openai"
    base_url: str = Field(
        "http://127.0.0.1:8000/v1", description="openai: endpoint base URL (…/v1)")
    api_key_env: str | None = Field(
        "OPENAI_API_KEY", description="openai: name of the environment variable holding the API "
        "key (the key itself never appears in configs, logs or reports)")
    concurrency: int = Field(
        32, ge=1, description="openai: most requests in flight at once per worker process, kept "
        "full across batches; halved on 429/503 and grown back one at a time (AIMD)")
    timeout_s: float = Field(
        60.0, gt=0, description="openai: total deadline of one HTTP request in seconds (connect, "
        "send and the whole answer: a server trickling bytes is cut off at it)")
    max_retries: int = Field(
        5, ge=0, description="openai: retries of a failed HTTP call (5xx, 429, timeouts, dropped "
        "connections, malformed bodies)")
    backoff_base_s: float = Field(0.5, ge=0, description="openai: first backoff delay")
    backoff_max_s: float = Field(30.0, ge=0, description="openai: longest backoff delay")
    json_mode: Literal["json_schema", "json_object", "none"] = Field(
        "json_schema", description="openai: response_format used when a request has a schema")


_BY_BACKEND: dict[str, type[LLMConfig]] = {
    "local": LocalLLMConfig, "vllm": VLLMConfig, "openai": OpenAIConfig}


def _default_backend(value: Any) -> Any:
    """A block without `backend` is the local backend (as before the union)."""
    if isinstance(value, dict) and "backend" not in value:
        return {**value, "backend": "local"}
    return value


AnyLLMConfig = Annotated[
    LocalLLMConfig | VLLMConfig | OpenAIConfig,
    Field(discriminator="backend"),
    BeforeValidator(_default_backend),
]
"""The type of an `llm` field in a config model: validated as the variant its `backend` names."""
_ADAPTER: TypeAdapter[LLMConfig] = TypeAdapter(AnyLLMConfig)


class ModelRoles(StrictModel):
    """Mixin of a stage config whose steps call models: `roles` names an `llm` block per role.

    A stage declares its roles and the steps each one serves in `ROLES` (role → description);
    a role left out of `roles` uses the run's `llm`. Example (YAML):
    `roles: {policy: {backend: openai, model: my-policy, base_url: "http://h:8000/v1"}}`."""

    ROLES: ClassVar[dict[str, str]] = {}
    roles: dict[str, AnyLLMConfig] = Field(
        default_factory=dict, description="role → its own `llm` block (same fields as the "
        "top-level `llm`); a role not given uses the run's `llm`")

    require_roles: bool = Field(
        False, description="every role the enabled steps use must be named in `roles` (no "
        "fallback to the run's `llm`); paper configs set it, so changing one role's model "
        "never leaves another role on a default model")

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, roles: dict[str, LLMConfig]) -> dict[str, LLMConfig]:
        unknown = sorted(set(roles) - set(cls.ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}; this stage has {sorted(cls.ROLES)}")
        return roles

    def roles_in_use(self) -> list[str]:
        """The roles this config's enabled steps call (a stage narrows it; default: all)."""
        return list(self.ROLES)

    @model_validator(mode="after")
    def _required_roles_set(self) -> ModelRoles:
        if self.require_roles and getattr(self, "enabled", True):
            missing = [r for r in self.roles_in_use() if r not in self.roles]
            if missing:
                raise ValueError(
                    f"require_roles: role(s) {missing} not set in `roles` (this config names "
                    f"every model it uses; {', '.join(f'{r}: {self.ROLES[r]}' for r in missing)})")
        return self


def as_local(config: LLMConfig) -> LocalLLMConfig:
    """The local-backend config of the same weights (for code that runs the model in-process,
    e.g. IFD): `config` itself when it is local, else its model, cache dir, GGUF and dtype."""
    if isinstance(config, LocalLLMConfig):
        return config
    shared = {k: getattr(config, k) for k in ("model_cache_dir", "gguf_file", "dtype")
              if hasattr(config, k)}
    return LocalLLMConfig(model=config.model, **shared)
