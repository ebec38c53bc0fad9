"""Text → normalized word tokens, vectorized (numpy over the UTF-8 bytes), and a plain-Python
twin with the same result.

Normalization: NFKD, combining marks removed (accents folded), lower case, every run of digits
→ "0" when numbers are masked; tokens are maximal runs of letters, digits and underscores.
ASCII texts (the common case) are split with byte lookups in numpy; texts with other characters
first go through pyarrow's Unicode kernels, which also turn non-word characters into spaces, so
that every byte >= 0x80 left is part of a word.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NUMBER_TOKEN = "0"
_PY_DIGITS = re.compile(r"\d+")
_PY_TOKEN = re.compile(r"\w+")

_WORD = np.zeros(256, bool)
for _lo, _hi in ((ord("a"), ord("z")), (ord("A"), ord("Z")), (ord("0"), ord("9"))):
    _WORD[_lo:_hi + 1] = True
_WORD[ord("_")] = True
_WORD[0x80:] = True
_DIGIT = np.zeros(256, bool)
_DIGIT[ord("0"):ord("9") + 1] = True


def _unicode_prepass(texts: pa.Array, mask_numbers: bool) -> pa.Array:
    out = pc.utf8_normalize(texts, "NFKD")
    out = pc.replace_substring_regex(out, r"\pM+", "")
    out = pc.utf8_lower(out)
    if mask_numbers:
        out = pc.replace_substring_regex(out, r"\p{Nd}+", NUMBER_TOKEN)
    return pc.replace_substring_regex(out, r"[^\pL\pN_\x00-\x7f]+", " ")


def _prepare(texts: pa.Array, mask_numbers: bool) -> pa.Array:
    texts = pc.fill_null(texts.cast(pa.string()), "")
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    ascii_mask = pc.string_is_ascii(texts)
    if not pc.all(ascii_mask).as_py():
        other = pc.invert(ascii_mask)
        texts = pc.replace_with_mask(texts, other,
                                     _unicode_prepass(texts.filter(other), mask_numbers))
    return pc.ascii_lower(texts)


def tokenize_array(texts: pa.Array, mask_numbers: bool) -> tuple[pa.Array, np.ndarray]:
    """Tokens of every text, flattened in order (a string array), and each token's text index."""
    texts = _prepare(texts, mask_numbers)
    n = len(texts)
    offsets = np.frombuffer(texts.buffers()[1], np.int32, count=n + 1, offset=texts.offset * 4)
    lo, hi = int(offsets[0]), int(offsets[-1])
    if hi == lo:
        return pa.array([], pa.string()), np.zeros(0, np.int64)
    data = np.frombuffer(texts.buffers()[2], np.uint8, count=hi - lo, offset=lo)
    rel = (offsets - lo).astype(np.int64)
    text_start = np.zeros(hi - lo + 1, bool)
    text_start[rel] = True
    text_start = text_start[:-1]
    word = _WORD[data]
    prev_word = np.empty_like(word)
    prev_word[0] = False
    prev_word[1:] = word[:-1]
    prev_word &= ~text_start
    starts = word & ~prev_word
    keep = word
    if mask_numbers:
        digit = _DIGIT[data]
        data = np.where(digit, np.uint8(ord(NUMBER_TOKEN)), data)
        prev_digit = np.empty_like(digit)
        prev_digit[0] = False
        prev_digit[1:] = digit[:-1]
        keep = word & ~(digit & prev_digit & ~text_start)
    start_pos = np.flatnonzero(starts)
    kept = data[keep]
    tok_off = np.append(np.flatnonzero(starts[keep]), len(kept)).astype(np.int32)
    tokens = pa.StringArray.from_buffers(len(start_pos), pa.py_buffer(tok_off),
                                         pa.py_buffer(kept.tobytes()))
    doc = np.searchsorted(rel, start_pos, side="right") - 1
    return tokens, doc.astype(np.int64)


def tokenize_py(text: str, mask_numbers: bool) -> list[str]:
    """The same tokens as `tokenize_array`, in plain Python (reference and brute force)."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("M")).lower()
    if mask_numbers:
        text = _PY_DIGITS.sub(NUMBER_TOKEN, text)
    return _PY_TOKEN.findall(text)
