"""PII counts and redaction, vectorized (polars regexes over a text column).

Counts emails, phone numbers, IPv4 addresses, API keys/private keys and credit-card numbers
(card candidates are Luhn-checked in a second pass over the candidates only). Redaction
replaces each span in every message's content with a token such as [EMAIL].
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from transforms.quality import _defs as D

# Redaction order: most specific first, so an API key is not partly taken for a phone number.
_REDACT_ORDER = ("api_key", "email", "phone")
PII_KINDS = ("email", "phone", "ip", "api_key", "credit_card")


def _valid_cards(texts: pl.Series) -> pl.DataFrame:
    """(row, card) for every Luhn-valid card candidate; card is the matched span."""
    cand = (pl.DataFrame({"row": np.arange(len(texts), dtype=np.uint32),
                          "card": texts.str.extract_all(D.CARD_CANDIDATE_RE)})
            .explode("card").drop_nulls("card"))
    if cand.height == 0:
        return cand
    digits = cand["card"].str.replace_all("[^0-9]", "").to_list()
    ok = [D.luhn_ok(d) for d in digits]  # second pass: candidates only
    return cand.filter(pl.Series(ok, dtype=pl.Boolean))


def _ip_rows(texts: pl.Series) -> pl.DataFrame:
    """(row, ip) for every IPv4 address (candidates first, then the exact form)."""
    cand = (pl.DataFrame({"row": np.arange(len(texts), dtype=np.uint32),
                          "ip": texts.str.extract_all(D.IP_CANDIDATE_RE)})
            .explode("ip").drop_nulls("ip"))
    cand = cand.with_columns(pl.col("ip").str.replace("^[^0-9]", ""))
    return cand.filter(pl.col("ip").str.contains(D.IP_FULL_RE))


def _per_row(rows: pl.Series, n: int) -> np.ndarray:
    counts = np.zeros(n, dtype=np.int64)
    if len(rows):
        np.add.at(counts, rows.to_numpy(), 1)
    return counts


def pii_counts(texts: pl.Series) -> dict[str, np.ndarray]:
    """q_pii_<kind> counts per text."""
    out = {f"q_pii_{k}": texts.str.count_matches(p).cast(pl.Int64).to_numpy()
           for k, p in D.PII_PATTERNS.items()}
    out["q_pii_ip"] = _per_row(_ip_rows(texts)["row"], len(texts))
    out["q_pii_credit_card"] = _per_row(_valid_cards(texts)["row"], len(texts))
    return {f"q_pii_{k}": out[f"q_pii_{k}"] for k in PII_KINDS}


def redact_texts(texts: pl.Series, kinds: tuple[str, ...] | None = None) -> pl.Series:
    """Texts with PII spans replaced by REDACT_TOKENS (all kinds unless `kinds` is given)."""
    kinds = kinds or PII_KINDS
    out = texts
    for kind, found in (("credit_card", _valid_cards), ("ip", _ip_rows)):
        if kind not in kinds:
            continue
        spans = found(texts).get_column(kind if kind == "ip" else "card").unique().to_list()
        if spans:
            # longest first, so a span that contains another is replaced whole
            spans.sort(key=lambda c: (-len(c), c))
            out = out.str.replace_many(spans, [D.REDACT_TOKENS[kind]] * len(spans))
    for kind in _REDACT_ORDER:
        if kind in kinds:
            out = out.str.replace_all(D.PII_PATTERNS[kind], D.REDACT_TOKENS[kind])
    return out


def redact_messages(batch: pa.RecordBatch, kinds: tuple[str, ...] | None = None
                    ) -> pa.RecordBatch:
    """`batch` with PII redacted in every message's content (ids and other columns kept)."""
    msgs = batch.column("messages")
    flat = msgs.flatten()  # struct<role, content> of all messages
    content = pl.from_arrow(flat.field("content"))
    redacted = redact_texts(content, kinds).to_arrow().cast(pa.string())
    new_flat = pa.StructArray.from_arrays([flat.field("role"), redacted],
                                          names=["role", "content"])
    offsets = pc.subtract(msgs.offsets, msgs.offsets[0])
    new_msgs = pa.ListArray.from_arrays(offsets, new_flat,
                                        mask=msgs.is_null() if msgs.null_count else None)
    new_msgs = new_msgs.cast(batch.schema.field("messages").type)
    idx = batch.schema.get_field_index("messages")
    return pa.RecordBatch.from_arrays(
        [new_msgs if i == idx else batch.column(i) for i in range(batch.num_columns)],
        names=batch.schema.names)
