"""Per-row decoding controls for batched `model.generate` on the local backend.

Rows of one batch may differ in JSON Schema, temperature, top_p, seed, max_tokens and stop
strings, so decoding is steered per row:
- `GrammarConstraint` masks each row's logits with its own xgrammar matcher (rows without a
  schema are left free);
- `RowSampler` draws each row's next token from its own seeded `torch.Generator` (greedy at
  temperature 0), so a row's answer does not depend on its neighbours in the batch;
- `RowStop` ends each row at its own max_tokens or stop string.
`generate` is called with do_sample=False: RowSampler leaves only the chosen token finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria


class GrammarConstraint(LogitsProcessor):
    """Masks logits to tokens the row's grammar allows (xgrammar). One instance per generate."""

    def __init__(self, grammars: Sequence[Any | None], vocab_size: int, done: list[bool]):
        import xgrammar as xgr

        self._xgr = xgr
        self.matchers = [None if g is None else xgr.GrammarMatcher(g) for g in grammars]
        self.bitmask = xgr.allocate_token_bitmask(len(grammars), vocab_size)
        self.vocab_size = vocab_size
        self.done = done  # shared with RowStop: rows ended by max_tokens / stop strings
        self.closed = [m is None for m in self.matchers]
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.started:
            for i, matcher in enumerate(self.matchers):
                if self.closed[i] or matcher is None:
                    continue
                if not matcher.is_terminated() and not matcher.accept_token(int(input_ids[i, -1])):
                    self.closed[i] = True  # cannot happen under the mask; stop constraining
                if self.done[i] or matcher.is_terminated():
                    self.closed[i] = True
        self.started = True
        rows = []
        for i, matcher in enumerate(self.matchers):
            if not self.closed[i] and matcher is not None:
                matcher.fill_next_token_bitmask(self.bitmask, i)
                rows.append(i)
        if rows:
            device = scores.device
            work = scores if device.type in ("cpu", "cuda") else scores.to("cpu")
            self._xgr.apply_token_bitmask_inplace(
                work, self.bitmask.to(work.device), vocab_size=min(self.vocab_size, work.shape[-1]),
                indices=rows)
            scores = work.to(device)
        return scores


class RowSampler(LogitsProcessor):
    """Chooses each row's next token (seeded per row) and leaves only that token finite."""

    def __init__(self, temperatures: Sequence[float], top_ps: Sequence[float],
                 seeds: Sequence[int], device: str | torch.device = "cpu"):
        self.temperatures = list(temperatures)
        self.top_ps = list(top_ps)
        self.generators: list[torch.Generator | None] = []
        for t, s in zip(temperatures, seeds, strict=True):
            if t > 0:
                g = torch.Generator(device=device)
                g.manual_seed(int(s) & 0x7FFF_FFFF_FFFF_FFFF)
                self.generators.append(g)
            else:
                self.generators.append(None)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen = torch.argmax(scores, dim=-1)
        for i in range(scores.shape[0]):
            gen = self.generators[i]
            if gen is None:
                continue
            row = scores[i].float()
            probs = torch.softmax(row / self.temperatures[i], dim=-1)
            top_p = self.top_ps[i]
            if top_p < 1.0:
                sorted_p, order = torch.sort(probs, descending=True)
                keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < top_p
                keep[0] = True
                filtered = torch.zeros_like(probs)
                filtered[order[keep]] = sorted_p[keep]
                probs = filtered
            if not torch.isfinite(probs).all() or float(probs.sum()) <= 0:
                continue  # nothing to sample from: keep the argmax
            chosen[i] = torch.multinomial(probs, 1, generator=gen)[0]
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen.unsqueeze(1), 0.0)
        return out


class RowStop(StoppingCriteria):
    """Ends row i after max_tokens[i] new tokens or when its text contains a stop string."""

    def __init__(self, tokenizer: Any, prompt_len: int, max_tokens: Sequence[int],
                 stops: Sequence[Sequence[str]], done: list[bool]):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.max_tokens = list(max_tokens)
        self.stops = [list(s) for s in stops]
        self.done = done

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor,
                 **kwargs: Any) -> torch.BoolTensor:
        produced = input_ids.shape[1] - self.prompt_len
        for i in range(input_ids.shape[0]):
            if self.done[i]:
                continue
            if produced >= self.max_tokens[i]:
                self.done[i] = True
            elif self.stops[i]:
                text = self.tokenizer.decode(input_ids[i, self.prompt_len:],
                                             skip_special_tokens=True)
                if any(s in text for s in self.stops[i]):
                    self.done[i] = True
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """`text` up to (not including) the earliest stop string."""
    cut = len(text)
    for s in stops:
        j = text.find(s)
        if s and j != -1:
            cut = min(cut, j)
    return text[:cut]
