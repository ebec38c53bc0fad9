"""Tag utility from a corpus: how much answer a tag tends to demand.

Each example's response length in tokens is split evenly across its tags; a tag's utility is
the mean of those shares over its occurrences. Tags seen at least `min_count` times form the
pool; its top K and bottom K by utility are the reference sets the expansion reward compares
candidates with. Partial sums merge (sum, count per tag), so a Beam CombineFn can build the
table from shards. A table can also be saved to / loaded from JSON. Pure, no Beam.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from transforms.tag_instruct.tags import normalize_tag

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)

_DEFAULT_COUNT = 1000
Partial = dict[str, list[float]]  # tag → [sum of shares, occurrences]


def count_tokens(text: str) -> int:
    """Word and punctuation tokens of `text` (a tokenizer-free, model-independent count)."""
    return len(_TOKEN.findall(text or ""))


def utility_partial(rows: Iterable[tuple[Sequence[str], int]]) -> Partial:
    """(tags, response tokens) rows → per-tag [sum of token shares, occurrences].
    Rows without tags are ignored; a tag repeated in one row counts once."""
    tags_col: list[list[str]] = []
    tokens_col: list[int] = []
    for tags, tokens in rows:
        uniq = list(dict.fromkeys(t for t in tags if t))
        if uniq:
            tags_col.append(uniq)
            tokens_col.append(int(tokens))
    if not tags_col:
        return {}
    frame = (
        pl.DataFrame({"tags": tags_col, "tokens": tokens_col},
                     schema={"tags": pl.List(pl.String), "tokens": pl.Int64})
        .with_columns(share=pl.col("tokens") / pl.col("tags").list.len())
        .explode("tags")
        .group_by("tags")
        .agg(pl.col("share").sum().alias("sum"), pl.len().alias("count"))
    )
    return {t: [float(s), float(c)] for t, s, c in frame.iter_rows()}


def merge_partials(partials: Iterable[Partial]) -> Partial:
    out: Partial = {}
    for part in partials:
        for tag, (s, c) in part.items():
            acc = out.setdefault(tag, [0.0, 0.0])
            acc[0] += s
            acc[1] += c
    return out


@dataclass(frozen=True)
class UtilityTable:
    """utility[tag] = mean token share; count[tag] = occurrences."""

    utility: dict[str, float] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_partial(cls, partial: Partial) -> UtilityTable:
        return cls(utility={t: s / c for t, (s, c) in partial.items() if c > 0},
                   count={t: int(c) for t, (_, c) in partial.items() if c > 0})

    def to_json(self) -> dict[str, dict[str, float]]:
        return {t: {"utility": self.utility[t], "count": self.count[t]}
                for t in sorted(self.utility)}


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
                   fallback_min_count: int | None = 1) -> ReferenceSets:
    """Top K and bottom K of the tags seen >= min_count times (ties broken by tag).
    K shrinks so the two sets never overlap. When the pool has fewer than 2 tags and
    `fallback_min_count` is set, the threshold drops to it (reported as `min_count`)."""
    threshold = min_count
    pool = [t for t, c in table.count.items() if c >= threshold]
    if len(pool) < 2 and fallback_min_count is not None and fallback_min_count < min_count:
        threshold = fallback_min_count
        pool = [t for t, c in table.count.items() if c >= threshold]
    ranked = sorted(pool, key=lambda t: (-table.utility[t], t))
    kk = min(k, len(ranked) // 2)
    top = tuple(ranked[:kk])
    bottom = tuple(sorted(pool, key=lambda t: (table.utility[t], t))[:kk])
    return ReferenceSets(top=top, bottom=bottom, pool_size=len(pool), min_count=threshold)


def load_utility(path: str | Path) -> UtilityTable:
    """JSON file: {tag: {"utility": u, "count": n}} or {tag: u} (count then taken as 1000).
    Keys are normalized; tags that normalize alike merge (mean weighted by count)."""
    data = json.loads(Path(path).read_text())
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
            acc = partial.setdefault(norm, [0.0, 0.0])
            acc[0] += u * c
            acc[1] += c
    return UtilityTable.from_partial(partial)


def save_utility(table: UtilityTable, path: str | Path) -> None:
    Path(path).write_text(json.dumps(table.to_json(), indent=1, sort_keys=True))
