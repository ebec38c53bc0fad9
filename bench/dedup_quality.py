"""Dedup quality on labeled variants of real questions: pairwise precision / recall / F1 per
text-length bucket for exact+near (the stage's core), near with each shingling, semantic, and
datasketch (same shingles and threshold, union of its LSH candidates), all in one run.

The labeled set is built at run time from public questions in ../shared/evaldata (GSM8K
questions, Alpaca seed-task and Alpaca instructions, HumanEval prompts): a seeded sample of
distinct questions (distinct after folding, and no two with an exact character-5-gram Jaccard
of SOURCE_NEAR or more: near-identical source questions have no clear label); some get 1-3 variants made by 1-2 edits each of the kinds real instruction
data has (case / whitespace noise, punctuation, a few typos, a changed number, a dropped or an
appended clause). A question and its variants are one true cluster; every other pair is a
negative. A pair belongs to the length bucket of its shorter text (words after folding).
`--sweep` prints near-dedup F1 over a grid of shingling settings (how the defaults were chosen).
The last line is one JSON object.

    python bench/dedup_quality.py [--seed 0] [--seeds 1600] [--sweep] [--no-semantic]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.dedup import EVAL, _jsonl, shuffled  # noqa: E402
from bench.dedup_templated import build_templated  # noqa: E402
from schemas.text import fold_text  # noqa: E402
from transforms.dedup import clusters, lsh  # noqa: E402
from transforms.dedup.config import DedupConfig  # noqa: E402

BUCKETS = ((1, 15), (16, 40), (41, 100), (101, 10**9))
TEMPLATED = len(BUCKETS)  # the bucket of every pair with a templated row
_NUM = re.compile(r"\d+")
_CLAUSE = re.compile(r"(?<=[,;:.!?])\s+")
SOURCE_NEAR = 0.6  # source questions this similar (exact Jaccard) are not both used
APPENDED = ("Explain your answer.", "Show your work.", "Please be concise.",
            "Answer in one sentence.", "Give a short justification.", "Think step by step.",
            "Use simple language.", "Provide an example.", "and explain why",
            "Respond in English.")


def load_questions(rng: random.Random, n: int) -> list[str]:
    """About n distinct questions (distinct after folding): short Alpaca instructions, GSM8K
    word problems and HumanEval prompts in fixed shares."""
    alpaca = [d["instruction"] for d in _jsonl("alpaca_seed_tasks.jsonl")]
    with open(EVAL / "alpaca_subset_1k.json") as f:
        alpaca += [d["instruction"] for d in json.load(f)]
    gsm = [d["question"] for name in ("gsm8k_test.jsonl", "gsm8k_train.jsonl")
           for d in _jsonl(name)]
    code = [d["prompt"] for d in _jsonl("humaneval.jsonl")]
    out: list[str] = []
    for pool, share in ((alpaca, 0.45), (gsm, 0.45), (code, 0.10)):
        rng.shuffle(pool)
        out += pool[: int(n * share)]
    seen, uniq = set(), []
    for t in out:
        if (k := fold_text(t)) and k not in seen:
            seen.add(k)
            uniq.append(t)
    return distinct_by_margin(uniq)


def distinct_by_margin(texts: list[str], limit: float = SOURCE_NEAR) -> list[str]:
    """`texts` without those whose exact character-5-gram Jaccard (folded) with an earlier one
    reaches `limit`: near-identical source questions (HumanEval's pairs_sum_to_zero and
    triples_sum_to_zero share 70%) have no clear label. Candidates from datasketch's LSH, each
    checked exactly; independent of the code under test."""
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(threshold=limit * 0.7, num_perm=64)
    kept, sets = [], []
    for t in texts:
        f = fold_text(t)
        grams = {f[i:i + 5] for i in range(max(1, len(f) - 4))}
        m = MinHash(num_perm=64, seed=7)
        m.update_batch([g.encode("utf-8") for g in grams])
        if any(len(grams & sets[c]) / len(grams | sets[c]) >= limit for c in index.query(m)):
            continue
        index.insert(len(sets), m)
        sets.append(grams)
        kept.append(t)
    return kept


def noise(t: str, rng: random.Random) -> str:
    """Case and whitespace noise."""
    t = t.lower() if rng.random() < 0.3 else (t.upper() if rng.random() < 0.1 else t)
    t = re.sub(r" ", lambda _: "  " if rng.random() < 0.1 else " ", t)
    return rng.choice(["", " ", "\n", "\t"]) + t + rng.choice(["", " ", "\n"])


def punctuation(t: str, rng: random.Random) -> str:
    t = t.replace(",", "") if rng.random() < 0.5 else t.replace(", ", " , ")
    return t.rstrip(".?!") + rng.choice(["", "?", "!", "...", " ?", "."])


def typos(t: str, rng: random.Random) -> str:
    """1-3 typos (transposed, dropped, doubled or replaced letter) in words of 4+ letters."""
    words = t.split(" ")
    spots = [i for i, w in enumerate(words) if len(w) > 3 and w.isalpha()]
    for i in rng.sample(spots, min(len(spots), rng.randint(1, 3))):
        w, j = words[i], rng.randrange(len(words[i]) - 1)
        kind = rng.randrange(4)
        words[i] = (w[:j] + w[j + 1] + w[j] + w[j + 2:] if kind == 0 else
                    w[:j] + w[j + 1:] if kind == 1 else w[:j] + w[j] + w[j:] if kind == 2 else
                    w[:j] + rng.choice("aeioustrn") + w[j + 1:])
    return " ".join(words)


def change_number(t: str, rng: random.Random) -> str:
    nums = list(_NUM.finditer(t))
    if not nums:
        return typos(t, rng)
    m = rng.choice(nums)
    return t[:m.start()] + str(int(m.group()) + rng.randint(1, 9)) + t[m.end():]


def clause(t: str, rng: random.Random) -> str:
    """Drop one clause (of several) or append a short one."""
    parts = _CLAUSE.split(t.strip())
    if len(parts) > 2 and rng.random() < 0.5:
        del parts[rng.randrange(len(parts))]
        return " ".join(parts)
    extra = rng.choice(APPENDED)
    return t.rstrip() + (", " if extra[0].islower() else " ") + extra


EDITS = (noise, punctuation, typos, change_number, clause)
SURFACE = (noise, punctuation, typos)  # copies of a templated row: its slot text unchanged


def build(seed: int, n_questions: int, templated: bool = True
          ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(texts, true cluster of each, templated flag of each): every question, plus 1-3
    variants for 40% of them; with `templated`, the templated negatives of
    bench/dedup_templated.py too, 30% of them with 1-2 copies made by case, whitespace,
    punctuation or typo edits (still true duplicates of their row)."""
    rng = random.Random(seed)
    base = load_questions(rng, n_questions)
    n_plain = len(base)
    if templated:
        base += build_templated(rng, n_questions, set(base))
    docs, label = list(base), list(range(len(base)))
    for k, t in enumerate(base):
        tmpl = k >= n_plain
        if rng.random() < (0.3 if tmpl else 0.4):
            for _ in range(rng.randint(1, 2) if tmpl else rng.randint(1, 3)):
                v = t
                for edit in rng.sample(SURFACE if tmpl else EDITS, rng.randint(1, 2)):
                    v = edit(v, rng)
                docs.append(v)
                label.append(k)
    flag = np.array(label) >= n_plain
    d, lab = shuffled(docs, [x * 2 + int(f) for x, f in zip(label, flag, strict=True)], rng)
    return d, lab // 2, (lab % 2).astype(bool)


