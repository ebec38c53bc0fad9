"""Columnar ingest, part one: the layouts alpaca, dolly, qa and openai of a parsed JSONL table
→ a long message form (row, role, text per turn), with Arrow compute. Also the column helpers
and the RE2 check that says which texts `normalize_text` may change. Reads Arrow tables;
marks rows it cannot prove equivalent to the per-row adapters as not ok (the caller sends them
through the per-row path); drops nothing.
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.text import normalize_text
from transforms.io._rows import AdapterError, fold_key
from transforms.io.adapters import LAYOUT_FIELDS, OPENAI_ROLES, QA_PAIRS, resolve_layout

FAST_LAYOUTS = ("alpaca", "dolly", "qa", "openai")
# Fields whose presence or list-ness decides a row's layout (adapters._layout_of, _qa): a
# null there may be a missing key or a JSON null, which Arrow cannot tell apart → per row.
DECIDING = LAYOUT_FIELDS
USED = {"alpaca": {"instruction", "input", "output", "system"},
        "dolly": {"instruction", "context", "response", "category"}, "openai": {"messages"}}
ROLE_NAMES = ("system", "user", "assistant", "tool")
SYSTEM, USER, ASSISTANT = 0, 1, 2
_ROLE_CODE = {name: ROLE_NAMES.index(role) for name, role in OPENAI_ROLES.items()}
# Superset of "normalize_text may change this text" (see needs_work_pattern).
_STRUCTURE = r"|  | \n|\n\n\n|^[ \n]|[ \n]$"
_ASCII_BLANK = r"^[\t\n\x0b\x0c\r\x1c-\x1f ]*$"


@functools.cache
def needs_work_pattern() -> str:
    """RE2 pattern matching every text `is_canonical` may reject: a character outside
    printable ASCII, \\n and the "safe" non-ASCII characters (printable, not space, NFC-stable
    starters that never compose with a preceding character: NFC quick-check Yes, computed
    from this Python's unicodedata), double spaces, space before newline, 3+ newlines,
    leading/trailing space or newline. Texts it does not match are canonical as they are."""
    second = {0x1161 + i for i in range(21)} | {0x11A8 + i for i in range(27)}  # Hangul V, T
    for cp in range(0x10000):
        d = unicodedata.decomposition(chr(cp))
        if d and not d.startswith("<") and len(d.split()) == 2:
            second.add(int(d.split()[1], 16))
    ranges: list[list[int]] = []
    for cp in [*range(0xA0, 0xD800), *range(0xE000, 0x10000), *range(0x1F300, 0x1FB00)]:
        c = chr(cp)
        if (c.isprintable() and not c.isspace() and not unicodedata.combining(c)
                and cp not in second and unicodedata.normalize("NFC", c) == c):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    cls = "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)
    return rf"[^\x20-\x7e\n{cls}]" + _STRUCTURE




# --- column helpers -----------------------------------------------------------------------

def np_mask(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _text_col(table: pa.Table, name: str, ok: np.ndarray) -> pa.Array | None:
    """A text field as a string array (nulls = missing); rows where it holds anything but a
    string are marked not ok (the per-row path decides what they become)."""
    if name not in table.column_names:
        return None
    col = table.column(name).combine_chunks()
    if pa.types.is_string(col.type):
        return col
    ok &= ~np_mask(col.is_valid())
    return None


def _nonblank(arr: pa.Array | None, n: int) -> np.ndarray:
    """str(value).strip() != '' per row (null → False), exact Python semantics."""
    if arr is None:
        return np.zeros(n, bool)
    out = np_mask(pc.greater(pc.binary_length(arr), 0))
    ascii_ = np_mask(pc.string_is_ascii(arr))
    out &= ~(ascii_ & np_mask(pc.match_substring_regex(arr, _ASCII_BLANK)))
    for i in np.flatnonzero(out & ~ascii_):
        out[i] = bool(arr[int(i)].as_py().strip())
    return out


def normalize_array(arr: pa.Array) -> pa.Array:
    """normalize_text over a string array; Python only where needs_work_pattern matches."""
    needs = pc.match_substring_regex(arr, needs_work_pattern()).fill_null(False)
    idx = np.flatnonzero(np_mask(needs))
    if not idx.size:
        return arr
    fixed = [normalize_text(v) for v in arr.take(pa.array(idx)).to_pylist()]
    return pc.replace_with_mask(arr, needs, pa.array(fixed, pa.string()))


def _normalized_or_null(arr: pa.Array | None, n: int) -> pa.Array:
    """normalize_text(v) or None, per row."""
    if arr is None:
        return pa.nulls(n, pa.string())
    arr = normalize_array(arr)
    return pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar(None, pa.string()), arr)


def _concat_prompt(first: pa.Array, second: pa.Array | None, n: int) -> pa.Array:
    """f'{first}\\n\\n{second}' where second is not blank, else first."""
    add = _nonblank(second, n)
    if not add.any():
        return first
    joined = pc.binary_join_element_wise(first, "\n\n", second.fill_null(""), "")
    return pc.if_else(pa.array(add), joined, first)


# --- layouts → long message form ----------------------------------------------------------

class Messages:
    """Messages of n rows in row order: role codes, contents, per-row counts, plus meta."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ok = np.ones(n, bool)
        self.parts: list[tuple[np.ndarray, pa.Array, np.ndarray]] = []  # (rows, content, role)
        self.meta: dict[str, pa.Array] = {}
        self.extra_rows = np.zeros(n, bool)  # rows whose meta.extra comes from the raw line


def _pairwise(m: Messages, turns: list[tuple[int, pa.Array, np.ndarray]]) -> None:
    """Rows with a fixed sequence of optional turns: (role, content, present per row)."""
    rows = np.arange(m.n)
    for role, content, present in turns:
        m.parts.append((rows[present], content.filter(pa.array(present)),
                        np.full(int(present.sum()), role, np.int8)))


def _alpaca(t: pa.Table, m: Messages) -> None:
    instr, inp = _text_col(t, "instruction", m.ok), _text_col(t, "input", m.ok)
    out, system = _text_col(t, "output", m.ok), _text_col(t, "system", m.ok)
    if instr is None or out is None:
        m.ok[:] = False
        return
    every = np.ones(m.n, bool)
    sys_on = _nonblank(system, m.n)
    _pairwise(m, [(SYSTEM, system if system is not None else pa.nulls(m.n, pa.string()), sys_on),
                  (USER, _concat_prompt(instr, inp, m.n), every), (ASSISTANT, out, every)])


def _dolly(t: pa.Table, m: Messages) -> None:
    instr, ctx = _text_col(t, "instruction", m.ok), _text_col(t, "context", m.ok)
    resp, cat = _text_col(t, "response", m.ok), _text_col(t, "category", m.ok)
    if instr is None or resp is None:
        m.ok[:] = False
        return
    every = np.ones(m.n, bool)
    _pairwise(m, [(USER, _concat_prompt(instr, ctx, m.n), every), (ASSISTANT, resp, every)])
    if cat is not None:
        m.meta["category"] = cat
    m.meta["context"] = _normalized_or_null(ctx, m.n)


def qa_pair(t: pa.Table) -> tuple[str, str]:
    return next(((q, a) for q, a in QA_PAIRS if q in t.column_names and a in t.column_names),
                ("", ""))


def _qa(t: pa.Table, m: Messages) -> None:
    q, a = qa_pair(t)
    if not q:
        m.ok[:] = False
        return
    qs, ans = _text_col(t, q, m.ok), _text_col(t, a, m.ok)
    if qs is None or ans is None:
        m.ok[:] = False
        return
    every = np.ones(m.n, bool)
    _pairwise(m, [(USER, qs, every), (ASSISTANT, ans, every)])
    if a != "answer" and "answer" in t.column_names:
        m.meta["answer"] = _normalized_or_null(_text_col(t, "answer", m.ok), m.n)
    if "context" in t.column_names:
        ctx = _text_col(t, "context", m.ok)
        m.meta["context"] = _normalized_or_null(ctx, m.n)
        m.extra_rows |= ~np_mask(ctx.is_valid()) if ctx is not None else True


def _openai(t: pa.Table, m: Messages) -> None:
    col = t.column("messages").combine_chunks() if "messages" in t.column_names else None
    item = col.type.value_type if col is not None and pa.types.is_list(col.type) else None
    names = {item.field(i).name for i in range(item.num_fields)} if (
        item is not None and pa.types.is_struct(item)) else set()
    if not {"role", "content"} <= names or not pa.types.is_string(
            item.field("role").type) or not pa.types.is_string(item.field("content").type):
        m.ok[:] = False
        return
    lengths = col.value_lengths().fill_null(0).to_numpy().astype(np.int64)
    flat = pc.list_flatten(col)
    rows = np.repeat(np.arange(m.n), lengths)
    role_idx = pc.index_in(flat.field("role"), value_set=pa.array(list(_ROLE_CODE)))
    valid = np_mask(flat.is_valid()) & np_mask(role_idx.is_valid()) & np_mask(flat.field("content").is_valid())
    bad_rows = np.bincount(rows[~valid], minlength=m.n) > 0
    m.ok &= ~bad_rows & (lengths > 0)
    codes = np.array(list(_ROLE_CODE.values()), np.int8)[
        role_idx.fill_null(0).to_numpy().astype(np.int64)]
    m.parts.append((rows, flat.field("content").fill_null(""), codes))


CONVERTERS = {"alpaca": _alpaca, "dolly": _dolly, "qa": _qa, "openai": _openai}


def effective_layout(table: pa.Table, layout: str) -> str:
    """The adapter adapt_row would pick for a row holding every column (non-null)."""
    probe = {c: ([] if pa.types.is_list(table.schema.field(c).type) else "")
             for c in table.column_names}
    try:
        return resolve_layout(layout, probe)
    except AdapterError:  # `auto` and no known layout: every row goes its own way
        return layout


def deciding_columns(table: pa.Table) -> list[str]:
    """The table's columns whose (folded) name is a layout-deciding field."""
    return [c for c in table.column_names if fold_key(c) in DECIDING]
