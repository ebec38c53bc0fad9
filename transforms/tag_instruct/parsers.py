"""Parsers of the model's answers at each step; tolerant of noise, strict about content.

Each parser takes the raw text and, when the serving layer validated it against the step's
JSON Schema, the parsed object (used first). Noise around the JSON (code fences, prose before or
after, trailing commas) is tolerated; empty, truncated or wrongly shaped answers raise
`ParseError` whose `reason` becomes the reject reason. Pure, no Beam.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from transforms.llm.structured import json_span_end
from transforms.tag_instruct.tags import is_placeholder, normalize_tag, normalize_tags

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


class ParseError(ValueError):
    """An answer that cannot be used; `reason` is a short snake_case reject reason."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason

    @property
    def unreadable(self) -> bool:
        """The answer has not the shape asked for (no JSON object, a field missing or of the
        wrong type): the kit's `<step>_unparseable`. Otherwise a rule on what it says (too few
        tags, a placeholder tag, an empty question ...) with its own reason."""
        r = self.reason
        return r in _UNREADABLE or r.startswith("missing_") or r.endswith("_not_a_list")



_UNREADABLE = frozenset({"empty_output", "truncated_json", "invalid_json", "not_an_object"})


def _checked_tag(raw: str, max_words: int) -> str:
    """A proposed tag, normalized; ParseError('empty_tag' | 'tag_too_long' | 'placeholder_tag')."""
    norm = normalize_tag(raw)
    if not norm:
        raise ParseError("empty_tag", raw)
    if len(norm.split(" ")) > max_words:
        raise ParseError("tag_too_long", raw)
    if is_placeholder(norm):
        raise ParseError("placeholder_tag", raw)
    return norm

def _balanced_object(text: str) -> str | None:
    """The first balanced {...} in text (string-aware), or None."""
    start = text.find("{")
    while start != -1:
        end = json_span_end(text, start)
        if end is not None:
            return text[start:end]
        start = text.find("{", start + 1)
    return None


def parse_json_object(text: str | None) -> dict[str, Any]:
    """The JSON object in a model answer. Raises ParseError('empty_output' |
    'truncated_json' | 'invalid_json' | 'not_an_object')."""
    if text is None or not text.strip():
        raise ParseError("empty_output")
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    candidate = _balanced_object(body)
    if candidate is None:
        if "{" in body:
            raise ParseError("truncated_json", body[:200])
        try:
            value = json.loads(body)
        except json.JSONDecodeError as e:
            raise ParseError("invalid_json", str(e)) from e
        raise ParseError("not_an_object", type(value).__name__)
    for attempt in (candidate, _TRAILING_COMMA.sub(r"\1", candidate)):
        try:
            value = json.loads(attempt)
        except json.JSONDecodeError:
            continue
        if not isinstance(value, dict):
            raise ParseError("not_an_object", type(value).__name__)
        return value
    raise ParseError("invalid_json", candidate[:200])


def _object(text: str | None, parsed: Any) -> dict[str, Any]:
    if isinstance(parsed, dict):
        return parsed
    return parse_json_object(text)


