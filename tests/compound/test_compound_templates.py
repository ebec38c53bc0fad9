"""Every compound template rendered against golden files; the examples inside the templates
obey the same parsers and rules the stage applies to model output."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jinja2
import jsonschema
import pytest

from transforms.compound import templates
from transforms.compound.categories import CATEGORIES, slug
from transforms.compound.parsers import parse_answer, parse_question
from transforms.compound.rule_check import RuleParams, check_answers, check_question

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("REFINERY_UPDATE_GOLDEN") == "1"

SEED = {"id": "s1", "question": "Why did the Titanic sink?",
        "answer": "The iceberg opened more forward compartments than the ship could survive.",
        "context": "RMS Titanic struck an iceberg on 14 April 1912. She could stay afloat with "
                   "four flooded compartments but not with five or more."}
SEED_NO_CONTEXT = {"id": "s2", "question": "What is the capital of Australia?",
                   "answer": "The capital of Australia is Canberra.", "context": ""}
PARTNER = {"id": "p1", "question": "Why do ships float?",
           "answer": "A ship displaces a weight of water equal to its own weight.", "context": ""}
LIMITS = {"max_chars": 1500, "max_context": 1200}


def _renderings() -> dict[str, str]:
    out = {}
    for cat in CATEGORIES:
        out[f"{slug(cat)}__context"] = templates.render_question(cat, SEED, None, 2, 4, **LIMITS)
        out[f"{slug(cat)}__plain"] = templates.render_question(
            cat, SEED_NO_CONTEXT, None, 2, 3, **LIMITS)
    out["comparison_and_selection__partner"] = templates.render_question(
        "Comparison-and-Selection", SEED, PARTNER, 2, 4, **LIMITS)
    subs = ["Why did the Titanic sink?", "What would happen if the Titanic had hit the iceberg "
            "head-on?"]
    cq = "Why did the Titanic sink, and what would happen if the Titanic had hit the iceberg head-on?"
    out["answer__context"] = templates.render_answer(
        "Hypothetical-Analysis", cq, subs, SEED, None, **LIMITS)
    out["answer__partner"] = templates.render_answer(
        "Comparison-and-Selection", cq, subs, SEED, PARTNER, **LIMITS)
    ref = "The Titanic sank because five compartments flooded. A head-on hit might have flooded fewer."
    out["check__context"] = templates.render_check(cq, subs, ref, SEED, None, **LIMITS)
    out["check__plain"] = templates.render_check(cq, subs, ref, SEED_NO_CONTEXT, None, **LIMITS)
    return out


RENDERINGS = _renderings()


@pytest.mark.parametrize("name", sorted(RENDERINGS))
def test_rendering_matches_golden(name: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(RENDERINGS[name] + "\n", encoding="utf-8")
    assert path.exists(), f"missing golden {path}; rerun with REFINERY_UPDATE_GOLDEN=1 and review"
    assert RENDERINGS[name] + "\n" == path.read_text(encoding="utf-8")


def test_every_template_has_a_golden_rendering() -> None:
    covered = {name.split("__")[0] for name in RENDERINGS}
    assert covered == set(templates.TEMPLATE_NAMES)


def test_renderings_carry_their_inputs() -> None:
    assert "Context: RMS Titanic" in RENDERINGS["factual_statement__context"]
    assert "Context:" not in RENDERINGS["factual_statement__plain"]
    assert "2 to 3 short sub-questions" in RENDERINGS["cause_and_effect__plain"]
    assert "Second seed question: Why do ships float?" in \
        RENDERINGS["comparison_and_selection__partner"]
    assert "two alternatives that the seed is about" in \
        RENDERINGS["comparison_and_selection__plain"]
    assert "2. What would happen if the Titanic" in RENDERINGS["answer__context"]


def test_undefined_variable_is_an_error() -> None:
    with pytest.raises(jinja2.UndefinedError):
        templates.load_template("factual_statement").render(question="q", answer="a")


def test_long_inputs_are_clipped() -> None:
    long_seed = {**SEED_NO_CONTEXT, "answer": "word " * 1000}
    text = templates.render_question("Factual-Statement", long_seed, None, 2, 4, 100, 50)
    assert "word " * 30 not in text and " ..." in text


def test_versions_are_distinct_content_hashes() -> None:
    versions = templates.template_versions()
    assert set(versions) == set(templates.TEMPLATE_NAMES)
    assert len(set(versions.values())) == len(versions)
    assert all(re.fullmatch(r"[0-9a-f]{12}", v) for v in versions.values())


def _example_outputs(name: str) -> list[dict]:
    text = (templates.PROMPTS_DIR / f"{name}.jinja").read_text()
    return [json.loads(line[len("Output: "):]) for line in text.splitlines()
            if line.startswith("Output: {")]


@pytest.mark.parametrize("category", CATEGORIES)
def test_template_examples_pass_parser_schema_and_rules(category: str) -> None:
    examples = _example_outputs(slug(category))
    assert examples, "each category template shows at least one example"
    for ex in examples:
        jsonschema.validate(ex, templates.question_schema(2, 4))
        parsed = parse_question(json.dumps(ex))
        assert parsed.ok, parsed
        assert check_question(parsed.value.compound_question, parsed.value.sub_questions,
                              RuleParams()) == []


def test_answer_example_passes_parser_schema_and_rules() -> None:
    (q_example,) = _example_outputs("factual_statement")
    (a_example,) = _example_outputs("answer")
    jsonschema.validate(a_example, templates.answer_schema(len(q_example["sub_questions"])))
    parsed = parse_answer(json.dumps(a_example))
    assert parsed.ok
    assert check_answers(q_example["sub_questions"], parsed.value.answer,
                         parsed.value.sub_answers, RuleParams()) == []


def test_schemas_follow_config_bounds() -> None:
    s = templates.question_schema(3, 5)["properties"]["sub_questions"]
    assert (s["minItems"], s["maxItems"]) == (3, 5)
    a = templates.answer_schema(3)["properties"]["sub_answers"]
    assert (a["minItems"], a["maxItems"]) == (3, 3)
    # the cached originals are not mutated by the patching above
    assert templates.question_schema(2, 4)["properties"]["sub_questions"]["maxItems"] == 4
    jsonschema.validate({"covers_all_sub_questions": True, "consistent_with_context": False,
                         "reason": "x"}, templates.check_schema())
