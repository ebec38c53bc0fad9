"""Tag utility from a tagged corpus: how much answer a tag tends to demand.

Each example's response length in tokens is split evenly across its tags; a tag's utility is
the mean of those shares over its occurrences (TAG-INSTRUCT: response tokens / #tags). Tags
seen at least `min_count` times (paper: count > 2) form the pool; its top K and bottom K by
utility are the reference sets the expansion reward compares candidates with, and the table
`refinery tag-utility` writes. Partial sums (tag → [sum of shares, occurrences]) are updated
in place per row, O(tags of the row), and merge by addition, so a Beam CombineFn builds the
table from shards. Near-identical tags can be merged by embedding similarity. Pure, no Beam.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from transforms.tag_instruct.tags import normalize_tag

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

_DEFAULT_COUNT = 1000
Partial = dict[str, list[float]]  # tag → [sum of shares, occurrences]


def count_tokens(text: str) -> int:
    """Word and punctuation tokens of `text` (a tokenizer-free, model-independent count)."""
    return len(_TOKEN.findall(text or ""))


def add_row(acc: Partial, tags: Sequence[str], tokens: int) -> Partial:
    """Add one (tags, response tokens) row to `acc` in place; O(len(tags)). Empty tags are
    ignored and a tag repeated in the row counts once; a row without tags adds nothing."""
    uniq = list(dict.fromkeys(t for t in tags if t))
    if uniq:
        share = float(tokens) / len(uniq)
        for tag in uniq:
            entry = acc.get(tag)
            if entry is None:
                acc[tag] = [share, 1.0]
            else:
                entry[0] += share
                entry[1] += 1.0
    return acc


def utility_partial(rows: Iterable[tuple[Sequence[str], int]]) -> Partial:
    """(tags, response tokens) rows → per-tag [sum of token shares, occurrences]."""
    acc: Partial = {}
    for tags, tokens in rows:
        add_row(acc, tags, tokens)
    return acc


def merge_into(acc: Partial, part: Mapping[str, Sequence[float]]) -> Partial:
    """Add `part` to `acc` in place; O(tags of part)."""
    for tag, (s, c) in part.items():
        entry = acc.get(tag)
        if entry is None:
            acc[tag] = [float(s), float(c)]
        else:
            entry[0] += s
            entry[1] += c
    return acc


def merge_partials(partials: Iterable[Partial]) -> Partial:
    out: Partial = {}
    for part in partials:
        merge_into(out, part)
    return out


def aggregate_similar(partial: Partial, embed: Callable[[Sequence[str]], np.ndarray],
                      threshold: float) -> tuple[Partial, dict[str, str]]:
    """Merge near-identical tags: in order of occurrences (then tag), a tag whose embedding
    has cosine >= `threshold` with an earlier kept tag joins it. Returns (merged partial,
    {merged tag: the tag it joined}). `embed` gives L2-normalized rows."""
    order = sorted(partial, key=lambda t: (-partial[t][1], t))
    if len(order) < 2:
        return {t: list(v) for t, v in partial.items()}, {}
    vectors = np.asarray(embed(order), dtype=np.float64)
    kept: list[int] = []
    merged: Partial = {}
    into: dict[str, str] = {}
    for i, tag in enumerate(order):
        if kept:
            sims = vectors[kept] @ vectors[i]
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                target = order[kept[j]]
                merge_into(merged, {target: partial[tag]})
                into[tag] = target
                continue
        kept.append(i)
        merged[tag] = list(partial[tag])
    return merged, into


@dataclass(frozen=True)
class UtilityTable:
    """utility[tag] = mean token share; count[tag] = occurrences."""

    utility: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_partial(cls, partial: Mapping[str, Sequence[float]]) -> UtilityTable:
        return cls(utility={t: s / c for t, (s, c) in partial.items() if c > 0},
                   count={t: int(c) for t, (_, c) in partial.items() if c > 0})

    def to_json(self) -> dict[str, dict[str, float]]:
        return {t: {"utility": round(self.utility[t], 6), "count": self.count[t]}
                for t in sorted(self.utility)}

    def to_jsonl(self) -> str:
        """The authors' `tag_values.jsonl` layout: one {tag, count, total_value, average_value}
        per line, highest average_value first (ties by tag)."""
        order = sorted(self.utility, key=lambda t: (-self.utility[t], t))
        return "".join(json.dumps({"tag": t, "count": self.count[t],
                                   "total_value": round(self.utility[t] * self.count[t], 6),
                                   "average_value": round(self.utility[t], 6)},
                                  ensure_ascii=False) + "\n" for t in order)


@dataclass(frozen=True)
class ReferenceSets:
    """The top-K and bottom-K tags of the pool, best first / worst first."""

    top: tuple[str, ...]
    bottom: tuple[str, ...]
    pool_size: int
    min_count: int  # the occurrence threshold actually applied (see `reference_sets`)

    def as_dict(self) -> dict[str, object]:
        return {"top": list(self.top), "bottom": list(self.bottom),
                "pool_size": self.pool_size, "min_count": self.min_count}


def reference_sets(table: UtilityTable, k: int, min_count: int = 3,
                   fallback_min_count: int | None = None) -> ReferenceSets:
    """Top K and bottom K of the tags seen >= min_count times: the pool ranked by utility
    (ties by tag), the bottom read from its end, so with K shrunk to half the pool the two
    sets never overlap. When the pool has fewer than 2 tags and `fallback_min_count` is set,
    the threshold drops to it (reported as `min_count`)."""
    threshold = min_count
    pool = [t for t, c in table.count.items() if c >= threshold]
    if len(pool) < 2 and fallback_min_count is not None and fallback_min_count < min_count:
        threshold = fallback_min_count
        pool = [t for t, c in table.count.items() if c >= threshold]
    ranked = sorted(pool, key=lambda t: (-table.utility[t], t))
    kk = min(k, len(ranked) // 2)
    top = tuple(ranked[:kk])
    bottom = tuple(ranked[::-1][:kk])
    return ReferenceSets(top=top, bottom=bottom, pool_size=len(pool), min_count=threshold)


def top_bottom_table(table: UtilityTable, k: int, min_count: int = 3) -> UtilityTable:
    """The table restricted to the top K and bottom K tags seen >= min_count times: what
    `refinery tag-utility` writes (loaded again with `load_utility`)."""
    refs = reference_sets(table, k, min_count, None)
    keep = set(refs.top) | set(refs.bottom)
    return UtilityTable(utility={t: table.utility[t] for t in keep},
                        count={t: table.count[t] for t in keep})


def _jsonl_table(lines: list[str], path: str) -> UtilityTable:
    """The authors' layout: tags kept as written (their reference sets exactly)."""
    utility: dict[str, float] = {}
    count: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        row = json.loads(line)
        try:
            tag, c, u = str(row["tag"]).strip(), int(row["count"]), float(row["average_value"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}:{n}: expected tag, count, average_value ({e})") from e
        if tag and c > 0:
            utility[tag], count[tag] = u, c
    return UtilityTable(utility=utility, count=count)


def load_utility(path: str | os.PathLike[str]) -> UtilityTable:
    """Either the authors' JSONL (one {tag, count, total_value, average_value} per line, what
    `refinery tag-utility` writes; tags kept as written) or a JSON object {tag: {"utility": u,
    "count": n}} or {tag: u} (count then taken as 1000; keys normalized, tags that normalize
    alike merge, mean weighted by count)."""
    from transforms.io.files import read_text

    text = read_text(os.fspath(path))
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        first = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:  # the first line of an indented JSON object
        first = None
    if isinstance(first, Mapping) and "tag" in first and "average_value" in first:
        return _jsonl_table(lines, os.fspath(path))
    data = json.loads(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a JSON object of tag → utility")
    partial: Partial = {}
    for tag, value in data.items():
        if isinstance(value, Mapping):
            u, c = float(value["utility"]), float(value.get("count", _DEFAULT_COUNT))
        else:
            u, c = float(value), float(_DEFAULT_COUNT)
        norm = normalize_tag(tag)
        if norm and c > 0:
            merge_into(partial, {norm: [u * c, c]})
    return UtilityTable.from_partial(partial)


def save_utility(table: UtilityTable, path: str | os.PathLike[str]) -> None:
    """Write `table` in the authors' JSONL layout (see `UtilityTable.to_jsonl`)."""
    from transforms.io.files import write_bytes

    write_bytes(os.fspath(path), table.to_jsonl().encode())
