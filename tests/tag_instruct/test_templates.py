"""Prompt templates against golden renderings (regenerate with REGEN_GOLDEN=1 after an
intended template change; the version hash changes with it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from transforms.tag_instruct import templates

GOLDEN = Path(__file__).parent / "golden"
INSTRUCTION = "Summarize the paragraph in one sentence.\n\nBees visit flowers to collect nectar."
CASES = {
    "compress": {"instruction": INSTRUCTION, "num_tags": 3},
    "expand": {"instruction": INSTRUCTION, "tags": ["summarization", "reading", "biology"]},
    "tag": {"instruction": INSTRUCTION, "max_tags": 12},
    "reconstruct": {"instruction": INSTRUCTION, "tags": ["summarization", "reading", "biology"],
                    "new_tag": "causal reasoning"},
    "respond": {"question": "Explain, in two sentences, how pollination links bees and fruit."},
}


@pytest.mark.parametrize("step", templates.STEPS)
def test_rendering_matches_golden(step: str) -> None:
    rendered = templates.render(step, **CASES[step])
    path = GOLDEN / f"{step}.txt"
    if os.environ.get("REGEN_GOLDEN"):
        path.write_text(rendered + "\n")
    assert rendered + "\n" == path.read_text()


PAPER_CASES = [(step, variant) for variant, steps in templates.VARIANTS.items()
               for step in steps]


@pytest.mark.parametrize(("step", "variant"), PAPER_CASES)
def test_paper_variants_match_golden_and_carry_what_theirs_carry(step: str, variant: str
                                                                 ) -> None:
    rendered = templates.render(step, variant, **CASES[step])
    path = GOLDEN / f"{step}_{variant}.txt"
    if os.environ.get("REGEN_GOLDEN"):
        path.write_text(rendered + "\n")
    assert rendered + "\n" == path.read_text()
    assert templates.answer_schema(step, variant=variant) is None  # free text, parsed
    assert templates.version(step, variant) != templates.version(step)
    must = {"compress": ["[Input]", "tag1, tag2, tag3", "[Tags]"],
            "expand": ["[Explanation]", "[New Tag]", "relevant", "perspective", "challenging"],
            "reconstruct": ["[New Question]", "subset", "solvable", "not count"],
            "respond": ["### Instruction:", "### Response:"]}[step]
    assert all(m in rendered for m in must)
    if step == "compress":  # six worked examples, then the task's own [Input]
        assert rendered.count("[Input]") == 7 and rendered.rstrip().endswith("[Tags]")
    if step == "expand":
        assert rendered.index("[Explanation]") < rendered.index("[New Tag]")


def test_versions_are_named_and_hash_the_template() -> None:
    versions = templates.versions()
    assert set(versions) == set(templates.STEPS)
    assert all(v.startswith(f"tag_instruct.{s}@") and len(v.split("@")[1]) == 12
               for s, v in versions.items())
    assert len(set(versions.values())) == len(versions)


def test_missing_variable_is_an_error() -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        templates.render("compress", instruction="x")


@pytest.mark.parametrize(("step", "good", "bad"), [
    ("compress", {"tags": ["a", "b", "c"]}, {"tags": ["a", "b"]}),
    ("expand", {"tag": "recursion", "explanation": "deeper"}, {"tag": ""}),
    ("reconstruct", {"tags_used": ["a"], "question": "Why?"}, {"question": "Why?"}),
    ("tag", {"tags": [{"tag": "a", "explanation": "b"}]}, {"tags": ["a"]}),
    ("retag", {"tags": [{"tag": "a", "explanation": "b"}]}, {"tags": []}),
])
def test_answer_schemas_are_valid_and_sized(step: str, good: dict, bad: dict) -> None:
    schema = templates.answer_schema(step, num_tags=3, tagger_max_tags=8)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    assert templates.answer_schema("respond") is None


def test_compress_schema_follows_num_tags() -> None:
    schema = templates.answer_schema("compress", num_tags=5)
    assert schema["properties"]["tags"]["minItems"] == 5
    # the file on disk is not mutated by sizing
    on_disk = json.loads((templates.SCHEMAS / "tag_instruct_compress.json").read_text())
    assert on_disk["properties"]["tags"]["minItems"] == 3
