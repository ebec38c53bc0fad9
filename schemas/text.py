"""Text normalization shared by ids, ingest and every stage that compares texts."""

from __future__ import annotations

import re
import unicodedata

# Zero-width and other invisible format characters that carry no content.
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
# C0/C1 control characters except tab and newline.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SPACES = re.compile("[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_TRAILING = re.compile("[ \t]+\n")
_MANY_BLANK = re.compile("\n{3,}")
_FOLD_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_WS = re.compile(r"\s+")


def is_canonical(text: str) -> bool:
    """True when `normalize_text` would return `text` unchanged (cheap check).

    ' ' is the only character both printable and whitespace, so `isprintable()` rules out
    tabs, CR, control, invisible and exotic-space characters in one C-level pass."""
    return bool(text) and (
        "  " not in text and " \n" not in text and "\n\n\n" not in text
        and not text[0].isspace() and not text[-1].isspace()
        and text.replace("\n", "").isprintable()
        and (text.isascii() or unicodedata.is_normalized("NFC", text)))


def normalize_text(text: str) -> str:
    """Canonical form of a message text: NFC, unified line endings, invisible and control
    characters removed, exotic spaces made plain, trailing spaces and runs of blank lines
    trimmed. Leading indentation inside lines is kept (code stays valid)."""
    if not text:
        return ""
    if is_canonical(text):
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _CONTROL.sub("", text)
    # Compose after removals: a removed character may have separated a base from its mark.
    text = unicodedata.normalize("NFC", text)
    text = "\n".join(_leading_kept(line) for line in text.split("\n"))
    text = _TRAILING.sub("\n", text)
    text = _MANY_BLANK.sub("\n\n", text)
    return text.strip()


def _leading_kept(line: str) -> str:
    stripped = line.lstrip(" \t")
    indent = line[: len(line) - len(stripped)]
    return indent + _SPACES.sub(" ", stripped).rstrip()


def fold_text(text: str) -> str:
    """Aggressive folding for exact-duplicate keys: NFKC, casefold, punctuation removed,
    whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    text = _FOLD_PUNCT.sub(" ", text)
    return _WS.sub(" ", text).strip()
