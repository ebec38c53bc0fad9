"""Benchmark: the compound stage's bucketed partner search against the exact search.

Data: synthetic unit vectors of the embedding model's width (384), drawn around --clusters topic
centres (seeds about the same topic are near each other, as real QA seeds are), --seeds in all.
In the same process on the same vectors, with the stage's defaults (partner window [0.3, 0.9],
8 neighbours, bucket target 1024, 8 tables, blocks of at most 4096):
  bucketed  LSH keys per table → buckets → id-ordered blocks → exact top-k per block → merge →
            choose (the pure functions FindPartners runs, without Beam);
  exact     top-k over all seeds (the same block search on one block of everything, in chunks
            of wanting rows so memory stays bounded), then the same choice.
Prints a table and ends with one JSON line: recall (share of seeds whose partner equals the
exact one), found (share given a partner, exact: found_exact), the mean similarity of the chosen
partners relative to the exact ones, largest block, seconds of each and the speed ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from transforms.compound.partners import (  # noqa: E402
    block_candidates,
    bucketed_search,
    choose,
    lsh_bits,
)

LO, HI, K = 0.3, 0.9, 8


def make_vectors(n: int, clusters: int, dim: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    emb = centres[rng.integers(0, clusters, n)] + noise * rng.normal(size=(n, dim))
    return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)


def exact(ids: list[str], emb: np.ndarray, chunk: int = 1024) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for start in range(0, len(ids), chunk):
        wanted = np.zeros(len(ids), dtype=bool)
        wanted[start:start + chunk] = True
        for i, cands in block_candidates(ids, emb, wanted, K).items():
            out[ids[i]] = choose(cands, LO, HI).partner_id
    return out


def bucketed(ids: list[str], emb: np.ndarray, target: int, tables: int, max_block: int,
             seed: int) -> tuple[dict[str, str | None], int]:
    bits = lsh_bits(len(ids), target, max_block)
    choices, largest = bucketed_search(ids, emb, bits=bits, tables=tables, max_block=max_block,
                                       neighbours=K, min_similarity=LO, max_similarity=HI,
                                       seed=seed)
    return {i: c.partner_id for i, c in choices.items()}, largest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=10_000, help="more than --max-block, so the "
                    "bucketed path runs (below it the stage searches exactly)")
    ap.add_argument("--clusters", type=int, default=400)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--noise", type=float, default=0.8,
                    help="per-coordinate spread in a topic (0.8: same-topic cosine about 0.6)")
    ap.add_argument("--tables", type=int, default=8)
    ap.add_argument("--target", type=int, default=1024)
    ap.add_argument("--max-block", type=int, default=4096)
    args = ap.parse_args()
    emb = make_vectors(args.seeds, args.clusters, args.dim, args.noise, seed=0)
    ids = [f"s{i:07d}" for i in range(args.seeds)]
    t0 = time.perf_counter()
    got, largest = bucketed(ids, emb, args.target, args.tables, args.max_block, seed=0)
    t_bucketed = time.perf_counter() - t0
    t0 = time.perf_counter()
    want = exact(ids, emb)
    t_exact = time.perf_counter() - t0
    recall = sum(got[i] == want[i] for i in ids) / len(ids)
    with_partner = sum(want[i] is not None for i in ids) / len(ids)
    found = sum(got[i] is not None for i in ids) / len(ids)
    index = {s: n for n, s in enumerate(ids)}

    def mean_sim(choice: dict[str, str | None]) -> float:
        pairs = [(index[i], index[p]) for i, p in choice.items() if p is not None]
        return float(np.mean([emb[a] @ emb[b] for a, b in pairs])) if pairs else 0.0

    sim_ratio = mean_sim(got) / mean_sim(want) if mean_sim(want) else None
    print(f"{'search':<10}{'seconds':>9}{'largest block':>15}")
    print(f"{'bucketed':<10}{t_bucketed:>9.2f}{largest:>15}")
    print(f"{'exact':<10}{t_exact:>9.2f}{args.seeds:>15}")
    bits = lsh_bits(args.seeds, args.target, args.max_block)
    print(f"seeds {args.seeds}, bits {bits}, tables {args.tables}; "
          f"same partner as exact: {recall:.3f}; a partner found: {found:.3f} (exact "
          f"{with_partner:.3f}); mean partner similarity vs exact: {sim_ratio:.3f}")
    print(json.dumps({"bench": "compound_partners", "seeds": args.seeds, "recall": round(recall, 4),
                      "found": round(found, 4), "found_exact": round(with_partner, 4),
                      "similarity_vs_exact": round(sim_ratio, 4) if sim_ratio else None,
                      "largest_block": largest, "bucketed_s": round(t_bucketed, 2),
                      "exact_s": round(t_exact, 2),
                      "ratio_vs_exact": round(t_exact / t_bucketed, 2) if t_bucketed else None}))


if __name__ == "__main__":
    main()