def pair_counts(pred: np.ndarray, truth: np.ndarray, bucket: np.ndarray) -> np.ndarray:
    """(buckets + 1, 3) counts of predicted pairs, true pairs and true positives; a pair
    counts in the bucket of its shorter text (`bucket` holds each text's, shorter = lower
    bucket), or in the last (TEMPLATED) when one of its texts is templated."""
    out = np.zeros((len(BUCKETS) + 1, 3), np.int64)
    for col, labels in ((0, pred), (1, truth)):
        for members in clusters.cluster_lists(labels).values():
            m = np.array(members)
            a, b = np.triu_indices(len(m), 1)
            i, j = m[a], m[b]
            pb = np.minimum(bucket[i], bucket[j])
            pb[(bucket[i] == TEMPLATED) | (bucket[j] == TEMPLATED)] = TEMPLATED
            np.add.at(out[:, col], pb, 1)
            if col == 0:
                np.add.at(out[:, 2], pb[truth[i] == truth[j]], 1)
    return out


def scores(c: np.ndarray) -> tuple[float, float, float]:
    pp, tt, tp = (int(x) for x in c)
    p = tp / pp if pp else 1.0
    r = tp / tt if tt else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def run_stage(docs: list[str], cfg: DedupConfig) -> np.ndarray:
    """Cluster labels from the stage's own exact+near core (transforms.dedup.local)."""
    from schemas.records import example_row, examples_to_batch
    from transforms.dedup.local import dedup_local

    rows = [example_row(f"{k:06d}", [{"role": "user", "content": t}],
                        {"dataset": "bench", "file": "x", "row": k}) for k, t in enumerate(docs)]
    batches = [examples_to_batch(rows[s:s + 1000]) for s in range(0, len(rows), 1000)]
    dropped = dedup_local(batches, cfg)
    return np.array([int(dropped[f"{k:06d}"][0]) if f"{k:06d}" in dropped else k
                     for k in range(len(docs))])


