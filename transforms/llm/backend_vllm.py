"""The vllm backend: vLLM's offline engine (`vllm.LLM`) in-process on a GPU.

`engine_kwargs(config)` and `sampling_kwargs(request)` build plain dicts (tested without vLLM);
`VLLMBackend` turns them into `vllm.LLM(...)` and `vllm.SamplingParams(...)`, with the JSON
Schema as structured output (`StructuredOutputsParams` on new vLLM, `GuidedDecodingParams` on
older releases). vLLM is imported only here. A batch that raises is retried one request at a
time, so one bad request fails alone.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

from transforms.llm.api import ChatRequest
from transforms.llm.backend_base import Generation, backend_model_id
from transforms.llm.config import LLMConfig

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_ENGINES: dict[str, Any] = {}  # engine kwargs (JSON) → vllm.LLM, one per process


def vllm_model_path(config: LLMConfig) -> str:
    """A packaged model (a GGUF inside a PyPI package) is served from its converted copy."""
    from transforms.llm.local_model import PACKAGED_MODELS, local_model_path

    if config.model.lower() in PACKAGED_MODELS or config.gguf_file:
        return local_model_path(config)
    return config.model


def engine_kwargs(config: LLMConfig, model_path: str | None = None) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM`."""
    kw: dict[str, Any] = {
        "model": model_path or config.model,
        "tensor_parallel_size": config.tensor_parallel_size,
        "gpu_memory_utilization": config.gpu_memory_utilization,
        "enforce_eager": config.enforce_eager,
        "seed": 0,
        "trust_remote_code": False,
    }
    if config.dtype != "auto":
        kw["dtype"] = config.dtype
    if config.max_model_len is not None:
        kw["max_model_len"] = config.max_model_len
    kw.update(config.vllm_kwargs)
    return kw


def sampling_kwargs(request: ChatRequest) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams`; the schema sits under `json_schema` until
    `to_sampling_params` wraps it in the installed vLLM's structured-output class."""
    kw = request.sampling.call_kwargs()
    if request.logprobs is not None:
        kw["logprobs"] = request.logprobs
    if request.json_schema is not None:
        kw["json_schema"] = request.json_schema
    return kw


def to_sampling_params(kwargs: dict[str, Any], vllm: Any) -> Any:
    """`vllm.SamplingParams` from `sampling_kwargs`, for the installed vLLM version."""
    kw = dict(kwargs)
    schema = kw.pop("json_schema", None)
    if schema is not None:
        sp_module = vllm.sampling_params
        if hasattr(sp_module, "StructuredOutputsParams"):
            kw["structured_outputs"] = sp_module.StructuredOutputsParams(json=schema)
        else:
            kw["guided_decoding"] = sp_module.GuidedDecodingParams(json=schema)
    return vllm.SamplingParams(**kw)


def _logprobs(output: Any) -> list[dict[str, Any]]:
    entries = []
    for tok, step in zip(output.token_ids, output.logprobs or [], strict=False):
        chosen = step.get(tok)
        ranked = sorted(step.values(), key=lambda lp: -lp.logprob)
        entries.append({"token": getattr(chosen, "decoded_token", None),
                        "logprob": getattr(chosen, "logprob", None),
                        "top": [[lp.decoded_token, lp.logprob] for lp in ranked]})
    return entries


class VLLMBackend:
    """One `vllm.LLM` per process (or per machine with share_model_across_processes)."""

    def __init__(self, config: LLMConfig):
        import vllm

        self.config = config
        self.model_id = backend_model_id(config)
        self._vllm = vllm
        kwargs = engine_kwargs(config, vllm_model_path(config))
        key = json.dumps(kwargs, sort_keys=True, default=str)
        with _LOCK:  # stages that call Generate several times share one engine per process
            if key not in _ENGINES:
                _ENGINES[key] = vllm.LLM(**kwargs)
            self.llm = _ENGINES[key]

    def close(self) -> None:
        pass

    def _chat(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        if len({bool(r.prefill) for r in requests}) > 1:  # one template switch per chat call
            by_kind = {k: [i for i, r in enumerate(requests) if bool(r.prefill) == k]
                       for k in (False, True)}
            out: list[Generation | None] = [None] * len(requests)
            for idx in by_kind.values():
                for i, g in zip(idx, self._chat([requests[i] for i in idx]), strict=True):
                    out[i] = g
            return [g for g in out if g is not None]
        params = [to_sampling_params(sampling_kwargs(r), self._vllm) for r in requests]
        switches = requests[0].template_kwargs() if requests[0].prefill else {}  # plain: as before
        outs = self.llm.chat([r.chat_messages() for r in requests], sampling_params=params,
                             use_tqdm=False, **switches)
        gens = []
        for req, out in zip(requests, outs, strict=True):
            gens.append(Generation(
                texts=[o.text for o in out.outputs],
                prompt_tokens=len(out.prompt_token_ids or []),
                completion_tokens=sum(len(o.token_ids) for o in out.outputs),
                logprobs=[_logprobs(o) for o in out.outputs] if req.logprobs is not None
                else None,
                finish_reasons=[str(o.finish_reason or "") for o in out.outputs]))
        return gens

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        if not requests:
            return []
        try:
            return self._chat(requests)
        except Exception:
            log.exception("vllm batch of %d failed; retrying one by one", len(requests))
        gens = []
        for r in requests:
            try:
                gens.extend(self._chat([r]))
            except Exception as e:
                gens.append(Generation(error=f"vllm_error: {type(e).__name__}: {e}"))
        return gens
