"""Benchmark: our judge-free question checks against the CQ-Syn authors' released data.

Data: ../shared/evaldata/compound_qa_understanding/ (Compound-QA, Understanding dimension, five
files of 1,000 records, one per type) as positives, and data/compound/negatives.json (written for
this project) as negatives. Checks: `compound_qa.question_failures` = compound structure
(rule_check.compound_structure: two or more asks, parts not a list of unrelated questions)
plus the per-type rules (type_rules.check_type), over the question and its context.

The rules were tuned on the records whose sha1(ID) is even ("tune"); the odd ones ("held") were
kept out of tuning and are reported separately. Acceptance per type = share of the released
questions of that type that pass; rejection per type = share of the negatives for that type
(the other four types' questions, single questions, lists of unrelated questions) that fail.
Also printed, for information: how often each type's rules accept the released questions of
the other types (the released types overlap; this is not a gate). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from transforms.compound.categories import CATEGORIES  # noqa: E402
from transforms.compound.compound_qa import question_failures, read_records  # noqa: E402

DEFAULT_DIR = ROOT / ".." / "shared" / "evaldata" / "compound_qa_understanding"
NEGATIVES = ROOT / "data" / "compound" / "negatives.json"
ACCEPT_MIN, REJECT_MIN = 0.95, 0.90


def split_of(record_id: str) -> str:
    return "tune" if int(hashlib.sha1(record_id.encode()).hexdigest(), 16) % 2 == 0 else "held"


def load_released(folder: Path) -> list[dict]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        rows += list(read_records(path.name, path.read_text(encoding="utf-8")))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--released", default=str(DEFAULT_DIR))
    ap.add_argument("--negatives", default=str(NEGATIVES))
    args = ap.parse_args()
    folder = Path(args.released)
    if not folder.is_dir():
        print(f"no released data at {folder}; nothing to measure")
        print(json.dumps({"skipped": True, "reason": f"missing {folder}"}))
        return 0
    released = load_released(folder)
    neg = json.loads(Path(args.negatives).read_text(encoding="utf-8"))
    contexts = neg["contexts"]

    acc: dict[str, dict[str, list[int]]] = {c: {"tune": [0, 0], "held": [0, 0]}
                                            for c in CATEGORIES}
    fails: dict[str, Counter] = {c: Counter() for c in CATEGORIES}
    cross: dict[str, Counter] = {c: Counter() for c in CATEGORIES}
    sizes = Counter(r["category"] for r in released)
    for r in released:
        own = question_failures(r["category"], r["com_question"], r["context"])
        cell = acc[r["category"]][split_of(r["id"])]
        cell[0] += not own
        cell[1] += 1
        fails[r["category"]].update(f["rule"] for f in own)
        for other in CATEGORIES:
            if other != r["category"] and not question_failures(other, r["com_question"],
                                                                 r["context"]):
                cross[other][r["category"]] += 1

    rejection: dict[str, float] = {}
    by_kind: dict[str, dict[str, str]] = {}
    for cat in CATEGORIES:
        kinds: dict[str, list[int]] = {}
        for item in neg["items"]:
            if item["label"] == cat:
                continue
            kind = item["label"] if item["label"] in ("single", "unrelated_list") else "other_type"
            rejected = bool(question_failures(cat, item["question"],
                                              contexts[item["context_topic"]]))
            cell = kinds.setdefault(kind, [0, 0])
            cell[0] += rejected
            cell[1] += 1
        rejection[cat] = round(sum(v[0] for v in kinds.values())
                               / sum(v[1] for v in kinds.values()), 4)
        by_kind[cat] = {k: f"{v[0]}/{v[1]}" for k, v in kinds.items()}

    print(f"{'type':<27} {'accept all':>10} {'tune':>7} {'held':>7} {'reject neg':>10}  "
          "negatives rejected by kind")
    result: dict[str, dict] = {}
    for cat in CATEGORIES:
        t, h = acc[cat]["tune"], acc[cat]["held"]
        all_ = (t[0] + h[0]) / max(1, t[1] + h[1])
        result[cat] = {"accept": round(all_, 4), "accept_tune": round(t[0] / max(1, t[1]), 4),
                       "accept_held": round(h[0] / max(1, h[1]), 4), "n": t[1] + h[1],
                       "reject_negatives": rejection[cat], "negatives": by_kind[cat],
                       "top_failures": dict(fails[cat].most_common(3)),
                       "accepts_other_released": {o: round(n / sizes[o], 3)
                                                  for o, n in sorted(cross[cat].items())}}
        print(f"{cat:<27} {all_:>10.3f} {result[cat]['accept_tune']:>7.3f} "
              f"{result[cat]['accept_held']:>7.3f} {rejection[cat]:>10.3f}  {by_kind[cat]}")
    print("\nacceptance of the other types' released questions (information, not a gate):")
    for cat in CATEGORIES:
        print(f"  {cat:<27} {result[cat]['accepts_other_released']}")
    ok = all(r["accept"] >= ACCEPT_MIN and r["accept_held"] >= ACCEPT_MIN
             and r["reject_negatives"] >= REJECT_MIN for r in result.values())
    print(json.dumps({"bench": "compound_released", "records": len(released),
                      "negatives": len(neg["items"]), "accept_min": ACCEPT_MIN,
                      "reject_min": REJECT_MIN, "pass": ok,
                      "types": {c: {k: result[c][k] for k in ("accept", "accept_tune",
                                                             "accept_held", "reject_negatives")}
                                for c in CATEGORIES}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
