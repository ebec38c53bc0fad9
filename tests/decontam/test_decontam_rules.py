"""Planted contamination is caught, clean texts are not, and the vectorized rules agree with
the brute-force set-intersection twin."""

from __future__ import annotations

import random

import pytest
from decontam_helpers import fixture_items, fixture_specs, gsm_questions, make_batch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests._hypothesis import examples
from transforms.decontam.config import DecontamConfig, RuleConfig
from transforms.decontam.detect import Detector
from transforms.decontam.reference import BruteForce
from transforms.decontam.tokens import tokenize_py

ITEMS = fixture_items()
Q = gsm_questions()
HUMANEVAL_0 = ('def count_vowel_runs(text: str) -> int:\n    """ Return how many maximal runs of '
               'consecutive vowels appear in text.\n    Vowels are a, e, i, o and u, in either '
               'case.\n    """\n')


def _detector(**kw) -> Detector:
    return Detector(DecontamConfig(benchmarks=fixture_specs(), **kw), ITEMS)


PLANTED = {
    "verbatim": "Please solve: " + Q[0] + " Show your work.",
    "light_edits": Q[0].replace("Marisol", "Rebecca").replace("village stall", "town market")
    .replace("morning", "day").lower(),
    "changed_numbers": Q[0].replace("24", "31").replace(" 5 ", " 8 ").replace("7", "4")
    .replace("$3", "$2"),
    "changed_numbers_2": Q[4].replace("18", "22").replace("40", "35").replace("450", "610"),
    "code_prompt": HUMANEVAL_0,
    "mt_bench_turn": "Write a short letter from a lighthouse keeper to the ships that pass by, "
                     "describing one stormy night on the island.",
    "mmlu_question": "Which layer of the atmosphere contains most of the ozone that absorbs "
                     "ultraviolet light from the sun?",
}
EXPECTED = {"verbatim": ("gsm8k", "0"), "light_edits": ("gsm8k", "0"),
            "changed_numbers": ("gsm8k", "0"), "changed_numbers_2": ("gsm8k", "4"),
            "code_prompt": ("humaneval", "Mini/0"), "mt_bench_turn": ("mt_bench", "901"),
            "mmlu_question": ("mmlu", "0")}
# Clean texts that share only common phrases with the benchmarks.
CLEAN = {
    "common_question_tail": "Lena sells lemonade for $2 a cup. How many dollars does she earn "
                            "each morning if she sells 30 cups?",
    "common_opening": "Write a short letter to your landlord asking to fix the heating.",
    "common_code": "def count_words(text: str) -> int:\n    \"\"\" Return how many words appear "
                   "in text. \"\"\"\n",
    "common_science": "Which layer of the skin contains most of the sweat glands?",
    "mixed_phrases": "A bakery packs cookies into bags. How many weeks must he save? The novel "
                     "has many pages, and every morning she reads.",
}


def test_planted_contamination_is_flagged_with_its_item() -> None:
    batch = make_batch(list(PLANTED.items()) + list(CLEAN.items()))
    reasons, details = _detector().find(batch)
    got = dict(zip(list(PLANTED) + list(CLEAN), zip(reasons, details, strict=True), strict=True))
    for name, (bench, item_id) in EXPECTED.items():
        reason, detail = got[name]
        assert reason == "contaminated_tulu3", name
        assert (detail["benchmark"], detail["item_id"]) == (bench, item_id), name
        assert detail["overlap"] > 0.5
        assert len(detail["span"].split()) >= 8
    for name in CLEAN:
        assert got[name] == (None, None), name


def test_verbatim_detail_names_the_span_and_overlap() -> None:
    reasons, details = _detector().find(make_batch([("r", PLANTED["verbatim"])]))
    assert reasons == ["contaminated_tulu3"]
    d = details[0]
    assert d["overlap"] == 1.0 and d["n"] == 8 and d["rule"] == "tulu3"
    assert d["span"] == " ".join(tokenize_py(Q[0], True))
    assert d["item_excerpt"] == Q[0][:200]
    assert [m["rule"] for m in d["matches"]] == ["tulu3"]  # same item: listed once
    assert d["num_matches"] == 1


def test_changed_numbers_need_number_masking() -> None:
    dense = "Add 11 to 12, then 13 to 14, then 15 to 16, and 17 to 18; report 19 and 20."
    changed = "Add 21 to 22, then 23 to 24, then 25 to 26, and 27 to 28; report 29 and 30."
    items = ITEMS.__class__(benchmarks=["b"], bench=[0], ids=["x"], texts=[dense])
    masked = Detector(DecontamConfig(benchmarks=fixture_specs()[:1]), items)
    plain = Detector(DecontamConfig(benchmarks=fixture_specs()[:1], mask_numbers=False), items)
    batch = make_batch([("r", changed)])
    assert masked.find(batch)[0] == ["contaminated_tulu3"]
    assert plain.find(batch)[0] == [None]


def test_gpt3_rule_flags_one_shared_13gram_only() -> None:
    thirteen = " ".join(Q[2].split()[:13])
    twelve = " ".join(Q[2].split()[:12])
    batch = make_batch([("13", f"Unrelated start. {thirteen} unrelated end."),
                        ("12", f"Unrelated start. {twelve} unrelated end.")])
    reasons, details = _detector(rules=["gpt3"]).find(batch)
    assert reasons == ["contaminated_gpt3", None]
    assert details[0]["item_id"] == "2" and details[0]["overlap"] < 0.5


