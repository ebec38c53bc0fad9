"""IFDScores: instruction-following difficulty with the local model.

IFD = loss(response | instruction) / loss(response alone) (mean token cross-entropy of the
last assistant turn; Li et al., Cherry LLM). Near 0: the instruction makes the response easy
to predict; ≥ 1: the instruction does not help (a filter may drop q_ifd > 1). Reads Example
batches; writes meta.q_ifd, meta.q_ifd_cond_loss, meta.q_ifd_resp_loss (float64; null for a
row without an instruction or a response). The model is loaded once per worker (DoFn setup)
and run in batches. Drops nothing; a batch whose scoring raises goes row by row to DEADLETTER
with the error and the raw row (stage `quality`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa

from schemas.records import with_meta
from transforms.base import ApplyBatchFn, BatchResult, RunContext
from transforms.llm.config import LLMConfig, as_local
from transforms.quality.config import IFDConfig
from transforms.quality.core import guarded
from transforms.quality.judge import split_turns

IFD_STAGE = "quality.ifd"  # metrics namespace refinery.quality.ifd
IFD_BATCH = 4  # rows per forward pass: logits are rows × tokens × vocab floats


def ifd_columns(batch: pa.RecordBatch, model: Any, tokenizer: Any, max_tokens: int,
                batch_size: int = IFD_BATCH) -> dict[str, pa.Array]:
    """q_ifd, q_ifd_cond_loss, q_ifd_resp_loss of every row of `batch` (null where the row has
    no instruction or no response, or a loss is undefined)."""
    from transforms.llm.scoring import ifd_scores, response_losses

    n = batch.num_rows
    prompts, responses, rows = [], [], []
    for row, messages in enumerate(batch.column("messages").to_pylist()):
        prompt, response = split_turns(messages)
        if response.strip() and any(m["role"] == "user" and m["content"].strip()
                                    for m in prompt):
            prompts.append(prompt)
            responses.append(response)
            rows.append(row)
    cond, alone = np.full(n, np.nan), np.full(n, np.nan)
    if rows:
        c, a = response_losses(model, tokenizer, prompts, responses, batch_size=batch_size,
                               max_length=max_tokens)
        cond[rows], alone[rows] = c, a
    ifd = ifd_scores(cond, alone)

    def arr(x: np.ndarray) -> pa.Array:
        return pa.array(x, pa.float64(), from_pandas=True)  # NaN → null

    return {"q_ifd": arr(ifd), "q_ifd_cond_loss": arr(cond), "q_ifd_resp_loss": arr(alone)}


def _ifd(batch: pa.RecordBatch, state: tuple[Any, Any], config: IFDConfig) -> BatchResult:
    model, tokenizer = state
    return BatchResult(kept=with_meta(batch, **ifd_columns(batch, model, tokenizer,
                                                           config.max_tokens)))


def ifd_batch(batch: pa.RecordBatch, state: tuple[Any, Any], config: IFDConfig) -> BatchResult:
    """The batch with the IFD columns; on an exception every row goes to the dead letter."""
    return guarded(_ifd, batch, state, config)


def load_model(llm: LLMConfig) -> tuple[Any, Any]:
    """(model, tokenizer) of the run's LLM weights, loaded in-process (IFD needs per-token
    losses, which no serving backend returns), once per process."""
    from transforms.llm.local_model import load_local_model

    return load_local_model(as_local(llm))


class IFDScores(beam.PTransform):
    """Example batches → {MAIN: rows with q_ifd in meta, REJECTED: none, DEADLETTER: rows of
    batches that failed}. Uses the model named by the run's `llm` block (local weights)."""

    def __init__(self, config: IFDConfig, ctx: RunContext, *, label: str | None = None):
        super().__init__(label)
        self.config, self.ctx = config, ctx

    def expand(self, batches: beam.PCollection) -> dict[str, beam.PCollection]:
        return batches | "IFD" >> ApplyBatchFn(
            IFD_STAGE, partial(ifd_batch, config=self.config),
            setup=partial(load_model, self.ctx.llm))

