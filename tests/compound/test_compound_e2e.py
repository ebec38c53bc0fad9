"""CQ-Syn end to end through a real OpenAI-compatible server on 127.0.0.1 that plays each role
under its own model name (writer, answer model, judge): the context reaches the user turn, each
rule and each LLM verdict rejects its planted case, and every reason the stage can give is
produced by some case here."""

from __future__ import annotations

import json
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas.records import example_row, examples_to_batch
from tests.compound._outputs import by_kind, tagged
from tests.compound._role_server import (
    ANSWER_OK,
    CONTEXT,
    QUESTION_OK,
    ROLE_MODELS,
    RoleServer,
    answer_for,
    question,
)
from transforms.base import RunContext
from transforms.compound.categories import CATEGORIES
from transforms.compound.config import CompoundConfig
from transforms.compound.core import parse_key
from transforms.compound.rule_check import ANSWER_RULES, QUESTION_RULES
from transforms.compound.steps import LLM_REASONS
from transforms.compound.type_rules import TYPE_RULES
from transforms.llm.config import LLMConfig

FS, CE, HA, CS, ES = CATEGORIES
Q = question
SUBS = Q(FS)["sub_questions"]


def _q(subs: list[str], cq: str) -> dict:
    return {"sub_questions": subs, "compound_question": cq}


def _a(parts: list[str], answer: str) -> dict:
    return {"sub_answers": parts, "answer": answer}


