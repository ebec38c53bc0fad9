"""Sentence embeddings on ONNX Runtime: the local sentence-transformers model exported once,
offline, to ONNX (the whole module pipeline: transformer, pooling, normalization), quantized to
int8 (dynamic, per-channel MatMul weights) when that keeps the vectors within `int8_min_cosine`
of fp32 on calibration sentences, and cached under `<cache>/<fingerprint of the model files>`.

Texts are tokenized once, sorted by token length and padded per batch. sentence-transformers'
own ONNX backend needs optimum, whose releases pin transformers below the version this project
uses; the export here uses torch.onnx and onnxruntime.quantization directly instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil  # local-only: ONNX export cache
import tempfile  # local-only: ONNX export cache
import warnings
from pathlib import Path  # local-only: ONNX export cache and model folders
from typing import TYPE_CHECKING, Any

import numpy as np

from transforms.machine_cache import machine_cache_dir

if TYPE_CHECKING:
    from collections.abc import Sequence

EXPORT_SCHEME = "st-pipeline-opset17-v1"
FP32, INT8 = "model.onnx", "model_int8.onnx"
# Calibration sentences for the int8 check (written for this module; varied length and topic).
CALIBRATION = (
    "How many apples are left if Tom eats three of the twelve he bought?",
    "Write a haiku about autumn leaves falling on a quiet pond.",
    "Explain the difference between a list and a tuple in Python, with an example of each.",
    "Summarize the causes of the First World War in three sentences.",
    "def add(a, b):\n    return a + b",
    "Translate 'good morning, how are you?' into French.",
    "The committee postponed its decision until the budget figures for next year are known, "
    "which annoyed several members who had travelled a long way to attend the meeting.",
    "What is 17 times 23?",
    "Give me three tips for a job interview.",
    "Describe photosynthesis to a ten-year-old child.",
    "Is the following review positive or negative? The food was cold and the waiter rude.",
    "A train leaves at 9:15 and travels 180 km at 60 km/h. When does it arrive?",
)


def default_cache_dir() -> Path:
    return machine_cache_dir("onnx")


def fingerprint(model_path: str) -> str:
    """sha256 over the model directory's files (names and contents) and the export scheme."""
    # local-only: hashes the model folder, which is inside a pip package or local cache
    h = hashlib.sha256(EXPORT_SCHEME.encode())
    root = Path(model_path)
    for f in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        h.update(str(f.relative_to(root)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:20]


def _export_fp32(model_path: str, out: Path) -> list[str]:
    """torch.onnx export of the whole SentenceTransformer pipeline; returns its input names."""
    # local-only: torch.onnx writes the export into the machine's cache
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model_path, device="cpu").eval()
    # `preprocess` replaced `tokenize` in sentence-transformers 5.x (which warns on the old name)
    encode = getattr(st, "preprocess", None) or st.tokenize
    example = encode(["an example sentence", "another one, a little longer"])
    names = [k for k, v in example.items() if isinstance(v, torch.Tensor)]
    extras = {k: v for k, v in example.items() if k not in names}  # e.g. a modality tag

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            features = {**extras, **dict(zip(names, tensors, strict=True))}
            return self.st(features)["sentence_embedding"]

    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    with torch.no_grad(), warnings.catch_warnings():
        # tracing notes that say nothing to a user: shapes are dynamic axes, indices never negative
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator",
                                category=UserWarning)
        torch.onnx.export(Pipeline(), tuple(example[n] for n in names), str(out / FP32),
                          input_names=names, output_names=["embedding"],
                          dynamic_axes={**axes, "embedding": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    return names


def _session(path: Path, threads: int | None) -> Any:
    # local-only: onnxruntime loads the model from the local disk
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_model(model_path: str, cache_dir: Path) -> Path:
    """The cached export directory of `model_path`, made when missing (in a temporary
    directory renamed into place, so concurrent workers never see half an export)."""
    # local-only: the ONNX export cache is per machine (temp folder renamed into place)
    target = cache_dir / fingerprint(model_path)
    if (target / "meta.json").exists():
        return target
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".export-"))
    try:
        names = _export_fp32(model_path, tmp)
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))
        quantize_dynamic(str(tmp / FP32), str(tmp / INT8), per_channel=True,
                         weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        tok = AutoTokenizer.from_pretrained(model_path)
        enc = {n: v.astype(np.int64) for n, v in tok(list(CALIBRATION), padding=True,
                                                     return_tensors="np").items() if n in names}
        ref = _unit(_session(tmp / FP32, None).run(None, enc)[0])
        q = _unit(_session(tmp / INT8, None).run(None, enc)[0])
        agreement = float((ref * q).sum(axis=1).mean())
        meta = {"inputs": names, "int8_cosine": round(agreement, 5), "scheme": EXPORT_SCHEME,
                "source": str(model_path)}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        with contextlib.suppress(OSError):  # another worker finished first: keep its export
            os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class OnnxEncoder:
    """`encode(texts, batch_size, normalize)` → (n, dim) float32, from a cached export."""

    def __init__(self, model_path: str, *, int8: bool = True, min_cosine: float = 0.99,
                 max_seq_length: int | None = None, cache_dir: str | None = None,
                 threads: int | None = None):
        # local-only: reads the local export cache and model folder
        from transformers import AutoTokenizer

        root = export_model(model_path, Path(cache_dir) if cache_dir else default_cache_dir())
        self.meta = json.loads((root / "meta.json").read_text())
        self.precision = "int8" if int8 and self.meta["int8_cosine"] >= min_cosine else "fp32"
        self.session = _session(root / (INT8 if self.precision == "int8" else FP32), threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.max_seq_length = max_seq_length or _st_max_length(model_path) or 512
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(self, texts: Sequence[str], batch_size: int = 32,
               normalize: bool = True) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        if not len(texts):
            return out
        names = self.meta["inputs"]
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_seq_length)
        lengths = np.array([len(ids) for ids in enc["input_ids"]])
        order = np.argsort(-lengths, kind="stable")  # longest first: little padding per batch
        pad = self.tokenizer.pad_token_id or 0
        for s in range(0, len(order), batch_size):
            rows = order[s:s + batch_size]
            width = int(lengths[rows].max())
            feed = {}
            for n in names:
                arr = np.full((len(rows), width), pad if n == "input_ids" else 0, np.int64)
                for k, r in enumerate(rows):
                    seq = enc[n][r]
                    arr[k, :len(seq)] = seq
                feed[n] = arr
            out[rows] = self.session.run(None, feed)[0]
        return _unit(out) if normalize else out


def _st_max_length(model_path: str) -> int | None:
    # local-only: reads the model folder (pip package or local cache)
    cfg = Path(model_path) / "sentence_bert_config.json"
    if cfg.exists():
        return json.loads(cfg.read_text()).get("max_seq_length")
    return None