def test_rule_order_picks_the_reason() -> None:
    row = make_batch([("r", PLANTED["verbatim"])])
    assert _detector(rules=["gpt3", "tulu3"]).find(row)[0] == ["contaminated_gpt3"]
    assert _detector(rules=["tulu3", "gpt3"]).find(row)[0] == ["contaminated_tulu3"]


def test_scope_prompt_ignores_the_answer() -> None:
    batch = make_batch([("r", "Tell me a story.")], answer=Q[3])
    assert _detector(scope="prompt").find(batch)[0] == [None]
    assert _detector(scope="conversation").find(batch)[0] == ["contaminated_tulu3"]


def test_ngrams_do_not_span_two_messages() -> None:
    words = Q[2].split()
    batch = make_batch([("r", " ".join(words[:7]))], answer=" ".join(words[7:14]))
    assert _detector(rules=["gpt3"], scope="conversation").find(batch)[0] == [None]


def test_boilerplate_ngrams_over_the_item_share_are_left_out() -> None:
    shared = "answer the following question with a single word please"
    texts = [f"{shared} item {w} is here" for w in "abcdef"]
    items = ITEMS.__class__(benchmarks=["b"], bench=[0] * 6, ids=list("abcdef"), texts=texts)
    row = make_batch([("r", shared)])
    rules = [RuleConfig(name="any8", n=8, min_coverage=0.0)]
    keep_all = Detector(DecontamConfig(benchmarks=fixture_specs()[:1], rules=rules,
                                       max_item_share=None), items)
    capped = Detector(DecontamConfig(benchmarks=fixture_specs()[:1], rules=rules,
                                     max_item_share=5), items)
    assert keep_all.find(row)[0] == ["contaminated_any8"]
    assert keep_all.find(row)[1][0]["num_matches"] == 6
    assert capped.find(row)[0] == [None]
    assert capped.index.by_n[8].dropped_common == 3


_WORDS = ["the", "she", "apples", "how", "many", "7", "blue", "river", "sells", "every",
          "morning", "pages", "of", "and", "is", "x"]


@st.composite
def _training_text(draw: st.DrawFn) -> str:
    """Random filler with random windows of benchmark items spliced in."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            toks = ITEMS.texts[draw(st.integers(0, len(ITEMS) - 1))].split()
            a = draw(st.integers(0, len(toks) - 1))
            b = draw(st.integers(a, min(len(toks), a + 40)))
            parts.append(" ".join(toks[a:b]))
        else:
            parts.append(" ".join(draw(st.lists(st.sampled_from(_WORDS), max_size=12))))
    return " ".join(parts)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_training_text(), min_size=1, max_size=6), st.booleans(),
       st.sampled_from(["prompt", "conversation"]))
def test_agrees_with_brute_force(texts: list[str], mask: bool, scope: str) -> None:
    rules = [RuleConfig(name="tulu3", n=8, min_coverage=0.5),
             RuleConfig(name="gpt3", n=13, min_coverage=0.0),
             RuleConfig(name="short", n=3, min_coverage=0.3)]
    det = _detector(rules=rules, mask_numbers=mask, scope=scope, max_matches_per_row=1000)
    answer = texts[-1]
    reasons, details = det.find(make_batch([(str(i), t) for i, t in enumerate(texts)],
                                           answer=answer))
    brute = BruteForce(ITEMS.texts, rules, mask, det.config.max_item_share)
    for i, text in enumerate(texts):
        want_reason, flagged = brute.check([text] if scope == "prompt" else [text, answer])
        assert reasons[i] == want_reason
        want = {(r, ITEMS.ids[j], round(c, 4)) for r, hits in flagged.items()
                for j, c in hits.items()}
        got = set() if details[i] is None else \
            {(m["rule"], m["item_id"], m["overlap"]) for m in details[i]["matches"]}
        # matches list each item once (first rule): compare item sets, coverage per rule
        assert {x[1] for x in got} == {x[1] for x in want}
        assert got <= want


@settings(max_examples=examples(80), deadline=None)
@given(st.integers(0, len(ITEMS) - 1), st.integers(0, 200), st.integers(0, 2**31))
def test_a_planted_13gram_is_always_caught(item: int, start: int, seed: int) -> None:
    toks = ITEMS.texts[item].split()
    assume(len(toks) >= 13)
    start = start % (len(toks) - 12)
    window = tokenize_py(" ".join(toks[start:start + 13]), True)
    assume(len(window) >= 13 and any(t != "0" for t in window[:13]))
    rng = random.Random(seed)
    filler = [rng.choice(_WORDS) for _ in range(rng.randint(0, 30))]
    cut = rng.randint(0, len(filler))
    text = " ".join(filler[:cut] + toks[start:start + 13] + filler[cut:])
    reasons, details = _detector(rules=["gpt3"]).find(make_batch([("r", text)]))
    assert reasons == ["contaminated_gpt3"]
    assert ITEMS.ids[item] in {m["item_id"] for m in details[0]["matches"]}


def test_longest_run_is_the_longest_covered_stretch() -> None:
    det = _detector(rules=[RuleConfig(name="r", n=3, min_coverage=0.0)])
    toks = Q[5].split()
    text = " ".join(toks[0:5]) + " zzz " + " ".join(toks[10:22])
    reasons, details = det.find(make_batch([("r", text)]))
    assert reasons == ["contaminated_r"]
    assert details[0]["span"] == " ".join(tokenize_py(" ".join(toks[10:22]), True))


@pytest.mark.parametrize("n_rows", [0, 1])
def test_empty_and_messageless_batches(n_rows: int) -> None:
    batch = make_batch([("r", "")] * n_rows)
    reasons, details = _detector().find(batch)
    assert reasons == [None] * n_rows and details == [None] * n_rows