def run_near(docs: list[str], cfg: DedupConfig) -> np.ndarray:
    from transforms.dedup._steps import hasher_for

    sig, nonempty = hasher_for(cfg).signatures(docs)
    b, r = lsh.lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
    i, j = lsh.candidate_pairs(sig, b, r)
    ok = nonempty[i] & nonempty[j]
    i, j = i[ok], j[ok]
    keep = lsh.verify_pairs(sig, i, j, cfg.threshold) >= cfg.threshold
    return clusters.components(len(docs), i[keep], j[keep])


def shingle_strings(text: str, cfg: DedupConfig) -> list[str]:
    """The same shingles as the MinHasher, as strings (for datasketch)."""
    if cfg.mask_numbers:
        text = re.sub(r"\d+(?:[.,]\d+)*", "0", text)
    folded = fold_text(text)
    words = folded.split()
    if cfg.shingle == "char" or (cfg.shingle == "auto" and len(words) <= cfg.char_max_words):
        n = cfg.char_ngram
        return [folded[i:i + n] for i in range(max(1, len(folded) - n + 1))] if folded else []
    n = cfg.ngram
    return [" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))] if words else []


def run_datasketch(docs: list[str], cfg: DedupConfig) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm,
                       weights=(cfg.fp_weight, cfg.fn_weight))
    mhs = []
    for k, t in enumerate(docs):
        m = MinHash(num_perm=cfg.num_perm, seed=cfg.minhash_seed)
        m.update_batch([s.encode("utf-8") for s in shingle_strings(t, cfg)])
        mhs.append(m)
        index.insert(k, m)
    edges = [(k, c) for k, m in enumerate(mhs) for c in index.query(m) if c != k]
    return clusters.components(len(docs), np.array([a for a, _ in edges], np.int64),
                               np.array([b for _, b in edges], np.int64))


def run_semantic(docs: list[str], eps: float) -> np.ndarray:
    """SemDeDup over the whole set as one cluster (the stage's per-cluster step, upper bound
    of its recall), with the configured embedding model."""
    from transforms.dedup.semantic import dedup_cluster
    from transforms.embed.model import Embedder

    emb = Embedder().encode(docs)
    keeper, _ = dedup_cluster(emb, eps)
    return keeper


def table_row(name: str, counts: np.ndarray) -> dict[str, float]:
    p, r, f = scores(counts.sum(axis=0))
    per = [scores(c) for c in counts]
    cells = "  ".join(f"{b[1]:>5.3f}/{b[2]:<5.3f}" if c[1] else "     -     "
                      for b, c in zip(per[:TEMPLATED], counts[:TEMPLATED], strict=True))
    t = per[TEMPLATED]
    cells += f"  | templated P {t[0]:.3f} R {t[1]:.3f} ({counts[TEMPLATED][0]} pairs)"
    print(f"{name:>22}  P {p:.3f} R {r:.3f} F1 {f:.3f}  | {cells}", flush=True)
    return {"precision": p, "recall": r, "f1": f, "recall_shortest_bucket": per[0][1],
            "f1_shortest_bucket": per[0][2], "precision_templated": per[TEMPLATED][0],
            "recall_templated": per[TEMPLATED][1]}


