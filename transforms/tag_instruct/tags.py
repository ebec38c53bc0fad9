"""Tag normalization: one spelling per concept so the tag space stays compact.

`normalize_tag` folds case, Unicode forms, punctuation and whitespace, and folds simple English
plurals on the last word ("Data Structures" → "data structure"). Pure functions, no Beam.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# Characters kept inside a tag besides letters, digits and spaces: c++, c#, .net stay distinct.
_DROP = re.compile(r"[^\w\s+#]", re.UNICODE)
_SEPARATORS = re.compile(r"[_\-/]+")
_WS = re.compile(r"\s+")

# Words ending in "s" that are not plurals (or whose singular reads wrong).
_NOT_PLURAL = frozenset({
    "analysis", "basis", "bus", "chaos", "class", "news", "series", "species", "status",
    "thesis", "hypothesis", "synthesis", "diagnosis", "emphasis", "process", "access",
    "success", "business", "progress", "address", "always", "perhaps", "gas", "lens",
    "plus", "corpus", "virus", "focus", "bonus", "census", "consensus", "campus", "canvas",
    "atlas", "alias", "bias", "iris", "axis", "crisis", "this", "its", "is", "was", "has",
    "does", "less", "across", "yes", "us", "aws", "dos", "ios", "macos", "js", "css",
})
_SINGULAR_ES = ("ches", "shes", "sses", "xes", "zzes")
# Words that only echo the answer format ("tag 1", "json key", "new tag"): a tag made of
# nothing else carries no meaning and is dropped.
_FORMAT_WORDS = frozenset({"tag", "new", "json", "key", "value", "object", "string", "list",
                           "array", "example", "placeholder"})
_DIGITS = re.compile(r"^[\d\W_]+$")


def singular(word: str) -> str:
    """Simple plural folding of one lower-case word; leaves non-plurals unchanged."""
    if len(word) <= 3 or word in _NOT_PLURAL or not word.isalpha():
        return word
    if word.endswith(("ics", "ss", "us", "is", "ous")):
        return word  # mathematics, physics, class, status, analysis, various
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"  # strategies → strategy
    if word.endswith(_SINGULAR_ES):
        return word[:-2]  # matches → match, boxes → box
    if word.endswith("s"):
        return word[:-1]
    return word


def normalize_tag(tag: str) -> str:
    """Canonical form of one tag: NFKC, casefold, separators to spaces, punctuation dropped
    (except + and #), whitespace collapsed, last word singular. '' when nothing is left."""
    text = unicodedata.normalize("NFKC", str(tag or "")).casefold()
    text = _SEPARATORS.sub(" ", text)
    text = _DROP.sub(" ", text)
    words = _WS.sub(" ", text).strip().split(" ")
    if not words or words == [""]:
        return ""
    words[-1] = singular(words[-1])
    return " ".join(words)


def is_placeholder(tag: str) -> bool:
    """A normalized tag made only of format words and numbers ('tag 1', 'tag2', 'json')."""
    return all(w.rstrip("0123456789") in _FORMAT_WORDS or _DIGITS.match(w)
               for w in tag.split(" "))


def normalize_tags(tags: Iterable[str], max_words: int = 4) -> list[str]:
    """Normalized tags in their given order; empty, placeholder ('tag 1'), too long
    (> max_words) and repeated ones dropped."""
    seen: set[str] = set()
    out: list[str] = []
    for tag in tags:
        norm = normalize_tag(tag)
        if not norm or len(norm.split(" ")) > max_words or norm in seen or is_placeholder(norm):
            continue
        seen.add(norm)
        out.append(norm)
    return out


def overlaps(tag: str, existing: Iterable[str]) -> bool:
    """True when `tag` (normalized) equals an existing tag or is a whole-word part of one
    (or contains one): 'sorting' overlaps 'sorting algorithm'."""
    words = f" {tag} "
    for other in existing:
        padded = f" {other} "
        if tag == other or words in padded or padded in words:
            return True
    return False
