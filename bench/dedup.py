"""Near-duplicate detection benchmark: ours (vectorized MinHash + LSH) vs datasketch vs rensa,
and the semantic stage's embedding throughput vs plain SentenceTransformer.encode (fp32 torch,
same texts, same run) with the cosine agreement of their vectors.

Builds a labeled set from real texts in ../shared/evaldata: every distinct text is a cluster
seed; edited copies (typos, reordered sentences, inserted sentences, changed numbers,
whitespace/punctuation noise) join its cluster. Each method shingles the same folded text into
word 5-grams, builds MinHash signatures with the same num_perm, indexes them in LSH with the same
bands × rows (datasketch's optimisation), verifies candidates by estimated Jaccard >= threshold
and clusters by union-find; pairwise precision / recall / F1 against the labels and docs/s
(shingling included) are printed. The targets are for a 2-core machine, so "ours" is the
stage's core on both cores (`dedup.minhash_threads: 2`: slices of the texts over 2 threads,
as the stage runs it in one worker, or as two Beam workers split the batches);
"ours_1thread" is the same core on one thread. datasketch and rensa run as their users call
them (one core: neither parallelises signatures or queries on its own). rensa is given
num_perm = bands × rows (it needs num_perm divisible by bands), the same bands and rows.
The last line is one JSON object.

    python bench/dedup.py [--docs 20000] [--embed-docs 300] [--threshold 0.7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from schemas.text import fold_text  # noqa: E402
from transforms.dedup import clusters, lsh  # noqa: E402
from transforms.dedup.minhash import MinHasher  # noqa: E402

# ../shared/evaldata beside the checkout (a worktree under wt/ looks one level higher too)
EVAL = next((d for d in (ROOT.parent / "shared" / "evaldata",
                         ROOT.parent.parent / "shared" / "evaldata") if d.is_dir()),
            ROOT.parent / "shared" / "evaldata")


def _jsonl(name: str) -> list[dict]:
    with open(EVAL / name) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_texts() -> list[str]:
    out = [d["question"] + "\n" + d["answer"]
           for name in ("gsm8k_train.jsonl", "gsm8k_test.jsonl") for d in _jsonl(name)]
    out += [d["problem"] + "\n" + d["solution"] for d in _jsonl("math500_test.jsonl")]
    out += [d["prompt"] for d in _jsonl("humaneval.jsonl")]
    out += [d["instruction"] + "\n" + " ".join(i["output"] for i in d["instances"])
            for d in _jsonl("alpaca_seed_tasks.jsonl")]
    with open(EVAL / "alpaca_subset_1k.json") as f:
        out += [" ".join([d["instruction"], d.get("input", ""), d["output"]]) for d in json.load(f)]
    seen, uniq = set(), []
    for t in out:
        k = fold_text(t)
        if len(k.split()) >= 12 and k not in seen:
            seen.add(k)
            uniq.append(t)
    return uniq


_SENT = re.compile(r"(?<=[.!?])\s+")
_NUM = re.compile(r"\d+")


def typo(t: str, rng: random.Random) -> str:
    words = t.split(" ")
    for _ in range(rng.randint(1, 2)):
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 3:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2:] if rng.random() < 0.5 else \
                w[:j] + w[j + 1:]
    return " ".join(words)


def reorder(t: str, rng: random.Random) -> str:
    s = _SENT.split(t)
    if len(s) > 2:
        i = rng.randrange(len(s) - 1)
        s[i], s[i + 1] = s[i + 1], s[i]
    return " ".join(s)


def insert_sentence(t: str, rng: random.Random, pool: list[str]) -> str:
    other = _SENT.split(rng.choice(pool))[0][:200]
    s = _SENT.split(t)
    s.insert(rng.randrange(len(s) + 1), other)
    return " ".join(s)


def change_number(t: str, rng: random.Random) -> str:
    nums = list(_NUM.finditer(t))
    if not nums:
        return t
    m = rng.choice(nums)
    return t[:m.start()] + str(int(m.group()) + rng.randint(1, 9)) + t[m.end():]


def noise(t: str, rng: random.Random) -> str:
    t = t.replace(", ", " , ") if rng.random() < 0.5 else t.replace(",", "")
    t = re.sub(r" ", lambda _: "  " if rng.random() < 0.05 else " ", t)
    return (t.upper() if rng.random() < 0.1 else t) + rng.choice(["", "!!", " ...", "\n"])


def build(n_docs: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = random.Random(seed)
    base = load_texts()
    rng.shuffle(base)
    n_seed = min(len(base), max(1, int(n_docs * 0.55)))
    base = base[:n_seed]
    docs, label = list(base), list(range(n_seed))
    edits = [typo, reorder, change_number, noise,
             lambda t, r: insert_sentence(t, r, base)]
    while len(docs) < n_docs:
        k = rng.randrange(n_seed)
        t = base[k]
        for e in rng.sample(edits, rng.randint(1, 3)):
            t = e(t, rng)
        docs.append(t)
        label.append(k)
    return shuffled(docs, label, rng)


def shuffled(docs: list[str], label: list[int], rng: random.Random
             ) -> tuple[list[str], np.ndarray]:
    """Texts and their true clusters in one seeded random order."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    return [docs[i] for i in order], np.array([label[i] for i in order])


