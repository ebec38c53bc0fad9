"""Templated negatives for bench/dedup_quality.py: distinct questions that share most of their
text, as real instruction data has them. Every row here is its own true cluster unless it is a
planted variant (typos, case, punctuation) of one of them. Three kinds:

* wrapped: distinct questions (Alpaca / Tag-Instruct instructions, GSM8K questions) inside a
  shared task template of 20-60 words (FLAN/T0 style); each seed draws TEMPLATES_PER_SEED of
  the templates, so the templates a seed sees vary;
* multiple choice: a shared multiple-choice instruction over distinct GSM8K questions with
  numeric options, and short shared stems ("Which of the following numbers is prime?") over
  distinct option sets;
* shared context: Compound-QA contexts (../shared/evaldata/compound_qa_understanding) each
  followed by one of the 2-5 distinct questions asked about it.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict

from bench.dedup import EVAL, _jsonl

TEMPLATES = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request. Read the instruction carefully, think about what is being asked, "
    "and answer helpfully and accurately.\n\n### Instruction:\n{q}\n\n### Response:",
    "You are a helpful assistant. A user has sent you the following request and is waiting for "
    "a clear, correct and complete answer. Be polite and concise, and do not invent facts "
    "you are unsure of.\nRequest: {q}",
    "Task: {q}\nPlease solve the task above. Explain your reasoning step by step before you "
    "give the final answer, and put the final answer on its own line at the end.",
    "The following question comes from a collection of exercises used to train assistants. "
    "Read it and answer it as well as you can, using plain language that a student would "
    "understand.\n\nQuestion: {q}\nAnswer:",
    "Given the request below, produce the best possible answer. If the request is ambiguous, "
    "state your assumption first.\n\n{q}\n\nYour answer should be complete but no longer "
    "than necessary.",
    "Instructions: read the user's message and reply helpfully. Message: \"{q}\" Keep the "
    "reply friendly, factual and well organised, and use a list where it helps the reader.",
)
TEMPLATES_PER_SEED = 3
MC_INSTRUCTION = ("The following is a multiple-choice question. Choose the single correct "
                  "option and reply with its letter only.\n\n{q}\n\nA) {a}\nB) {b}\nC) {c}\n"
                  "D) {d}\n\nAnswer:")
STEMS = ("Which of the following numbers is prime?", "Which of the following is the largest?",
         "Which word does not belong with the others?", "Which of these words is a noun?")


def _instructions() -> list[str]:
    rows = [d["instruction"] for d in _jsonl("tag_instruct_alpaca_5k.jsonl")]
    return [r for r in rows if 4 <= len(r.split()) <= 40 and "\n" not in r]


def _options(rng: random.Random, answer: int) -> list[str]:
    opts = {answer}
    while len(opts) < 4:
        opts.add(max(0, answer + rng.randint(-20, 20) * max(1, answer // 10)))
    out = [str(o) for o in opts]
    rng.shuffle(out)
    return out


def _answer(ans: str) -> int:
    try:
        return int(ans.split("####")[-1].strip().replace(",", ""))
    except ValueError:
        return 7


def wrapped(rng: random.Random, per_template: int, used: set[str]) -> list[str]:
    from bench.dedup_quality import distinct_by_margin

    pool = [q for q in _instructions() if q not in used]
    rng.shuffle(pool)
    pool = distinct_by_margin(list(used) + pool[:per_template * TEMPLATES_PER_SEED * 2])[
        len(used):]
    out = []
    for t in rng.sample(TEMPLATES, TEMPLATES_PER_SEED):
        out += [t.format(q=pool.pop()) for _ in range(per_template)]
    return out


def multiple_choice(rng: random.Random, n: int, per_stem: int, used: set[str]) -> list[str]:
    gsm = [d for d in _jsonl("gsm8k_test.jsonl") if d["question"] not in used]
    rng.shuffle(gsm)
    out = []
    for d in gsm[:n]:
        a, b, c, e = _options(rng, _answer(d["answer"]))
        out.append(MC_INSTRUCTION.format(q=d["question"], a=a, b=b, c=c, d=e))
    with open(EVAL / "alpaca_subset_1k.json") as f:
        words = sorted({w.lower() for d in json.load(f) for w in d["instruction"].split()
                        if w.isalpha() and 4 <= len(w) <= 10})
    for stem in STEMS:
        seen: set[tuple] = set()
        while len(seen) < per_stem:
            opts = (tuple(str(rng.randint(2, 999)) for _ in range(4)) if "number" in stem
                    or "largest" in stem else tuple(rng.sample(words, 4)))
            if opts not in seen:
                seen.add(opts)
                out.append(f"{stem}\nA. {opts[0]}\nB. {opts[1]}\nC. {opts[2]}\nD. {opts[3]}")
    return out


def shared_context(rng: random.Random, n_contexts: int) -> list[str]:
    by_ctx: dict[str, list[str]] = defaultdict(list)
    for p in sorted((EVAL / "compound_qa_understanding").glob("*.jsonl")):
        for d in _jsonl(str(p.relative_to(EVAL))):
            if "context" in d and d["com_question"] not in by_ctx[d["context"]]:
                by_ctx[d["context"]].append(d["com_question"])
    ctx = sorted(c for c, qs in by_ctx.items() if len(qs) >= 2)
    rng.shuffle(ctx)
    return [f"{c}\n\n{q}" for c in ctx[:n_contexts] for q in by_ctx[c]]


def build_templated(rng: random.Random, scale: int, used: set[str]) -> list[str]:
    """Distinct templated rows for a labeled set of about `scale` base questions."""
    return (wrapped(rng, max(10, scale // 12), used)
            + multiple_choice(rng, max(10, scale // 12), max(10, scale // 30), used)
            + shared_context(rng, max(5, scale // 25)))