def sweep(docs: list[str], truth: np.ndarray, bucket: np.ndarray) -> None:
    print("sweep (near only): shingle, char_max_words, mask_numbers, threshold → P R F1, "
          "recall shortest")
    for shingle, cmw in (("word", 0), ("char", 0), ("auto", 20), ("auto", 40), ("auto", 80)):
        for mask in (False, True):
            for thr in (0.4, 0.5, 0.6, 0.7):
                cfg = DedupConfig(shingle=shingle, char_max_words=cmw, mask_numbers=mask,
                                  threshold=thr)
                c = pair_counts(run_near(docs, cfg), truth, bucket)
                p, r, f = scores(c.sum(axis=0))
                print(f"  {shingle:>5} {cmw:>3} {mask!s:>5} {thr:.2f}  P {p:.3f} R {r:.3f} "
                      f"F1 {f:.3f}  R_short {scores(c[0])[1]:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="seed of the labeled set")
    ap.add_argument("--seeds", type=int, default=1600, help="questions drawn (before variants)")
    ap.add_argument("--sweep", action="store_true", help="also sweep shingling settings")
    ap.add_argument("--no-semantic", action="store_true", help="skip the embedding model")
    ap.add_argument("--no-templated", action="store_true", help="leave the templated "
                    "negatives out (the labeled set as before)")
    a = ap.parse_args()
    docs, truth, tmpl = build(a.seed, a.seeds, not a.no_templated)
    words = np.array([len(fold_text(t).split()) for t in docs])
    bucket = np.searchsorted([hi for _, hi in BUCKETS], words)
    bucket[tmpl] = TEMPLATED
    cfg = DedupConfig()
    b, r = lsh.lsh_params(cfg.threshold, cfg.num_perm, cfg.fp_weight, cfg.fn_weight)
    print(f"{len(docs)} texts, {len(set(truth.tolist()))} true clusters (seed {a.seed}); "
          f"defaults: shingle={cfg.shingle} char_max_words={cfg.char_max_words} "
          f"mask_numbers={cfg.mask_numbers} threshold={cfg.threshold} bands={b} rows={r} "
          f"template_df={cfg.template_df} template_min_docs={cfg.template_min_docs}; "
          f"{int(tmpl.sum())} templated texts")
    print(f"{'method':>22}  overall{'':20}| recall/F1 per bucket (words): "
          + "  ".join(f"{lo}-{hi if hi < 10**9 else ''}" for lo, hi in BUCKETS))
    res, times = {}, {}
    variants = {"exact+near": (run_stage, cfg)}
    for shingle in ("word", "char", "auto"):
        variants[f"near {shingle}"] = (run_near, cfg.model_copy(update={"shingle": shingle}))
    variants["datasketch (same)"] = (run_datasketch, cfg)
    largest = {}
    for name, (fn, c) in variants.items():
        t = time.perf_counter()
        pred = fn(docs, c)
        times[name] = time.perf_counter() - t
        res[name] = table_row(name, pair_counts(pred, truth, bucket))
        largest[name] = int(np.bincount(pred).max())
    largest_true = int(np.bincount(truth).max())
    print(f"largest cluster: exact+near {largest['exact+near']}, true {largest_true}; "
          + ", ".join(f"{k} {v}" for k, v in largest.items() if k != "exact+near"))
    if not a.no_semantic:
        res["semantic"] = table_row("semantic", pair_counts(
            run_semantic(docs, cfg.semantic_eps), truth, bucket))
    if a.sweep:
        sweep(docs, truth, bucket)
    o, d = res["exact+near"], res["datasketch (same)"]
    print(json.dumps({
        "bench": "dedup_quality", "seed": a.seed, "texts": len(docs),
        "precision": round(o["precision"], 4), "recall": round(o["recall"], 4),
        "f1": round(o["f1"], 4), "precision_templated": round(o["precision_templated"], 4),
        "recall_templated": round(o["recall_templated"], 4),
        "largest_cluster": largest["exact+near"], "largest_true_cluster": largest_true,
        "recall_shortest_bucket": round(o["recall_shortest_bucket"], 4),
        "f1_datasketch": round(d["f1"], 4),
        "precision_datasketch": round(d["precision"], 4),
        "recall_datasketch": round(d["recall"], 4),
        **{f"f1_{k.replace(' ', '_')}": round(v["f1"], 4) for k, v in res.items()
           if k.startswith("near") or k == "semantic"},
        "seconds_ours": round(times["exact+near"], 2),
        "seconds_datasketch": round(times["datasketch (same)"], 2)}))


if __name__ == "__main__":
    main()
