"""The local backend: batched chat generation with transformers (CPU by default).

Reads `ChatRequest`s, renders them with the model's chat template, generates one left-padded
batch per `batch_size` rows (a request with n > 1 is n rows), constrains rows that carry a JSON
Schema with xgrammar, and returns one `Generation` per request. A request whose schema cannot
be compiled, or a batch whose generation raises, comes back with `error` set.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from transforms.llm.api import ChatRequest
from transforms.llm.backend_base import Generation, backend_model_id
from transforms.llm.config import LLMConfig
from transforms.llm.local_model import load_local_model

log = logging.getLogger(__name__)

_GRAMMARS: dict[int, dict[str, Any]] = {}  # id(tokenizer) → {schema text: compiled grammar}


def row_seed(seed: int, choice: int) -> int:
    """Seed of the `choice`-th sample of a request (choice 0 uses the request's seed)."""
    return seed if choice == 0 else (seed * 1_000_003 + choice) & 0x7FFF_FFFF


class LocalBackend:
    """transformers model from `load_local_model`, one per process."""

    def __init__(self, config: LLMConfig, model: Any = None, tokenizer: Any = None):
        self.config = config
        self.model_id = backend_model_id(config)
        if model is None or tokenizer is None:
            model, tokenizer = load_local_model(config)
        self.model, self.tokenizer = model, tokenizer
        self.device = next(model.parameters()).device
        # grammars compiled for this tokenizer, shared by every backend of the process
        self._grammars: dict[str, Any] = _GRAMMARS.setdefault(id(tokenizer), {})
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        eos_ids.add(tokenizer.eos_token_id)
        self.eos_ids = sorted(int(e) for e in eos_ids if e is not None)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                          else self.eos_ids[0])

    def close(self) -> None:
        pass

    def grammar(self, schema: dict[str, Any]) -> Any:
        """The compiled xgrammar grammar of a JSON Schema (cached by its text). Keys keep the
        schema's own order: properties are generated in that order, and a model answers
        better when it writes e.g. the question before the list of its parts."""
        key = json.dumps(schema)
        if key not in self._grammars:
            import xgrammar as xgr

            compiler = self._grammars.get("__compiler__")
            if compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=self.model.config.vocab_size,
                    stop_token_ids=self.eos_ids)
                compiler = self._grammars["__compiler__"] = xgr.GrammarCompiler(
                    info, max_threads=2)
            self._grammars[key] = compiler.compile_json_schema(
                key, any_whitespace=False, strict_mode=True)
        return self._grammars[key]

    def render(self, request: ChatRequest) -> str:
        return self.tokenizer.apply_chat_template(
            request.chat_messages(), tokenize=False, **request.template_kwargs())

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        results = [Generation() for _ in requests]
        rows: list[tuple[int, int, Any]] = []  # (request index, choice, grammar)
        for qi, req in enumerate(requests):
            grammar = None
            if req.json_schema is not None:
                try:
                    grammar = self.grammar(req.json_schema)
                except Exception as e:  # an unsupported or broken schema fails this request only
                    results[qi].error = f"schema_compile_error: {type(e).__name__}: {e}"
                    results[qi].raw = json.dumps(req.json_schema, sort_keys=True)
                    continue
            rows.extend((qi, j, grammar) for j in range(max(1, req.sampling.n)))
        texts: dict[tuple[int, int], str] = {}
        logprobs: dict[tuple[int, int], list[Any]] = {}
        finish: dict[tuple[int, int], str] = {}
        step = max(1, self.config.batch_size)
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            try:
                self._generate_rows(requests, chunk, results, texts, logprobs, finish)
            except Exception as e:
                log.exception("local generation failed for %d rows", len(chunk))
                for qi, _, _ in chunk:
                    results[qi].error = f"generation_error: {type(e).__name__}: {e}"
        for qi, req in enumerate(requests):
            if results[qi].error is not None:
                continue
            n = max(1, req.sampling.n)
            results[qi].texts = [texts[(qi, j)] for j in range(n)]
            results[qi].finish_reasons = [finish[(qi, j)] for j in range(n)]
            if req.logprobs is not None:
                results[qi].logprobs = [logprobs.get((qi, j), []) for j in range(n)]
        return results

    def _generate_rows(self, requests: Sequence[ChatRequest], chunk: list[tuple[int, int, Any]],
                       results: list[Generation], texts: dict[tuple[int, int], str],
                       logprobs: dict[tuple[int, int], list[Any]],
                       finish: dict[tuple[int, int], str]) -> None:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        from transforms.llm._decoding import GrammarConstraint, RowSampler, RowStop, cut_at_stop

        reqs = [requests[qi] for qi, _, _ in chunk]
        enc = self.tokenizer([self.render(r) for r in reqs], padding=True, return_tensors="pt",
                             add_special_tokens=False)
        input_ids = enc["input_ids"].to(self.device)
        attention = enc["attention_mask"].to(self.device)
        prompt_len = input_ids.shape[1]
        done = [False] * len(chunk)
        processors: list[Any] = []
        if any(g is not None for _, _, g in chunk):
            processors.append(GrammarConstraint([g for _, _, g in chunk],
                                                self.model.config.vocab_size, done))
        processors.append(RowSampler(
            [r.sampling.temperature for r in reqs], [r.sampling.top_p for r in reqs],
            [row_seed(r.sampling.seed, j) for r, (_, j, _) in zip(reqs, chunk, strict=True)],
            device=self.device))
        want_logprobs = any(r.logprobs is not None for r in reqs)
        max_new = max(r.sampling.max_tokens for r in reqs)
        gen_config = GenerationConfig(
            max_new_tokens=max_new, do_sample=False, pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids, output_logits=want_logprobs,
            return_dict_in_generate=True)
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids, attention_mask=attention, generation_config=gen_config,
                logits_processor=LogitsProcessorList(processors),
                stopping_criteria=StoppingCriteriaList([RowStop(
                    self.tokenizer, prompt_len, [r.sampling.max_tokens for r in reqs],
                    [r.sampling.stop for r in reqs], done)]))
        generated = out.sequences[:, prompt_len:].tolist()
        eos = set(self.eos_ids) | {self.pad_id}
        for row, ((qi, j, _), req) in enumerate(zip(chunk, reqs, strict=True)):
            ids = generated[row][:req.sampling.max_tokens]
            end = next((k for k, t in enumerate(ids) if t in eos), len(ids))
            text = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
            texts[(qi, j)] = cut_at_stop(text, req.sampling.stop)
            # no end-of-sequence token within max_tokens and no stop string: cut by the budget
            finish[(qi, j)] = "length" if end == len(ids) >= req.sampling.max_tokens and \
                texts[(qi, j)] == text else "stop"
            results[qi].completion_tokens += min(len(ids), end + 1)
            if j == 0:
                results[qi].prompt_tokens = int(attention[row].sum())
            if req.logprobs is not None and out.logits is not None:
                logprobs[(qi, j)] = self._token_logprobs(out.logits, row, ids[:end], req.logprobs)

    def _token_logprobs(self, step_logits: Sequence[Any], row: int, ids: list[int],
                        top_k: int) -> list[dict[str, Any]]:
        """Model log-probabilities (before constraints) of each chosen token, with the top k."""
        import torch

        entries = []
        for t, tok in enumerate(ids):
            lp = torch.log_softmax(step_logits[t][row].float(), dim=-1)
            entry: dict[str, Any] = {"token": self.tokenizer.decode([tok]),
                                     "logprob": float(lp[tok])}
            if top_k > 0:
                vals, idx = torch.topk(lp, top_k)
                entry["top"] = [[self.tokenizer.decode([int(i)]), float(v)]
                                for v, i in zip(vals.tolist(), idx.tolist(), strict=True)]
            entries.append(entry)
        return entries
