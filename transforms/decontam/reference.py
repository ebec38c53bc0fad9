"""Brute-force twin of the n-gram rules in plain Python (tuples, dicts, set intersection).

Used by tests and bench/decontam.py to check the vectorized path; slow by design. Same
semantics: per-message n-grams, number-only n-grams skipped when numbers are masked, n-grams in
more than `max_item_share` items left out, coverage = covered item tokens / item tokens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from transforms.decontam.config import RuleConfig
from transforms.decontam.tokens import NUMBER_TOKEN, tokenize_py


def _ngrams(tokens: list[str], n: int, mask_numbers: bool) -> list[tuple[int, tuple[str, ...]]]:
    out = []
    for p in range(len(tokens) - n + 1):
        gram = tuple(tokens[p:p + n])
        if mask_numbers and all(t == NUMBER_TOKEN for t in gram):
            continue
        out.append((p, gram))
    return out


class BruteForce:
    """Dict of n-gram tuples → [(item, position)] per n."""

    def __init__(self, item_texts: Sequence[str], rules: Sequence[RuleConfig],
                 mask_numbers: bool, max_item_share: int | None):
        self.rules, self.mask_numbers = list(rules), mask_numbers
        self.item_tokens = [tokenize_py(t, mask_numbers) for t in item_texts]
        self.postings: dict[int, dict[tuple[str, ...], list[tuple[int, int]]]] = {}
        for n in {r.n for r in rules}:
            table: dict[tuple[str, ...], list[tuple[int, int]]] = defaultdict(list)
            for i, toks in enumerate(self.item_tokens):
                for p, gram in _ngrams(toks, n, mask_numbers):
                    table[gram].append((i, p))
            if max_item_share is not None:
                table = {g: v for g, v in table.items()
                         if len({i for i, _ in v}) <= max_item_share}
            self.postings[n] = dict(table)

    def coverage(self, texts: Sequence[str], n: int) -> dict[int, float]:
        """item → coverage, for the items sharing at least one n-gram with the row."""
        grams: set[tuple[str, ...]] = set()
        for text in texts:
            grams.update(g for _, g in _ngrams(tokenize_py(text, self.mask_numbers), n,
                                               self.mask_numbers))
        table = self.postings[n]
        covered: dict[int, set[int]] = defaultdict(set)
        for gram in grams & table.keys():
            for item, p in table[gram]:
                covered[item].update(range(p, p + n))
        return {i: len(c) / len(self.item_tokens[i]) for i, c in covered.items()}

    def check(self, texts: Sequence[str]) -> tuple[str | None, dict[str, dict[int, float]]]:
        """(reason or None, rule name → flagged item → coverage) for one row's texts."""
        reason, flagged = None, {}
        for rule in self.rules:
            hits = {i: c for i, c in self.coverage(texts, rule.n).items()
                    if c > rule.min_coverage}
            flagged[rule.name] = hits
            if hits and reason is None:
                reason = f"contaminated_{rule.name}"
        return reason, flagged