def _string_list(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [p for p in re.split(r"[,;\n]", value)]
    if not isinstance(value, list):
        raise ParseError(f"{what}_not_a_list", type(value).__name__)
    out = []
    for item in value:
        if isinstance(item, dict):  # {"tag": "...", ...}
            item = item.get("tag") or item.get("name") or ""
        if isinstance(item, str | int | float):
            out.append(str(item))
    return out


def parse_compress(text: str | None, parsed: Any = None, n: int = 3,
                   max_words: int = 4) -> list[str]:
    """Exactly `n` normalized, distinct tags in the model's order (extra tags beyond n are
    cut). Raises ParseError('missing_tags' | 'too_few_tags' | ...)."""
    obj = _object(text, parsed)
    if "tags" not in obj:
        raise ParseError("missing_tags", ",".join(sorted(obj)))
    tags = normalize_tags(_string_list(obj["tags"], "tags"), max_words=max_words)
    if len(tags) < n:
        raise ParseError("too_few_tags", f"{len(tags)} usable of {n}")
    return tags[:n]


def parse_tagger(text: str | None, parsed: Any = None, max_tags: int = 12,
                 max_words: int = 4) -> list[str]:
    """The InsTag tagger's answer ({"tags": [{"tag", "explanation"}, ...]}, or plain strings)
    → 1 to `max_tags` normalized distinct tags, in the model's order."""
    obj = _object(text, parsed)
    if "tags" not in obj:
        raise ParseError("missing_tags", ",".join(sorted(obj)))
    tags = normalize_tags(_string_list(obj["tags"], "tags"), max_words=max_words)
    if not tags:
        raise ParseError("too_few_tags", "0 usable")
    return tags[:max_tags]


@dataclass(frozen=True)
class Candidate:
    tag: str          # normalized
    raw_tag: str      # as the model wrote it
    explanation: str

    def answer_json(self) -> str:
        """The canonical assistant answer for this candidate (used in preference pairs)."""
        return json.dumps({"tag": self.raw_tag, "explanation": self.explanation},
                          ensure_ascii=False)

    def answer_text(self, answer_format: str = "json") -> str:
        """The answer in the format the policy was asked for (brackets: the paper's
        `[Explanation] ...` then `[New Tag] ...`)."""
        if answer_format == "brackets":
            return f"[Explanation] {self.explanation}\n[New Tag] {self.raw_tag}"
        return self.answer_json()


def parse_candidate(text: str | None, parsed: Any = None, max_words: int = 4) -> Candidate:
    """One proposed tag with its explanation. Raises ParseError('missing_tag' | 'empty_tag' |
    'tag_too_long' | 'placeholder_tag' | ...)."""
    obj = _object(text, parsed)
    raw = obj.get("tag", obj.get("new_tag"))
    if not isinstance(raw, str):
        raise ParseError("missing_tag", ",".join(sorted(obj)))
    norm = _checked_tag(raw, max_words)
    explanation = obj.get("explanation", "")
    explanation = explanation.strip() if isinstance(explanation, str) else ""
    return Candidate(tag=norm, raw_tag=raw.strip(), explanation=explanation)


def parse_question(text: str | None, parsed: Any = None) -> str:
    """The rebuilt question. Raises ParseError('missing_question' | 'empty_question' | ...)."""
    return _question(_object(text, parsed))


def _question(obj: dict[str, Any]) -> str:
    value = obj.get("question", obj.get("new_question", obj.get("instruction")))
    if not isinstance(value, str):
        raise ParseError("missing_question", ",".join(sorted(obj)))
    value = value.strip()
    if not value:
        raise ParseError("empty_question")
    return value


def parse_reconstruct(text: str | None, parsed: Any, offered: list[str], new_tag: str,
                      max_words: int = 4) -> tuple[list[str], str]:
    """(tags the teacher kept, question). Kept tags are normalized and must be among `offered`
    (the old tags and the new one); others are ignored. Raises ParseError('dropped_new_tag')
    when the new tag is not kept, and the errors of `parse_question`."""
    obj = _object(text, parsed)
    question = _question(obj)
    raw = obj.get("tags_used", obj.get("tags", []))
    kept = [t for t in normalize_tags(_string_list(raw, "tags_used"), max_words=max_words)
            if t in offered]
    if new_tag not in kept:
        raise ParseError("dropped_new_tag", ", ".join(kept))
    return kept, question


def parse_response(text: str | None) -> str:
    """The free-text answer, stripped. Raises ParseError('empty_response')."""
    value = (text or "").strip()
    if not value:
        raise ParseError("empty_response")
    return value


# --- the paper's bracket formats (answer_format: brackets) ---------------------------------

def _marker(name: str) -> re.Pattern[str]:
    """`[Name]`, tolerating case, markdown bold/heading marks and a trailing colon."""
    words = r"\s+".join(re.escape(w) for w in name.split())
    return re.compile(rf"(?:#+\s*)?\**\s*\[\s*{words}\s*\]\s*\**\s*:?", re.IGNORECASE)


_TAGS, _EXPL, _NEW_TAG, _NEW_Q = (_marker(n) for n in
                                  ("Tags", "Explanation", "New Tag", "New Question"))
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def _after_last(pattern: re.Pattern[str], text: str) -> str | None:
    found = list(pattern.finditer(text))
    return text[found[-1].end():] if found else None


def _clean_tag(raw: str) -> str:
    return _BULLET.sub("", raw).strip().strip("*`\"'[]").strip()


def parse_compress_brackets(text: str | None) -> list[str]:
    """A comma list `tag1, tag2, tag3` (after a `[Tags]` marker when the model repeats one;
    one tag per line also accepted) → its distinct tags as written (bullets, quotes and
    markdown stripped), as many as given. Raises ParseError('empty_output' | 'too_few_tags')."""
    if text is None or not text.strip():
        raise ParseError("empty_output")
    body = _after_last(_TAGS, text)
    body = text if body is None else body
    lines = [ln for ln in body.strip().splitlines() if ln.strip()]
    if not lines:
        raise ParseError("too_few_tags", "0 usable")
    raw = lines[0].split(",") if "," in lines[0] else lines
    seen: dict[str, str] = {}
    for tag in (_clean_tag(t) for t in raw):
        if tag:
            seen.setdefault(tag.lower(), tag)
    tags = list(seen.values())
    if not tags:
        raise ParseError("too_few_tags", "0 usable")
    return tags


def parse_candidate_brackets(text: str | None, max_words: int = 4,
                             need_explanation: bool = False) -> Candidate:
    """`[Explanation] ... [New Tag] tag` → Candidate (the tag = first non-empty line after
    [New Tag]). Raises ParseError('empty_output' | 'missing_tag' | 'missing_explanation' |
    'empty_tag' | 'tag_too_long' | 'placeholder_tag')."""
    if text is None or not text.strip():
        raise ParseError("empty_output")
    tag_part = _after_last(_NEW_TAG, text)
    if tag_part is None:
        raise ParseError("missing_tag", text[:200])
    lines = [ln for ln in tag_part.splitlines() if ln.strip()]
    raw = _clean_tag(lines[0]) if lines else ""
    explanation = ""
    start = _EXPL.search(text)
    if start is not None:
        end = list(_NEW_TAG.finditer(text))[-1].start()
        explanation = text[start.end():end].strip() if end > start.end() else ""
    if need_explanation and not explanation:
        raise ParseError("missing_explanation", text[:200])
    return Candidate(tag=_checked_tag(raw, max_words), raw_tag=raw, explanation=explanation)


def parse_question_brackets(text: str | None) -> str:
    """The text after `[New Question]` (the prompt ends with that marker, so usually the whole
    answer). Raises ParseError('empty_question')."""
    body = _after_last(_NEW_Q, text or "")
    value = (text or "" if body is None else body).strip()
    if not value:
        raise ParseError("empty_question")
    return value
