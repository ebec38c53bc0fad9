"""PII counts and redaction, filter rules, composite score, selection core."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from schemas.records import with_meta
from tests.quality.helpers import batch_of, signals_of
from transforms.quality._defs import luhn_ok
from transforms.quality.composite import composite_score
from transforms.quality.config import CompositeTerm, FilterRule, QualityConfig
from transforms.quality.core import filter_batch, score_batch
from transforms.quality.filters import evaluate, rule_reason
from transforms.quality.select import select_diverse

PII_TEXT = ("Write to jane.doe@example.co.uk or +1 415-555-0132. Server 10.20.30.40, "
            "version 1.2.3.4.5 is not an IP. Card 4111 1111 1111 1111, not 4111 1111 1111 1112. "
            "Key sk-abcDEF1234567890abcdef12 and AKIAIOSFODNN7EXAMPLE.")


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_pii_counts() -> None:
    s = signals_of("My mail: ann@site.io", PII_TEXT)
    assert s["q_pii_email"] == 2
    assert s["q_pii_phone"] == 1
    assert s["q_pii_ip"] == 1
    assert s["q_pii_credit_card"] == 1
    assert s["q_pii_api_key"] == 2
    clean = signals_of("Add 12 and 30.", "The sum is 42.")
    assert all(clean[f"q_pii_{k}"] == 0 for k in ("email", "phone", "ip", "credit_card",
                                                   "api_key"))


def test_redaction_replaces_spans_in_every_message() -> None:
    cfg = QualityConfig(pii={"redact": True})
    out = score_batch(batch_of([("Reach me at ann@site.io", PII_TEXT), ("Hi", "Hello")]), cfg)
    msgs = out.column("messages").to_pylist()
    assert msgs[0][0]["content"] == "Reach me at [EMAIL]"
    red = msgs[0][1]["content"]
    for token in ("[EMAIL]", "[PHONE]", "[IP]", "[CREDIT_CARD]", "[API_KEY]"):
        assert token in red
    assert "4111 1111 1111 1112" in red  # fails Luhn: kept
    assert "jane.doe" not in red and "10.20.30.40" not in red
    assert msgs[1] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    # counts are of the original text; ids are kept
    assert out.column("meta").field("q_pii_email")[0].as_py() == 2
    assert out.column("id").to_pylist() == ["r0000", "r0001"]


def test_redaction_of_a_sliced_batch() -> None:
    batch = batch_of([("a@b.co", "x"), ("c@d.co", "y"), ("plain", "z")]).slice(1, 2)
    out = score_batch(batch, QualityConfig(pii={"redact": True, "kinds": ["email"]}))
    assert [m[0]["content"] for m in out.column("messages").to_pylist()] == ["[EMAIL]", "plain"]


def _meta_batch(**cols: list) -> pa.RecordBatch:
    return with_meta(batch_of([("p", "r")] * len(next(iter(cols.values())))), **cols)


def test_filters_first_matching_rule_names_the_reason() -> None:
    batch = _meta_batch(q_a=[0.1, 0.5, 0.9, None], q_b=[True, False, True, False],
                        q_response_words=[100, 100, 100, 100])
    rules = [FilterRule(signal="q_a", op=">", value=0.8, reason="too_a"),
             FilterRule(signal="q_b", op="==", value=True)]
    keep, reasons, details = evaluate(batch, rules)
    assert keep.to_pylist() == [False, True, False, True]
    assert reasons == ["q_b_eq_true", None, "too_a", None]
    assert details[2] == {"signal": "q_a", "op": ">", "threshold": 0.8, "value": 0.9}


@pytest.mark.parametrize("op,expected", [("<", [True, False, False]), ("<=", [True, True, False]),
                                          (">", [False, False, True]), (">=", [False, True, True]),
                                          ("==", [False, True, False]), ("!=", [True, False, True])])
def test_filter_ops(op: str, expected: list[bool]) -> None:
    batch = _meta_batch(q_x=[1, 2, 3])
    keep, _, _ = evaluate(batch, [FilterRule(signal="q_x", op=op, value=2)])
    assert [not k for k in keep.to_pylist()] == expected


def test_min_response_words_gates_a_rule() -> None:
    batch = _meta_batch(q_top2gram_frac=[0.5, 0.5], q_response_words=[10, 60])
    rule = FilterRule(signal="q_top2gram_frac", op=">", value=0.2, min_response_words=50)
    keep, reasons, _ = evaluate(batch, [rule])
    assert keep.to_pylist() == [True, False] and reasons[1] == "q_top2gram_frac_gt_0_2"
    assert rule_reason(FilterRule(signal="q_url_count", op=">=", value=3)) == "q_url_count_ge_3"


def test_unknown_signal_is_an_error_but_optional_ones_are_skipped() -> None:
    with pytest.raises(ValueError, match="unknown signal 'q_nope'"):  # refused by the config
        QualityConfig(filters=[{"signal": "q_nope", "op": ">", "value": 1}])
    cfg = QualityConfig.model_construct(filters=[FilterRule(signal="q_nope", op=">", value=1)])
    with pytest.raises(ValueError, match="q_nope"):  # and by the filter itself
        filter_batch(score_batch(batch_of([("p", "r")]), cfg), cfg)
    cfg = QualityConfig(filters=[{"signal": "q_judge_quality", "op": "<", "value": 3}])
    result = filter_batch(score_batch(batch_of([("p", "r")]), cfg), cfg)
    assert result.kept.num_rows == 1


def test_composite_scaling_weights_and_missing_values() -> None:
    batch = _meta_batch(q_len=[0, 50, 100, 200], q_bad=[0.0, 0.5, 1.0, None])
    terms = [CompositeTerm(signal="q_len", weight=1, lo=0, hi=100),
             CompositeTerm(signal="q_bad", weight=3, lo=0, hi=1, invert=True),
             CompositeTerm(signal="q_judge_quality", weight=5, lo=1, hi=6)]  # absent: skipped
    score = composite_score(batch, terms).to_pylist()
    assert score == pytest.approx([(0 + 3 * 1) / 4, (0.5 + 3 * 0.5) / 4, (1 + 0) / 4, 1.0])
    log_term = CompositeTerm(signal="q_len", lo=1, hi=100, log=True)
    s = composite_score(batch, [log_term]).to_pylist()
    assert s[0] == 0.0 and s[2] == 1.0 and 0.5 < s[1] < 1.0
    assert composite_score(_meta_batch(q_bad=[None]), terms[1:2]).to_pylist() == [None]


def test_composite_orders_good_above_bad() -> None:
    cfg = QualityConfig()
    good = "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen."
    bad = "I'm sorry, I cannot help with that and"
    scored = score_batch(batch_of([("Explain photosynthesis.", good),
                                   ("Explain photosynthesis.", bad)]), cfg)
    s = composite_score(scored, cfg.composite).to_pylist()
    assert 0.0 <= s[1] < s[0] <= 1.0


def test_select_diverse_top_k() -> None:
    ids = ["a", "b", "c", "d", "e"]
    scores = np.array([0.9, 0.8, 0.8, np.nan, 0.1])
    v = np.array([[1, 0], [1, 0.01], [0, 1], [0.7, 0.7], [0.6, -0.8]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    sel, skipped = select_diverse(ids, scores, v, top_k=3, max_similarity=0.9)
    assert sel == ["a", "c", "e"]  # b too close to a; d has no score (ranked last)
    assert skipped["b"]["why"] == "too_similar" and skipped["b"]["similar_to"] == "a"
    assert skipped["d"]["why"] == "below_top_k"
    sel, skipped = select_diverse(ids, scores, None, top_k=2, max_similarity=None)
    assert sel == ["a", "b"] and set(skipped) == {"c", "d", "e"}  # tie 0.8: id b before c
    assert select_diverse([], np.zeros(0), None, 5, 0.9) == ([], {})


def test_select_diverse_is_order_independent() -> None:
    rng = np.random.default_rng(0)
    ids = [f"id{i:03d}" for i in range(600)]  # more than one block
    scores = np.round(rng.random(600), 1)  # many ties
    v = rng.normal(size=(600, 8)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    perm = rng.permutation(600)
    a = select_diverse(ids, scores, v, 50, 0.6)[0]
    b = select_diverse([ids[i] for i in perm], scores[perm], v[perm], 50, 0.6)[0]
    assert a == b and len(a) == 50
    chosen = v[[ids.index(i) for i in a]]
    sims = chosen @ chosen.T - 2 * np.eye(len(a))
    # float32 products of another shape than select_diverse's may round the other way
    assert sims.max() <= 0.6 + 1e-6
