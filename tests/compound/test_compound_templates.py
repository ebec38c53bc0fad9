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
from transforms.compound.parsers import parse_question
from transforms.compound.rule_check import RuleParams, check_question, compound_structure
from transforms.compound.type_rules import check_type

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
    subs = ["Why did the Titanic sink?", "What would happen if it had hit the iceberg head-on?"]
    cq = "Why did the Titanic sink, and what would have happened if it had hit the iceberg head-on?"
    ctx = templates.user_context(SEED, None, 1200)
    facts = templates.facts(SEED, None, 1500)
    both = templates.user_context(SEED, {**PARTNER, "context": "Ships float by displacement."},
                                  1200)
    out["question_check__context"] = templates.render_question_check(
        "Hypothetical-Analysis", cq, subs, ctx, facts)
    out["question_check__plain"] = templates.render_question_check(
        "Hypothetical-Analysis", cq, subs, "", templates.facts(SEED_NO_CONTEXT, None, 1500))
    out["answer__context"] = templates.render_answer("Hypothetical-Analysis", cq, subs, ctx, facts)
    out["answer__partner"] = templates.render_answer(
        "Comparison-and-Selection", cq, subs, both, templates.facts(SEED, PARTNER, 1500))
    ref = "The Titanic sank because five compartments flooded. A head-on hit might have flooded fewer."
    out["answer_check__context"] = templates.render_answer_check(
        "Hypothetical-Analysis", cq, subs, ref, ctx, facts)
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
    assert "Context:\nRMS Titanic" in RENDERINGS["factual_statement__context"]
    assert "Now the material.\nSeed question:" in RENDERINGS["factual_statement__plain"]
    assert "Write 2 to 3 sub-questions" in RENDERINGS["cause_and_effect__plain"]
    assert "Second seed question: Why do ships float?" in \
        RENDERINGS["comparison_and_selection__partner"]
    assert "alternatives the material is about" in RENDERINGS["comparison_and_selection__plain"]
    assert "2. What would happen if it had hit" in RENDERINGS["answer__context"]
    # the judge sees the type's description and writes its verdict after its reasoning
    qc = RENDERINGS["question_check__context"]
    assert "Hypothetical-Analysis: what would happen if a condition changed" in qc
    assert qc.index('"reasoning"') < qc.index('"single_compound_question"')
    assert "Ships float by displacement." in RENDERINGS["answer__partner"]


def test_prompts_no_longer_force_word_for_word_joins() -> None:
    for name in templates.TEMPLATE_NAMES:
        text = (templates.PROMPTS_DIR / f"{name}.jinja").read_text()
        assert "word for word" not in text and "no \"it\"" not in text.lower()


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
    assert all(re.fullmatch(rf"compound\.{n}@[0-9a-f]{{12}}", v) for n, v in versions.items())


def _example_outputs(name: str) -> list[dict]:
    text = (templates.PROMPTS_DIR / f"{name}.jinja").read_text()
    return [json.loads(line[len("Output: "):]) for line in text.splitlines()
            if line.startswith("Output: {")]


@pytest.mark.parametrize("category", CATEGORIES)
def test_template_examples_pass_parser_schema_and_rules(category: str) -> None:
    """Several examples per type; each obeys the schema, the parser, the generic rules and its
    type's rules, so the prompt never teaches what the checks reject."""
    examples = _example_outputs(slug(category))
    assert len(examples) >= 3, "each type's prompt shows several examples"
    for ex in examples:
        jsonschema.validate(ex, templates.question_schema())
        parsed = parse_question(json.dumps(ex))
        assert parsed.ok, parsed
        q = parsed.value
        assert check_question(q.compound_question, q.sub_questions, RuleParams()) == [], ex
        assert check_type(category, q.compound_question, q.sub_questions) == [], ex
        assert compound_structure(q.compound_question) == [], ex


def test_verdict_schemas_put_reasoning_first() -> None:
    for step in ("question_check", "answer_check"):
        schema = templates.check_schema(step)
        assert next(iter(schema["properties"])) == "reasoning"
        assert set(schema["required"]) == set(schema["properties"])
    jsonschema.validate({"reasoning": "r", "single_compound_question": True,
                         "answerable_from_context": False, "matches_type": True},
                        templates.check_schema("question_check"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"reasoning": "r", "covers_all_sub_questions": "yes",
                             "consistent_with_context": True}, templates.check_schema("answer_check"))
