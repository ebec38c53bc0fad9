"""Heuristic quality signals, vectorized over an Example batch (polars + numpy).

Reads `messages`; returns one Arrow array per signal (q_* names, see SIGNAL_TYPES), which the
stage stores in `meta`. Definitions are those of reference.py (per-record Python); the tests
check both agree. Repetition signals explode the response into one row per word and work on
word hashes: an n-gram key is a rolling polynomial of the word hashes (wrapping uint64).
Prompt-only rows (ending with a user turn) get null response signals (PROMPT_ONLY_NULL).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from schemas.turns import prompt_only_mask
from transforms.quality import _defs as D
from transforms.quality._chars import char_counts
from transforms.quality.pii import pii_counts

INT, FLOAT, BOOL, STR = pa.int64(), pa.float64(), pa.bool_(), pa.string()
SIGNAL_TYPES: dict[str, pa.DataType] = {
    "q_prompt_chars": INT, "q_response_chars": INT, "q_prompt_words": INT,
    "q_response_words": INT, "q_resp_prompt_ratio": FLOAT, "q_dup_line_frac": FLOAT,
    **{f"q_top{n}gram_frac": FLOAT for n in D.TOP_NGRAMS},
    **{f"q_dup{n}gram_frac": FLOAT for n in D.DUP_NGRAMS},
    "q_non_alnum_frac": FLOAT, "q_upper_frac": FLOAT, "q_url_count": INT, "q_refusal": INT,
    "q_refusal_principled": INT, "q_boilerplate": INT, "q_empty": BOOL, "q_placeholder": BOOL,
    "q_unbalanced_fence": BOOL, "q_truncated": BOOL, "q_no_terminal_punct": BOOL,
    "q_prompt_eq_response": BOOL, "q_kind": STR,
    **{f"q_script_{s}": FLOAT for s in D.SCRIPTS}, "q_script_other": FLOAT, "q_script": STR,
    **{f"q_pii_{k}": INT for k in ("email", "phone", "ip", "api_key", "credit_card")},
}
# Signals of the response: null on prompt-only rows (no response yet), so filters on them
# never match those rows and the composite score leaves them out.
PROMPT_ONLY_NULL = frozenset(
    name for name in SIGNAL_TYPES if not name.startswith(D.PROMPT_SIGNAL_PREFIXES))
_P = np.uint64(0x100000001B3)  # odd multiplier of the rolling n-gram key
_HASH_SEED = 0x5EED
_ROW_MIX = np.uint64(0x9E3779B97F4A7C15)  # folds the row into the n-gram key


def _join_roles(roles: tuple[str, ...] | None) -> pl.Expr:
    el = pl.element()
    content = el.struct.field("content").fill_null("")
    picked = content if roles is None else content.filter(el.struct.field("role").is_in(roles))
    return pl.col("messages").list.eval(picked).list.join(D.TURN_SEP).fill_null("")


def texts_frame(batch: pa.RecordBatch | pa.Table) -> pl.DataFrame:
    """Columns prompt, response, all (see _defs) of an Example batch."""
    df = pl.from_arrow(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch)
                       else batch).select("messages")
    return df.select(prompt=_join_roles(D.PROMPT_ROLES), response=_join_roles(D.RESPONSE_ROLES),
                     all=_join_roles(None))


def _class(chars: str) -> str:
    return "[" + "".join("\\" + c if c in "\\]^-[&~" else c for c in chars) + "]"


def _refusals(response: pl.Expr) -> dict[str, pl.Expr]:
    """q_refusal and q_refusal_principled (see _defs.SENTENCE_RE and reference._refusals)."""
    el = pl.element()
    markers = el.str.count_matches(D.REFUSAL_RE)
    principled = (markers > 0) & el.str.contains(D.PRINCIPLED_REASON_RE) \
        & ~el.str.contains(D.AI_IDENTITY_RE)
    # only responses with a marker are split into sentences (most have none)
    flagged = pl.when(response.str.contains(D.REFUSAL_RE)).then(response).otherwise(pl.lit(""))
    sentences = flagged.str.extract_all(D.SENTENCE_RE)
    return {
        "q_refusal": sentences.list.eval(pl.when(principled).then(0).otherwise(markers))
        .list.sum().fill_null(0).cast(pl.Int64),
        "q_refusal_principled": sentences.list.eval(principled.cast(pl.Int64))
        .list.sum().fill_null(0).cast(pl.Int64),
    }


def _regex_signals(df: pl.DataFrame) -> pl.DataFrame:
    """Signals that need regexes or string comparison (polars)."""
    r, p = pl.col("response"), pl.col("prompt")
    stripped = r.str.strip_chars(D.WS_CHARS)
    fence_odd = (r.str.count_matches(D.FENCE, literal=True) % 2) == 1
    return df.select(
        q_url_count=r.str.count_matches(D.URL_RE).cast(pl.Int64),
        **_refusals(r),
        q_boilerplate=r.str.count_matches(D.BOILERPLATE_RE).cast(pl.Int64),
        q_empty=stripped == "",
        q_placeholder=stripped.str.contains(D.PLACEHOLDER_RE) & (stripped != ""),
        q_unbalanced_fence=fence_odd,
        q_truncated=fence_odd | stripped.str.contains(D.DANGLING_END_RE),
        q_no_terminal_punct=(stripped != "")
        & ~stripped.str.contains(_class(D.TERMINAL_CHARS) + "$"),
        q_prompt_eq_response=(stripped != "")
        & (p.str.strip_chars(D.WS_CHARS).str.to_lowercase() == stripped.str.to_lowercase()),
        q_kind=pl.when(r.str.contains(D.CODE_RE)).then(pl.lit("code"))
        .when(r.str.count_matches(D.MATH_RE) >= D.MATH_MIN).then(pl.lit("math"))
        .otherwise(pl.lit("prose")),
    )


def _char_signals(df: pl.DataFrame) -> dict[str, np.ndarray]:
    """Lengths, character-class ratios and scripts (numpy over decoded code points)."""
    pc_, rc, ac = (char_counts(df[c].to_arrow()) for c in ("prompt", "response", "all"))
    nonws = np.maximum(rc["chars"] - rc["space"], 1)
    out: dict[str, np.ndarray] = {
        "q_prompt_chars": pc_["chars"], "q_response_chars": rc["chars"],
        "q_prompt_words": pc_["words"], "q_response_words": rc["words"],
        "q_resp_prompt_ratio": rc["words"] / np.maximum(pc_["words"], 1),
        "q_non_alnum_frac": (rc["chars"] - rc["space"] - rc["alnum"]) / nonws,
        "q_upper_frac": rc["upper"] / nonws,
    }
    letters = ac["letter"]
    names = [*D.SCRIPTS, "other"]
    counts = np.stack([ac[f"script_{n}"] for n in names])
    for name, c in zip(names, counts, strict=False):
        out[f"q_script_{name}"] = _safe_div(c.astype(np.float64), letters)
    labels = np.array(names + ["none"], dtype=object)
    best = np.argmax(counts, axis=0)  # first maximum: ties go to the earlier script
    out["q_script"] = labels[np.where(letters > 0, best, len(names))]
    return out


def _line_dup(response: pl.Series) -> np.ndarray:
    n = len(response)
    lines = (pl.DataFrame({"row": np.arange(n, dtype=np.uint32), "t": response})
             .select("row", pl.col("t").str.split("\n")).explode("t")
             .with_columns(pl.col("t").str.strip_chars(D.WS_CHARS)).filter(pl.col("t") != ""))
    agg = lines.group_by("row").agg(total=pl.len(), uniq=pl.col("t").n_unique())
    frac = np.zeros(n, dtype=np.float64)
    rows = agg["row"].to_numpy()
    frac[rows] = (agg["total"] - agg["uniq"]).to_numpy() / agg["total"].to_numpy()
    return frac


def _repetition(response: pl.Series) -> dict[str, np.ndarray]:
    """Top-n-gram and duplicate-n-gram character fractions of every response.

    An n-gram can only repeat where its (n-1)-gram prefix repeats, so each n only looks at
    the start positions whose (n-1)-gram occurred at least twice in the same row."""
    n_rows = len(response)
    words = (pl.DataFrame({"row": np.arange(n_rows, dtype=np.uint32),
                           "w": response.str.to_lowercase().str.extract_all(D.WORD_RE)})
             .explode("w").drop_nulls("w"))
    row = words["row"].to_numpy().astype(np.int64)
    length = words["w"].str.len_chars().cast(pl.Int64).to_numpy()
    h = words["w"].hash(_HASH_SEED).to_numpy()
    n_words = len(row)
    total = np.bincount(row, weights=length, minlength=n_rows)
    cum = np.concatenate([[0], np.cumsum(length)])
    row_salt = row.astype(np.uint64) * _ROW_MIX
    out: dict[str, np.ndarray] = {}
    cand = np.arange(n_words, dtype=np.int64)  # start positions still worth looking at
    key = h.copy()
    for n in range(2, max(D.DUP_NGRAMS) + 1):
        ok = cand + (n - 1) < n_words
        cand, key = cand[ok], key[ok]
        ok = row[cand + (n - 1)] == row[cand]
        cand, key = cand[ok], key[ok]
        key = key * _P + h[cand + (n - 1)]
        counts = pl.DataFrame({"k": key ^ row_salt[cand]}).select(pl.len().over("k"))
        counts = counts.to_series().to_numpy()
        rep = counts >= 2
        cand, key, counts = cand[rep], key[rep], counts[rep]
        if n in D.TOP_NGRAMS:
            out[f"q_top{n}gram_frac"] = _top_frac(row[cand], counts, cum[cand + n] - cum[cand],
                                                  total, n_rows)
        if n in D.DUP_NGRAMS:
            covered = np.zeros(n_words, dtype=bool)
            for t in range(n):
                covered[cand + t] = True
            covered_chars = np.bincount(row, weights=length * covered, minlength=n_rows)
            out[f"q_dup{n}gram_frac"] = _safe_div(covered_chars, total)
    return out


def _top_frac(rows: np.ndarray, counts: np.ndarray, cover: np.ndarray, total: np.ndarray,
              n_rows: int) -> np.ndarray:
    """Per row: count × chars of the most frequent repeated n-gram (ties: more chars) / total."""
    rep = counts >= 2
    packed = (counts[rep].astype(np.int64) << 32) | cover[rep].astype(np.int64)
    best = np.zeros(n_rows, dtype=np.int64)
    np.maximum.at(best, rows[rep], packed)
    covered = (best >> 32) * (best & 0xFFFFFFFF)
    return np.minimum(1.0, _safe_div(covered.astype(np.float64), total))


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def compute_signals(batch: pa.RecordBatch | pa.Table) -> dict[str, pa.Array]:
    """Every heuristic signal of every row of an Example batch: name → Arrow array."""
    df = texts_frame(batch)
    cols = _regex_signals(df)
    arrays: dict[str, pa.Array] = {name: cols[name].to_arrow() for name in cols.columns}
    for name, values in _char_signals(df).items():
        arrays[name] = pa.array(values)
    arrays["q_dup_line_frac"] = pa.array(_line_dup(df["response"]))
    for name, values in _repetition(df["response"]).items():
        arrays[name] = pa.array(values)
    for name, values in pii_counts(df["all"]).items():
        arrays[name] = pa.array(values)
    out = {name: _as_type(arrays[name], typ) for name, typ in SIGNAL_TYPES.items()}
    prompt_only = prompt_only_mask(batch)
    if prompt_only.any():
        mask = pa.array(prompt_only)
        for name in PROMPT_ONLY_NULL:
            out[name] = pc.if_else(mask, pa.scalar(None, out[name].type), out[name])
    return out


def _as_type(arr: pa.Array | pa.ChunkedArray, typ: pa.DataType) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_large_string(arr.type) or arr.type == pa.string_view():
        arr = arr.cast(pa.string())
    return arr if arr.type == typ else arr.cast(typ)
