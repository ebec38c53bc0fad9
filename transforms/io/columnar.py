"""Columnar fast path of ingest: one JSONL split → canonical Example batches, column-wise.

Reads the split's bytes once, parses the screened lines in one `pyarrow.json` call and converts
the layouts alpaca, dolly, qa and openai with Arrow compute: texts go through
`normalize_text` only where a cheap RE2 check says they may change, ids are hashed from a
column-built encoding (schemas/ids.py). Every row it cannot prove equivalent to the per-row
reference (adapters.py + canonical.py) — malformed, oversized, blank-text, mistyped rows,
nulls in layout-deciding fields, unknown roles, rows of another layout — is handed to the
caller's per-row function, so every row ends in a batch or the dead letter exactly as on the
per-row path, and the batches are identical (same rows, order, chunking and schema).
`convert_jsonl` returns None for splits it does not handle (other formats/layouts, field_map).
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.ids import GS, ID_BYTES, RS, US
from schemas.records import EXAMPLE_SCHEMA, examples_to_batch, pairs_to_batch
from schemas.text import normalize_text
from transforms.io._jsonl_block import Lines, parse_lines, screen
from transforms.io.adapters import ADAPTERS, OPENAI_ROLES, QA_PAIRS, _layout_of
from transforms.io.readers import FileSplit, _loads, _parse_line

FAST_LAYOUTS = ("alpaca", "dolly", "qa", "openai")
# Fields whose presence or list-ness decides a row's layout (adapters._layout_of, _qa): a
# null there may be a missing key or a JSON null, which Arrow cannot tell apart → per row.
DECIDING = frozenset({"messages", "conversations", "conversation", "chosen", "rejected",
                      "instruction", "response", "output"} | {f for p in QA_PAIRS for f in p})
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


RowFn = Callable[[int, bytes, Any], tuple[str, Any]]  # per-row reference: (kind, value)


# --- column helpers -----------------------------------------------------------------------

def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _text_col(table: pa.Table, name: str, ok: np.ndarray) -> pa.Array | None:
    """A text field as a string array (nulls = missing); rows where it holds anything but a
    string are marked not ok (the per-row path decides what they become)."""
    if name not in table.column_names:
        return None
    col = table.column(name).combine_chunks()
    if pa.types.is_string(col.type):
        return col
    ok &= ~_np(col.is_valid())
    return None


def _nonblank(arr: pa.Array | None, n: int) -> np.ndarray:
    """str(value).strip() != '' per row (null → False), exact Python semantics."""
    if arr is None:
        return np.zeros(n, bool)
    out = _np(pc.greater(pc.binary_length(arr), 0))
    ascii_ = _np(pc.string_is_ascii(arr))
    out &= ~(ascii_ & _np(pc.match_substring_regex(arr, _ASCII_BLANK)))
    for i in np.flatnonzero(out & ~ascii_):
        out[i] = bool(arr[int(i)].as_py().strip())
    return out


def normalize_array(arr: pa.Array) -> pa.Array:
    """normalize_text over a string array; Python only where needs_work_pattern matches."""
    needs = pc.match_substring_regex(arr, needs_work_pattern()).fill_null(False)
    idx = np.flatnonzero(_np(needs))
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


def _qa_pair(t: pa.Table) -> tuple[str, str]:
    return next(((q, a) for q, a in QA_PAIRS if q in t.column_names and a in t.column_names),
                ("", ""))


def _qa(t: pa.Table, m: Messages) -> None:
    q, a = _qa_pair(t)
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
        m.extra_rows |= ~_np(ctx.is_valid()) if ctx is not None else True


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
    valid = _np(flat.is_valid()) & _np(role_idx.is_valid()) & _np(flat.field("content").is_valid())
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
    own = _layout_of(probe)
    return own if own is not None and own != layout else layout


# --- long message form → Example batch ----------------------------------------------------

def _hashes(enc: pa.Array) -> list[str]:
    """blake2b-16 hex of every value of a string array, straight from its buffers."""
    width = np.int64 if pa.types.is_large_string(enc.type) else np.int32
    offs = np.frombuffer(enc.buffers()[1], width)[enc.offset:enc.offset + len(enc) + 1].tolist()
    data = memoryview(enc.buffers()[2]) if enc.buffers()[2] is not None else memoryview(b"")
    b2 = hashlib.blake2b
    return [b2(data[s:e], digest_size=ID_BYTES).hexdigest() for s, e in zip(offs[:-1], offs[1:], strict=True)]


def _fields(struct: pa.DataType) -> list[pa.Field]:
    return [struct.field(i) for i in range(struct.num_fields)]


def _empty_lists(k: int, typ: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(np.zeros(k + 1, np.int32)),
                                    pa.array([], typ.value_type), type=typ)


def _meta(m: Messages, keep: np.ndarray, extra: list[str | None]) -> pa.StructArray:
    k = int(keep.sum())
    mask = pa.array(keep)
    meta_t = EXAMPLE_SCHEMA.field("meta").type
    lineage_t = meta_t.field("lineage").type
    lineage = pa.StructArray.from_arrays(
        [_empty_lists(k, f.type) if f.name == "parent_ids" else pa.nulls(k, f.type)
         for f in _fields(lineage_t)], fields=_fields(lineage_t))
    cols = {"tags": _empty_lists(k, meta_t.field("tags").type), "lineage": lineage,
            "extra": pa.array(extra, pa.string())}
    for f in ("category", "context", "answer"):
        cols[f] = m.meta[f].filter(mask) if f in m.meta else pa.nulls(k, pa.string())
    return pa.StructArray.from_arrays([cols[f.name] for f in _fields(meta_t)],
                                      fields=_fields(meta_t))


def examples_from_table(table: pa.Table, layout: str, raws: Sequence[bytes],
                        rows: np.ndarray, dataset: str, file: str
                        ) -> tuple[pa.RecordBatch, np.ndarray]:
    """(batch of the rows converted here, in input order; ok mask over the table's rows).
    Rows not ok must go through the per-row path."""
    n = table.num_rows
    layout = effective_layout(table, layout)
    m = Messages(n)
    if layout not in CONVERTERS:
        return _empty(), np.zeros(n, bool)
    for c in DECIDING.intersection(table.column_names):
        m.ok &= _np(table.column(c).is_valid())
    CONVERTERS[layout](table, m)
    used = USED.get(layout) or {*_qa_pair(table), "answer", "context"}
    if set(table.column_names) - used:
        m.extra_rows[:] = True
    if not m.ok.any():
        return _empty(), m.ok
    # Messages in row order (parts are turns in order; a stable sort keeps it).
    msg_rows = np.concatenate([p[0] for p in m.parts])
    contents = pa.concat_arrays([p[1] for p in m.parts])
    roles = np.concatenate([p[2] for p in m.parts])
    if len(m.parts) > 1:
        order = np.argsort(msg_rows, kind="stable")
        msg_rows, roles, contents = msg_rows[order], roles[order], contents.take(pa.array(order))
    contents = normalize_array(contents)
    talk = (roles == USER) | (roles == ASSISTANT)
    empty = _np(pc.equal(pc.binary_length(contents), 0)) & talk
    m.ok &= np.bincount(msg_rows[empty], minlength=n) == 0
    m.ok &= np.bincount(msg_rows[roles == USER], minlength=n) > 0
    m.ok &= np.bincount(msg_rows[roles == ASSISTANT], minlength=n) > 0
    extra: list[str | None] = []
    adapter = ADAPTERS[layout]
    for j in np.flatnonzero(m.ok):
        if not m.extra_rows[j]:
            extra.append(None)
            continue
        try:  # the reference's own parse and field selection, for these rows only
            extra.append(adapter(_loads(raws[j])).meta.get("extra"))
        except (ValueError, TypeError, AttributeError):
            m.ok[j] = False
    keep = m.ok
    sel = keep[msg_rows]
    if not sel.all():
        roles, contents = roles[sel], contents.filter(pa.array(sel))
    counts = np.bincount(msg_rows[sel], minlength=n)[keep]
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    role_arr = pa.array(ROLE_NAMES).take(pa.array(roles))
    per_msg = pc.binary_join_element_wise(role_arr, contents, US)
    encoded = pc.binary_join_element_wise(
        "example", pc.binary_join(pa.ListArray.from_arrays(offsets, per_msg), RS), GS)
    msg_t = EXAMPLE_SCHEMA.field("messages").type
    messages = pa.ListArray.from_arrays(
        offsets, pa.StructArray.from_arrays([role_arr, contents],
                                            fields=_fields(msg_t.value_type)), type=msg_t)
    k = int(keep.sum())
    src_t = EXAMPLE_SCHEMA.field("source").type
    source = pa.StructArray.from_arrays(
        [pa.repeat(pa.scalar(dataset, pa.string()), k), pa.repeat(pa.scalar(file, pa.string()), k),
         pa.array(rows[keep], pa.int64())], fields=_fields(src_t))
    batch = pa.RecordBatch.from_arrays(
        [pa.array(_hashes(encoded), pa.string()), messages, source, _meta(m, keep, extra)],
        schema=EXAMPLE_SCHEMA)
    return batch, keep


def _empty() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=EXAMPLE_SCHEMA)


# --- one split ----------------------------------------------------------------------------

def _chunks(table: pa.Table, order: np.ndarray, size: int) -> Iterator[pa.RecordBatch]:
    """Compact batches of `size` rows in `order` (slices would pickle the whole buffers)."""
    for s in range(0, len(order), size):
        part = table.take(pa.array(order[s:s + size])).combine_chunks()
        yield part.to_batches()[0] if part.num_rows else _empty()


def convert_jsonl(split: FileSplit, source: Any, ingest: Any, dataset: str, per_row: RowFn
                  ) -> Iterator[tuple[str, Any]] | None:
    """('example', batch) / ('pair', batch) / ('deadletter', entry) for a JSONL split, or
    None when the split is not for this path."""
    if split.format != "jsonl" or split.layout not in FAST_LAYOUTS or source.field_map:
        return None
    return _convert(split, ingest, dataset, per_row)


def _convert(split: FileSplit, ingest: Any, dataset: str, per_row: RowFn
             ) -> Iterator[tuple[str, Any]]:
    with open(split.path, "rb") as f:
        f.seek(split.start)
        data = f.read(split.end - split.start)
    limit = None if split.limit is None else split.limit - split.first_row
    lines = Lines(data, limit)
    max_bytes = ingest.max_record_bytes
    cand, slow = screen(lines, max_bytes)
    table, cand, slow = parse_lines(lines, cand, slow)
    fast = _empty()
    if table is not None:
        fast, ok = examples_from_table(table, split.layout, _Raws(lines, cand),
                                       split.first_row + cand, dataset, split.path)
        if not ok.all():
            slow = np.sort(np.concatenate([slow, cand[~ok]]))
    examples: list[dict] = []
    pairs: list[dict] = []
    for i in slow.tolist():
        raw = lines[i]
        kind, value = per_row(split.first_row + i, raw, _parse_line(raw, max_bytes))
        if kind == "deadletter":
            yield kind, value
        else:
            (examples if kind == "example" else pairs).append(value)
    size = ingest.batch_rows
    for s in range(0, len(pairs), size):
        yield "pair", pairs_to_batch(pairs[s:s + size])
    if examples:
        extra = examples_to_batch(examples)
        if not extra.schema.equals(EXAMPLE_SCHEMA):  # cannot happen with today's adapters
            examples = [*fast.to_pylist(), *examples]
            examples.sort(key=lambda r: r["source"]["row"])
            for s in range(0, len(examples), size):
                yield "example", examples_to_batch(examples[s:s + size])
            return
        table = pa.Table.from_batches([fast, extra])
        rows = table.column("source").combine_chunks().field("row").to_numpy()
        order = np.argsort(rows, kind="stable")
    else:
        table = pa.Table.from_batches([fast])
        order = np.arange(fast.num_rows)
    for batch in _chunks(table, order, size):
        yield "example", batch


class _Raws:
    """Raw payload of the j-th parsed row, sliced on demand."""

    def __init__(self, lines: Lines, idx: np.ndarray) -> None:
        self._lines, self._idx = lines, idx

    def __getitem__(self, j: int) -> bytes:
        return self._lines[int(self._idx[j])]