GOOD_A = answer_for(SUBS)
# case → (category, step, scripted reply, expected reason)
CASES: dict[str, tuple[str, str, object, str]] = {
    "few": (FS, "question", _q(SUBS[:1], SUBS[0]), "rule_too_few_sub_questions"),
    "many": (FS, "question", _q([*SUBS, "Who built the Brooklyn Bridge?",
                                 "How long is the Brooklyn Bridge?",
                                 "How wide is the Brooklyn Bridge?"], " ".join(SUBS)),
             "rule_too_many_sub_questions"),
    "dup": (FS, "question", _q([SUBS[0], SUBS[0]], SUBS[0]), "rule_duplicate_sub_questions"),
    "notq": (FS, "question", _q(["The Brooklyn Bridge opened in 1883.", SUBS[1]],
                                "The Brooklyn Bridge opened in 1883. " + SUBS[1]),
             "rule_sub_question_not_a_question"),
    "ungrounded": (FS, "question", _q([SUBS[0], "How do plants photosynthesize?"],
                                      SUBS[0] + " How do plants photosynthesize?"),
                   "rule_sub_question_not_grounded"),
    "absent": (FS, "question", _q([SUBS[0], "Which river does the ferry cross daily?"],
                                  "When did the Brooklyn Bridge open?"),
               "rule_sub_question_not_in_question"),
    "opinion": (FS, "question", _q([SUBS[0], "What would happen if the bridge closed?"],
                                   SUBS[0] + " What would happen if the bridge closed?"),
                "rule_factual_asks_opinion"),
    "singleask": (FS, "question", _q(SUBS, "When did the Brooklyn Bridge, which crosses a "
                                           "river, open?"), "rule_question_single_ask"),
    "unrelated": (FS, "question", _q([SUBS[0], SUBS[0].rstrip("?") + ", and who wrote Moby-Dick?"],
                                     SUBS[0] + " Who wrote Moby-Dick?"),
                  "rule_question_unrelated_parts"),
    "factualopens": (FS, "question", _q(["Why did the Brooklyn Bridge open in 1883?", SUBS[1]],
                                        "Why did the Brooklyn Bridge open in 1883? Which river "
                                        "does it cross?"), "rule_factual_opens_as_other"),
    "nocause": (CE, "question", _q(["What was the effect of closing two lanes on commuters?",
                                    "What was the effect of cracks in the deck?"],
                                   "What was the effect of closing two lanes on commuters? What "
                                   "was the effect of cracks in the deck?"),
                "rule_cause_effect_no_cause"),
    "noeffect": (CE, "question", _q(["What factors were behind the cracks in the deck of the "
                                     "bridge?", "Who closed two lanes?"],
                                    "What factors were behind the cracks in the deck of the "
                                    "bridge? Who closed two lanes?"),
                 "rule_cause_effect_no_effect"),
    "ceopens": (CE, "question", _q(["Why did the city close two lanes when the deck cracked?",
                                    "What was the effect of the lane closure on commuters?"],
                                   "If the deck cracked, why did the city close two lanes? What "
                                   "was the effect on commuters?"),
                "rule_cause_effect_opens_as_other"),
    "nocondition": (HA, "question", Q(FS), "rule_hypothetical_no_condition"),
    "haopens": (HA, "question", _q(["Why did the city close two lanes of the Brooklyn Bridge?",
                                    "What would happen to commuters if the whole bridge "
                                    "closed?"],
                                   "Why did the city close two lanes of the Brooklyn Bridge, and "
                                   "what would happen to commuters if the whole bridge closed?"),
                "rule_hypothetical_opens_as_other"),
    "nocontrast": (CS, "question", _q(["How cheap is the ferry?",
                                       "Which ferry ticket should a commuter choose?"],
                                      "How cheap is the ferry? Which ferry ticket should a "
                                      "commuter choose?"),
                   "rule_comparison_no_contrast"),
    "nochoice": (CS, "question", _q(["How does the ferry differ from the Brooklyn Bridge?",
                                     "How long does the ferry take across the East River?"],
                                    "How does the ferry differ from the Brooklyn Bridge, and how "
                                    "long does the ferry take across the East River?"),
                 "rule_comparison_no_choice"),
    "csopens": (CS, "question", _q(["Why is the ferry slower than the Brooklyn Bridge?",
                                    "Which should a commuter choose to save money?"],
                                   "Why is the ferry slower than the Brooklyn Bridge? Which "
                                   "should a commuter choose to save money?"),
                "rule_comparison_opens_as_other"),
    "noassess": (ES, "question", _q(["What is the deck of the Brooklyn Bridge made of?",
                                     "When was the Brooklyn Bridge built?"],
                                    "What is the deck of the Brooklyn Bridge made of, and when "
                                    "was the Brooklyn Bridge built?"),
                 "rule_evaluation_no_assessment_or_suggestion"),
    "esopens": (ES, "question", _q(["How safe is the Brooklyn Bridge if the deck stays weak?",
                                    "What should the city do about the deck?"],
                                   "If the deck stays weak, how safe is the Brooklyn Bridge? "
                                   "What should the city do about the deck?"),
                "rule_evaluation_opens_as_other"),
    "blankq": (FS, "question", _q(SUBS, "   "), "question_empty_compound_question"),
    "blanksubs": (FS, "question", _q(["", " "], "When?"), "question_empty_sub_questions"),
    "notcompound": (FS, "question_check", {**QUESTION_OK, "single_compound_question": False},
                    "llm_question_not_compound"),
    "unanswerable": (HA, "question_check", {**QUESTION_OK, "answerable_from_context": False},
                     "llm_question_not_answerable"),
    "wrongtype": (CE, "question_check", {**QUESTION_OK, "matches_type": False},
                  "llm_question_wrong_type"),
    "unanswered": (FS, "answer", _a(GOOD_A["sub_answers"][:1], GOOD_A["answer"]),
                   "rule_unanswered_sub_question"),
    "extra": (FS, "answer", _a([*GOOD_A["sub_answers"], "Also 1883."], GOOD_A["answer"]),
              "rule_extra_sub_answers"),
    "emptypart": (FS, "answer", _a([GOOD_A["sub_answers"][0], "  "], GOOD_A["answer"]),
                  "rule_empty_sub_answer"),
    "offtopic": (FS, "answer", _a([GOOD_A["sub_answers"][0], "Yes, indeed."],
                                  GOOD_A["sub_answers"][0] + " Yes, indeed."),
                 "rule_sub_answer_off_topic"),
    "echo": (FS, "answer", _a([GOOD_A["sub_answers"][0], SUBS[1]],
                              GOOD_A["sub_answers"][0] + " " + SUBS[1]),
             "rule_sub_answer_echoes_question"),
    "omits": (FS, "answer", _a(GOOD_A["sub_answers"], "The bridge opened in 1883."),
              "rule_answer_omits_sub_answer"),
    "blankanswer": (FS, "answer", _a(GOOD_A["sub_answers"], " "), "answer_empty_answer"),
    "blankparts": (FS, "answer", _a(["", ""], GOOD_A["answer"]), "answer_empty_sub_answers"),
    "notcovering": (ES, "answer_check", {**ANSWER_OK, "covers_all_sub_questions": False},
                    "llm_answer_not_covering"),
    "inconsistent": (CS, "answer_check", {**ANSWER_OK, "consistent_with_context": False},
                     "llm_answer_inconsistent"),
    "down": (FS, "question", 400, "deadletter_question"),
    "judgedown": (FS, "question_check", 400, "deadletter_question_check"),
}
SCRIPT = {(case, cat, step): reply for case, (cat, step, reply, _) in CASES.items()}


