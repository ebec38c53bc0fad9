"""Per-row character-class counts of an Arrow string array, without a per-row loop: the UTF-8
bytes are decoded to code points with numpy, mapped through one code table built once per
process from `unicodedata` (so the classes are exactly those of reference.py), and counted
with a single bincount over (row, code)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
import pyarrow as pa

from transforms.quality import _defs as D

LETTER, ALNUM, UPPER, SPACE = 1, 2, 4, 8  # low nibble of a code; the high nibble: script id
SCRIPT_IDS = {name: i + 1 for i, name in enumerate(D.SCRIPTS)}  # 0: not a letter
OTHER_ID = len(SCRIPT_IDS) + 1  # a letter of no listed script
COUNT_NAMES = ["chars", "space", "letter", "alnum", "upper",
               *[f"script_{s}" for s in D.SCRIPTS], "script_other"]


@lru_cache(maxsize=1)
def code_table() -> np.ndarray:
    """uint8 code (class bits | script id << 4) of every code point."""
    table = np.zeros(0x110000, dtype=np.uint8)
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        cat = unicodedata.category(ch)[0]
        code = 0
        if cat == "L":
            code = LETTER | ALNUM | (OTHER_ID << 4)
        elif cat == "N":
            code = ALNUM
        if ch.isupper():
            code |= UPPER
        table[cp] = code
    for ch in D.WS_CHARS:
        table[ord(ch)] |= SPACE
    for name, ranges in D.SCRIPTS.items():
        for lo, hi in ranges:
            seg = table[lo:hi + 1]
            is_other = (seg >> 4) == OTHER_ID
            seg[is_other] = (seg[is_other] & 0x0F) | (SCRIPT_IDS[name] << 4)
    return table


def _codepoints(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(code points, row of each) of a large_string array."""
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset:arr.offset + n + 1]
    if bufs[2] is None or offsets[-1] == offsets[0]:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    data = np.frombuffer(bufs[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    byte_row = np.repeat(np.arange(n), np.diff(offsets))
    if data.max() < 0x80:  # ASCII: one byte, one character
        return data, byte_row
    b = np.concatenate([data.astype(np.int32), np.zeros(3, np.int32)])
    lead = np.nonzero((data & 0xC0) != 0x80)[0]
    b0 = b[lead]
    cp = b0.copy()
    for min_lead, mask, extra in ((0xC0, 0x1F, 1), (0xE0, 0x0F, 2), (0xF0, 0x07, 3)):
        sel = b0 >= min_lead
        at = lead[sel]
        value = b0[sel] & mask
        for k in range(1, extra + 1):
            value = (value << 6) | (b[at + k] & 0x3F)
        cp[sel] = value
    return cp, byte_row[lead]


def char_counts(arr: pa.Array | pa.ChunkedArray) -> dict[str, np.ndarray]:
    """Per row (int64 arrays): chars, space, letter, alnum, upper, script_<name>,
    script_other (letters), and words (maximal runs of non-space characters)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    cp, row = _codepoints(arr)
    codes = code_table()[cp]
    used = np.nonzero(np.bincount(codes, minlength=256))[0]
    slot = np.zeros(256, dtype=np.int64)
    slot[used] = np.arange(len(used))
    per_code = np.bincount(row * len(used) + slot[codes], minlength=n * len(used))
    per_code = per_code.reshape(n, len(used)).astype(np.float64)
    cols = [np.ones(len(used), bool)]
    cols += [(used & bit) > 0 for bit in (SPACE, LETTER, ALNUM, UPPER)]
    cols += [(used >> 4) == i for i in [*SCRIPT_IDS.values(), OTHER_ID]]
    summed = np.rint(per_code @ np.stack(cols, axis=1).astype(np.float64)).astype(np.int64)
    out = {name: summed[:, j] for j, name in enumerate(COUNT_NAMES)}
    if len(codes):
        space = (codes & SPACE) > 0
        starts = ~space
        starts[1:] &= space[:-1] | (row[1:] != row[:-1])
        out["words"] = np.bincount(row[starts], minlength=n).astype(np.int64)
    else:
        out["words"] = np.zeros(n, dtype=np.int64)
    return out