def pair_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    def pairs(c: Counter) -> int:
        return sum(v * (v - 1) // 2 for v in c.values())
    tp = pairs(Counter(zip(pred.tolist(), truth.tolist(), strict=True)))
    pp, tt = pairs(Counter(pred.tolist())), pairs(Counter(truth.tolist()))
    p = tp / pp if pp else 1.0
    r = tp / tt if tt else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def shingles(text: str, n: int) -> list[str]:
    w = fold_text(text).split()
    return [" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))] if w else []


def roots_from(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    i = np.array([a for a, _ in edges], np.int64)
    j = np.array([b for _, b in edges], np.int64)
    return clusters.components(n, i, j)


def run_ours(docs: list[str], num_perm: int, thr: float, n: int, threads: int = 1
             ) -> np.ndarray:
    b, r = lsh.lsh_params(thr, num_perm)
    sig, nonempty = MinHasher(num_perm=num_perm, seed=1, ngram=n,
                              threads=threads).signatures(docs)
    i, j = lsh.candidate_pairs(sig, b, r)
    ok = nonempty[i] & nonempty[j]
    i, j = i[ok], j[ok]
    est = lsh.verify_pairs(sig, i, j, thr)
    keep = est >= thr
    return clusters.components(len(docs), i[keep], j[keep])


def run_datasketch(docs: list[str], num_perm: int, thr: float, n: int) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    index = MinHashLSH(threshold=thr, num_perm=num_perm)
    mhs = []
    for k, t in enumerate(docs):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles(t, n)])
        mhs.append(m)
        index.insert(k, m)
    edges = [(k, c) for k, m in enumerate(mhs) for c in index.query(m)
             if c > k and m.jaccard(mhs[c]) >= thr]
    return roots_from(len(docs), edges)


def run_rensa(docs: list[str], num_perm: int, thr: float, n: int) -> np.ndarray:
    from rensa import RMinHash, RMinHashLSH

    # rensa needs num_perm divisible by num_bands: same bands x rows, num_perm = bands * rows
    b, r = lsh.lsh_params(thr, num_perm)
    mhs = RMinHash.from_token_sets([shingles(t, n) for t in docs], num_perm=b * r, seed=1)
    index = RMinHashLSH(threshold=thr, num_perm=b * r, num_bands=b)
    index.insert_many(mhs)
    edges = [(k, c) for k, cs in enumerate(index.query_all(mhs)) for c in cs
             if c > k and mhs[k].jaccard(mhs[c]) >= thr]
    return roots_from(len(docs), edges)


def bench_embed(texts: list[str], repeats: int) -> dict[str, float | str]:
    """The semantic stage's Embedder (ONNX Runtime on CPU, int8 where it keeps quality) against
    plain fp32 SentenceTransformer.encode on the same texts: texts/s (best of `repeats`
    interleaved rounds after a warm-up of each; the one-off export is not timed) and the
    cosine agreement of the two vectors of every text."""
    from sentence_transformers import SentenceTransformer

    from transforms.embed.model import Embedder, resolve_model_path

    ours = Embedder()
    plain = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"), device="cpu")
    encoders = {"ours": ours.encode,
                "plain": lambda t: plain.encode(t, normalize_embeddings=True)}
    best, vectors = {}, {}
    for fn in encoders.values():
        fn(texts[:64])
    for _ in range(repeats):
        for name, fn in encoders.items():
            t = time.perf_counter()
            vectors[name] = np.asarray(fn(texts), np.float32)
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - t)
    cos = (vectors["ours"] * vectors["plain"]).sum(axis=1)
    return {"ours": len(texts) / best["ours"], "plain": len(texts) / best["plain"],
            "cos_mean": float(cos.mean()), "cos_min": float(cos.min()),
            "backend": ours.backend}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--embed-docs", type=int, default=300)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds; best time counts")
    a = ap.parse_args()
    docs, truth = build(a.docs)
    b, r = lsh.lsh_params(a.threshold, a.num_perm)
    print(f"{len(docs)} docs, {len(set(truth.tolist()))} true clusters; num_perm={a.num_perm} "
          f"threshold={a.threshold} bands={b} rows={r} word {a.ngram}-grams")
    results = {}

    def ours_2cores(*args: object) -> np.ndarray:
        return run_ours(*args, threads=2)  # type: ignore[arg-type]

    methods = (("ours", ours_2cores), ("ours_1thread", run_ours),
               ("datasketch", run_datasketch), ("rensa", run_rensa))
    for _, fn in methods:  # warm-up: imports, caches, the allocator's first large arrays
        fn(docs[: len(docs) // 4], a.num_perm, a.threshold, a.ngram)
    best: dict[str, float] = {}
    for _ in range(a.repeats):  # rounds interleave the methods; each keeps its best time
        for name, fn in methods:
            t = time.perf_counter()
            roots = fn(docs, a.num_perm, a.threshold, a.ngram)
            dt = time.perf_counter() - t
            if dt < best.get(name, float("inf")):
                best[name] = dt
                p, rec, f1 = pair_scores(roots, truth)
                results[name] = {"docs_per_s": len(docs) / dt, "p": p, "r": rec, "f1": f1}
    for name, r in results.items():
        print(f"{name:>13}: {r['docs_per_s']:10.0f} docs/s  precision {r['p']:.4f}  recall "
              f"{r['r']:.4f}  F1 {r['f1']:.4f}  (best of {a.repeats}: {best[name]:.2f} s)",
              flush=True)
    emb = bench_embed(docs[: a.embed_docs], a.repeats)
    emb_ours, emb_plain = float(emb["ours"]), float(emb["plain"])
    print(f"embeddings: semantic stage ({emb['backend']}) {emb_ours:.1f}/s, plain "
          f"SentenceTransformer.encode (fp32 torch) {emb_plain:.1f}/s over "
          f"{min(a.embed_docs, len(docs))} texts; cosine agreement mean {emb['cos_mean']:.4f} "
          f"min {emb['cos_min']:.4f}")
    o, d, rs = results["ours"], results["datasketch"], results["rensa"]
    o1 = results["ours_1thread"]
    print(json.dumps({
        "bench": "dedup", "docs": len(docs),
        "ours_docs_per_s": round(o["docs_per_s"], 1),
        "datasketch_docs_per_s": round(d["docs_per_s"], 1),
        "rensa_docs_per_s": round(rs["docs_per_s"], 1),
        "ours_1thread_docs_per_s": round(o1["docs_per_s"], 1),
        "ratio_vs_datasketch": round(o["docs_per_s"] / d["docs_per_s"], 2),
        "ratio_vs_rensa": round(o["docs_per_s"] / rs["docs_per_s"], 2),
        "ratio_vs_datasketch_1thread": round(o1["docs_per_s"] / d["docs_per_s"], 2),
        "ratio_vs_rensa_1thread": round(o1["docs_per_s"] / rs["docs_per_s"], 2),
        "f1": round(o["f1"], 4), "f1_datasketch": round(d["f1"], 4),
        "f1_rensa": round(rs["f1"], 4),
        "precision": round(o["p"], 4), "recall": round(o["r"], 4),
        "embed_per_s": round(emb_ours, 1), "embed_plain_per_s": round(emb_plain, 1),
        "embed_ratio": round(emb_ours / emb_plain, 3), "embed_backend": emb["backend"],
        "embed_cosine_mean": round(float(emb["cos_mean"]), 4),
        "embed_cosine_min": round(float(emb["cos_min"]), 4)}))


if __name__ == "__main__":
    main()
