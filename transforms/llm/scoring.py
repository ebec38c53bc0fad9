"""Per-example mean token loss of a response, with and without its prompt (for IFD).

Instruction-following difficulty (Li et al., "From Quantity to Quality", Cherry LLM) is
IFD = loss(response | prompt) / loss(response alone). `response_losses` returns both losses for
a list of (prompt messages, response) pairs using the local model from `load_local_model`.
The prompt is rendered with the model's chat template and a generation prompt; "alone" means
the response after an empty assistant header. Reads texts; writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _prefix_ids(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> list[int]:
    try:
        ids = tokenizer.apply_chat_template(
            [dict(m) for m in messages], add_generation_prompt=True, tokenize=True)
    except Exception:  # a template that cannot render this turn list: no prefix
        return []
    if isinstance(ids, Mapping) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(t) for t in ids]


def _mean_losses(model: Any, tokenizer: Any, rows: list[tuple[list[int], list[int]]],
                 batch_size: int) -> np.ndarray:
    """Mean cross-entropy over the response tokens of each (prefix ids, response ids) row."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.full(len(rows), np.nan, dtype=np.float64)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(len(p) + len(r) for p, r in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        labels = torch.full((len(chunk), width), -100, dtype=torch.long)
        for i, (p, r) in enumerate(chunk):
            seq = p + r
            ids[i, :len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[i, :len(seq)] = 1
            labels[i, len(p):len(seq)] = torch.tensor(r, dtype=torch.long)
        with torch.inference_mode():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        logits = logits[:, :-1].float()
        target = labels[:, 1:].to(device)
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100,
            reduction="none").view(target.shape)
        counted = (target != -100).sum(dim=1)
        sums = nll.sum(dim=1)
        for i in range(len(chunk)):
            n = int(counted[i])
            if n:
                out[start + i] = float(sums[i]) / n
    return out


def response_losses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[Mapping[str, str]]],
    responses: Sequence[str],
    batch_size: int = 8,
    max_length: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """(mean loss of each response given its prompt, mean loss of the response alone).

    A response keeps at most 3/4 of `max_length` tokens; its prompt keeps its last tokens up to
    `max_length` in all. An empty response gives NaN for both."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts for {len(responses)} responses")
    alone_prefix = _prefix_ids(tokenizer, [])
    with_prompt: list[tuple[list[int], list[int]]] = []
    alone: list[tuple[list[int], list[int]]] = []
    for messages, response in zip(prompts, responses, strict=True):
        r = [int(t) for t in tokenizer(response, add_special_tokens=False)["input_ids"]]
        r = r[:max_length * 3 // 4]
        p = _prefix_ids(tokenizer, messages)
        p = p[-(max_length - len(r)):] if len(p) + len(r) > max_length else p
        if not p:  # the first response token needs something to be predicted from
            p = [tokenizer.eos_token_id or 0]
        a = alone_prefix or [tokenizer.eos_token_id or 0]
        with_prompt.append((p, r))
        alone.append((a, r))
    return (_mean_losses(model, tokenizer, with_prompt, batch_size),
            _mean_losses(model, tokenizer, alone, batch_size))


def ifd_scores(conditioned: np.ndarray, unconditioned: np.ndarray) -> np.ndarray:
    """IFD = conditioned / unconditioned loss; NaN where either is NaN or the divisor is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(conditioned, dtype=np.float64) / np.asarray(unconditioned, np.float64)
    ratio[~np.isfinite(ratio)] = np.nan
    return ratio