def _seeds() -> list[dict]:
    rows = [example_row(case, [{"role": "user", "content": f"When did the bridge open? case-{case}"},
                               {"role": "assistant", "content": "In 1883."}],
                        {"dataset": "t", "file": "t.jsonl", "row": i}, context=CONTEXT)
            for i, case in enumerate(["ok", *CASES])]
    rows.append(example_row("noanswer", [{"role": "user", "content": "Why? case-noanswer"}]))
    rows.append(example_row("noquestion", [{"role": "assistant", "content": "case-noquestion"}]))
    return rows


def _role(server: RoleServer, role: str) -> LLMConfig:
    return LLMConfig(backend="openai", model=ROLE_MODELS[role], base_url=server.base_url,
                     cache=False, retries=0, max_retries=0, batch_size=8, concurrency=4)


def _expected() -> dict[tuple[str, str], str | None]:
    """(seed, category) → expected reason (None: accepted)."""
    want = {(seed, cat): None for seed in ["ok", *CASES] for cat in CATEGORIES}
    want.update({(case, cat): reason for case, (cat, _, _, reason) in CASES.items()})
    want.update({(s, cat): f"seed_without_{s[2:]}" for s in ("noanswer", "noquestion")
                 for cat in CATEGORIES})
    return want


def _check(items) -> None:
    got = by_kind(items)
    slug_to_cat = {c.lower().replace("-", "_"): c for c in CATEGORIES}
    ends: dict[tuple[str, str], list] = {}
    for r in got["examples"]:
        ends.setdefault((r["meta"]["seed_id"], r["meta"]["category"]), []).append(None)
    for r in got["rejected"]:
        ends.setdefault((r["meta"]["seed_id"], r["meta"]["category"]), []).append(
            r["reject_reason"])
    for d in got["deadletter"]:
        step, slug, seed = parse_key(d["record_id"])
        ends.setdefault((seed, slug_to_cat[slug]), []).append(f"deadletter_{step}")
    assert ends == {k: [v] for k, v in _expected().items()}

    # the context is in the user turn, followed by the compound question
    for r in got["examples"]:
        user = r["messages"][0]["content"]
        assert user.startswith(CONTEXT) and user.endswith(r["meta"]["com_question"])
        assert r["messages"][1]["content"] == r["meta"]["com_reference"]
        assert r["meta"]["context"] == CONTEXT and len(r["meta"]["sub_questions"]) == 2
        models = json.loads(r["meta"]["checks"])["models"]
        assert models == {"question": "openai:writer-model", "answer": "openai:answer-model",
                          "question_check": "openai:judge-model",
                          "answer_check": "openai:judge-model"}
    (rep,) = got["report"]
    assert rep["seeds"] == len(_expected()) and rep["accepted"] == len(got["examples"])
    assert rep["per_category"][FS]["sub_questions_accepted"] == {"2": rep["per_category"][FS]
                                                                 ["accepted"]}
    reasons = Counter(r for r in _expected().values() if r)
    assert rep["reasons"] == dict(sorted(reasons.items()))


@pytest.mark.slow
def test_roles_rules_and_verdicts_through_a_loopback_server(tmp_path) -> None:
    from transforms.compound.stage import CompoundStage

    with RoleServer(SCRIPT) as server:
        cfg = CompoundConfig(
            enabled=True, categories_per_seed=5, partner_categories=[], answer_check=True,
            roles={"writer": _role(server, "writer"), "answer": _role(server, "answer"),
                   "judge": _role(server, "judge")})
        ctx = RunContext(seed=1, work_dir=str(tmp_path), llm=LLMConfig(model="unused"),
                         roles={"compound": cfg.roles})
        rows = _seeds()
        with TestPipeline() as p:
            out = (p | beam.Create([examples_to_batch(rows[:20]), examples_to_batch(rows[20:])])
                   | CompoundStage(cfg, ctx))
            assert_that(tagged(out), _check)
        # each role's prompts went to its own model, and the writer saw the context
        seen = {(q["step"], q["model"]) for q in server.requests}
        assert seen == {("question", "writer-model"), ("question_check", "judge-model"),
                        ("answer", "answer-model"), ("answer_check", "judge-model")}
        assert all(CONTEXT in q["prompt"] for q in server.requests)


def test_every_reason_of_the_stage_is_planted_here() -> None:
    """The reasons the rules and verdicts can give, all covered by a case above (the seed,
    partner and dead-letter reasons by the seeds, the partner test and the 400 cases)."""
    planted = {reason for *_, reason in CASES.values()}
    rules = {f"rule_{r}" for r in QUESTION_RULES + ANSWER_RULES + TYPE_RULES}
    assert rules | set(LLM_REASONS) <= planted
    parse = {f"question_{e}" for e in ("empty_sub_questions", "empty_compound_question")} | \
        {f"answer_{e}" for e in ("empty_sub_answers", "empty_answer")}
    assert parse <= planted
