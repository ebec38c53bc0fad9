"""The quality stage's default filters on clean, human-written gold data and on bad rows planted
from it: the drop rate per gold set (should be near zero), the catch rate per kind of bad row
(should be near one), and every filter's drops per source, so a user sees when a filter bites.

Gold (../shared/evaldata): GSM8K train solutions, MATH-500 solutions, HumanEval canonical
solutions (the full function in a code fence, as chat data has it), Alpaca seed-task outputs
(the defaults were chosen on these and on the bad rows of seed 0); GSM8K test solutions and
the bad rows of other seeds are held out.
Bad rows, made from seeded gold rows: an empty or placeholder response, the prompt echoed, a
refusal, a response cut off mid-sentence (after a comma or a function word), a generation that
loops (its last sentence or line repeated), one line repeated as a list, a word loop, and
symbol noise. Every drop has its rule's reason.

    python bench/quality_gold.py [--seed 0] [--bad-per-kind 200]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.dedup import _jsonl  # noqa: E402
from schemas.records import example_row, examples_to_batch  # noqa: E402
from transforms.quality.config import QualityConfig  # noqa: E402
from transforms.quality.core import heuristic_batch  # noqa: E402

Pair = tuple[str, str]
HELD_OUT = "gsm8k_test_heldout"  # not looked at while choosing the defaults


def gold_sets() -> dict[str, list[Pair]]:
    """(prompt, response) pairs of each gold set."""
    seed_tasks = []
    for d in _jsonl("alpaca_seed_tasks.jsonl"):
        for inst in d["instances"]:
            prompt = d["instruction"] + (f"\n\n{inst['input']}" if inst.get("input") else "")
            seed_tasks.append((prompt, inst["output"]))
    return {
        "gsm8k": [(d["question"], d["answer"]) for d in _jsonl("gsm8k_train.jsonl")],
        HELD_OUT: [(d["question"], d["answer"]) for d in _jsonl("gsm8k_test.jsonl")],
        "math500": [(d["problem"], d["solution"]) for d in _jsonl("math500_test.jsonl")],
        "humaneval": [("Complete this Python function:\n\n" + d["prompt"],
                       "```python\n" + d["prompt"] + d["canonical_solution"].rstrip() + "\n```")
                      for d in _jsonl("humaneval.jsonl")],
        "alpaca_seed": seed_tasks,
    }


_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
_DANGLING = ("and", "or", "the", "of", "to", "with", "for", "that", "because", "but")
REFUSALS = ("I'm sorry, but I can't help with that request.",
            "As an AI language model, I cannot provide an answer to this question.",
            "I apologize, but I am unable to complete this task.",
            "I cannot assist with that. Please ask something else.")
PLACEHOLDERS = ("N/A", "TODO", "...", "<noinput>", "placeholder", "None", "Your answer here")


def _long(pairs: list[Pair]) -> list[Pair]:
    return [p for p in pairs if len(p[1].split()) >= 40]


def truncated(r: str, rng: random.Random) -> str:
    """Cut in the second half, right after a comma or a function word (a generation stopped
    at its token limit mid-sentence)."""
    words = r.split(" ")
    spots = [i for i in range(len(words) // 2, len(words) - 1)
             if words[i].endswith(",") or words[i].lower() in _DANGLING]
    i = rng.choice(spots) if spots else len(words) // 2
    out = " ".join(words[:i + 1])
    return out if spots else out.rstrip(".!?") + ","


def looping(r: str, rng: random.Random) -> str:
    """The response, then its last sentence or line 8-20 more times (a degenerate loop)."""
    parts = [p for p in _SENT.split(r.strip()) if len(p.split()) >= 4] or [r.strip()]
    last = rng.choice(parts[-3:])
    return r.rstrip() + " " + " ".join([last] * rng.randint(8, 20))


def repeated_lines(r: str, rng: random.Random) -> str:
    line = rng.choice([p for p in _SENT.split(r.strip()) if p.strip()] or [r])
    return "\n".join(f"- {line}" for _ in range(rng.randint(12, 30)))


def word_loop(r: str, rng: random.Random) -> str:
    words = r.split()
    k = rng.randrange(max(1, len(words) - 3))
    gram = " ".join(words[k:k + rng.randint(1, 3)])
    return " ".join(words[:k] + [gram] * rng.randint(40, 120))


def symbols(r: str, rng: random.Random) -> str:
    junk = "#@$%^&*~|<>{}[]=+_/\\"
    return "".join(rng.choice(junk) if c.isalnum() and rng.random() < 0.8 else c for c in r)


BAD = {
    "empty": lambda p, r, rng: rng.choice(["", " ", "\n"]),
    "placeholder": lambda p, r, rng: rng.choice(PLACEHOLDERS),
    "prompt_echo": lambda p, r, rng: p,
    "refusal": lambda p, r, rng: rng.choice(REFUSALS),
    "truncated": lambda p, r, rng: truncated(r, rng),
    "looping": lambda p, r, rng: looping(r, rng),
    "repeated_lines": lambda p, r, rng: repeated_lines(r, rng),
    "word_loop": lambda p, r, rng: word_loop(r, rng),
    "symbols": lambda p, r, rng: symbols(r, rng),
}


def planted(gold: dict[str, list[Pair]], per_kind: int, seed: int) -> dict[str, list[Pair]]:
    """`per_kind` bad rows of each kind, each from a random gold row of a random set."""
    rng = random.Random(seed)
    pools = {k: _long(v) for k, v in gold.items() if k != HELD_OUT}
    names = sorted(pools)
    out = {}
    for kind, make in BAD.items():
        rows = []
        for _ in range(per_kind):
            p, r = rng.choice(pools[rng.choice(names)])
            rows.append((p, make(p, r, rng)))
        out[kind] = rows
    return out


def drops(pairs: list[Pair], cfg: QualityConfig, name: str) -> tuple[Counter, list[Pair]]:
    """(reason → rows dropped, dropped pairs) under the config's filters."""
    reasons: Counter = Counter()
    examples = []
    for s in range(0, len(pairs), 2000):
        chunk = pairs[s:s + 2000]
        rows = [example_row(f"{name}-{s + k}", [{"role": "user", "content": p},
                                                {"role": "assistant", "content": r}])
                for k, (p, r) in enumerate(chunk)]
        res = heuristic_batch(examples_to_batch(rows), cfg)
        if res.rejected is not None and res.rejected.num_rows:
            rej = res.rejected.to_pylist()
            reasons.update(r["reject_reason"] for r in rej)
            examples += [(r["reject_reason"], r["id"]) for r in rej[:3]]
    return reasons, examples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bad-per-kind", type=int, default=200)
    a = ap.parse_args()
    cfg = QualityConfig()
    gold = gold_sets()
    bad = planted(gold, a.bad_per_kind, a.seed)
    by_reason: dict[str, dict[str, int]] = defaultdict(dict)
    result: dict[str, float] = {}
    print(f"{'gold set':>14} {'rows':>6} {'dropped':>8} {'rate':>7}  reasons")
    for name, pairs in gold.items():
        reasons, _ = drops(pairs, cfg, name)
        n = sum(reasons.values())
        result[f"drop_rate_{name}"] = round(n / len(pairs), 5)
        for r, c in reasons.items():
            by_reason[r][name] = c
        print(f"{name:>14} {len(pairs):>6} {n:>8} {n / len(pairs):>7.4f}  {dict(reasons)}")
    print(f"{'bad rows':>14} {'rows':>6} {'caught':>8} {'rate':>7}  reasons")
    caught_all = total = 0
    for kind, pairs in bad.items():
        reasons, _ = drops(pairs, cfg, kind)
        n = sum(reasons.values())
        caught_all, total = caught_all + n, total + len(pairs)
        result[f"catch_rate_{kind}"] = round(n / len(pairs), 4)
        for r, c in reasons.items():
            by_reason[r][f"bad:{kind}"] = c
        print(f"{kind:>14} {len(pairs):>6} {n:>8} {n / len(pairs):>7.4f}  {dict(reasons)}")
    print("drops per filter and source:")
    for r in sorted(by_reason):
        print(f"  {r:>22}: {dict(sorted(by_reason[r].items()))}")
    gold_rates = [v for k, v in result.items() if k.startswith("drop_rate_")]
    print(json.dumps({"bench": "quality_gold", "seed": a.seed,
                      "max_gold_drop_rate": max(gold_rates),
                      "catch_rate": round(caught_all / total, 4), **result}))


if __name__ == "__main__":
    main()
