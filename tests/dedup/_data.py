"""Planted-duplicate example batches for the dedup tests (texts written for these tests)."""

from __future__ import annotations

import pyarrow as pa

from schemas.ids import example_id
from schemas.records import example_row, examples_to_batch

BASE = [
    "Explain how photosynthesis converts light energy into chemical energy in green plants, "
    "and describe the role of chlorophyll in the light dependent reactions.",
    "Write a Python function that returns the nth Fibonacci number using memoization and "
    "explain why the memoized version is faster than plain recursion.",
    "A farmer has 17 sheep and buys 12 more at the market on Tuesday. Later in the week he "
    "sells 9 of them to a neighbour. How many sheep does the farmer have at the end? Show your "
    "reasoning step by step before giving the final number of sheep.",
    "Summarize the main causes of the French Revolution, including the fiscal crisis, the "
    "influence of Enlightenment ideas and the social structure of the Estates.",
    "What are the differences between TCP and UDP, and when would a network engineer choose "
    "one protocol over the other for a real time video application?",
    "Describe the water cycle, covering evaporation, condensation, precipitation and "
    "collection, and explain how the sun drives each of these stages.",
]
UNRELATED = [
    "List three good habits for writing maintainable unit tests in a large code base.",
    "How do I convert a temperature from Celsius to Fahrenheit by hand?",
    "Translate the sentence 'the library opens at nine' into French and Spanish.",
    "Give a short recipe for a vegetarian lentil soup with carrots and cumin.",
]
# exact: case / punctuation / whitespace noise of BASE[0]
EXACT = "explain HOW photosynthesis converts light energy into chemical energy in green  "\
    "plants and describe the role of chlorophyll in the light-dependent reactions!!"
# near: BASE[2] with a changed number and a typo; BASE[3] with an inserted clause
NEAR = [
    "A farmer has 17 sheep and buys 12 more at the market on Tuesday. Later in the week he "
    "sells 8 of them to a neighbour. How many sheep does the farmer have at the end? Show your "
    "reasoning step by step before giving the final number of sheep.",
    "Summarize the main causes of the French Revolution, including the fiscal crisis, the "
    "influence of Enlightenment ideas and the social structure of the Estates, in a few lines.",
]
# paraphrase of BASE[5] (few shared shingles: only semantic dedup finds it)
# (character 5-gram Jaccard about 0.4, below the near threshold; cosine about 0.89)
PARAPHRASE = "Describe the stages of the water cycle (evaporation, condensation, precipitation, "\
    "collection) and the way solar energy powers every one of them."


def row(text: str, score: float | None = None, answer: str = "ok") -> dict:
    msgs = [{"role": "user", "content": text}, {"role": "assistant", "content": answer}]
    meta = {} if score is None else {"quality_score": score}
    return example_row(example_id(msgs), msgs, {"dataset": "t", "file": None, "row": None},
                       **meta)


def planted_rows(with_scores: bool = False) -> list[dict]:
    texts = BASE + UNRELATED + [EXACT, *NEAR, PARAPHRASE]
    return [row(t, (float(i % 3) if with_scores else None)) for i, t in enumerate(texts)]


def batches(rows: list[dict], size: int = 4) -> list[pa.RecordBatch]:
    return [examples_to_batch(rows[i:i + size]) for i in range(0, len(rows), size)]
