"""The rise stage's prompts: template, JSON Schema and content-hash version, loaded by name.

`load_prompt(name)` reads transforms/rise/prompts/<name>.jinja and, when present,
schemas/llm/rise_<name>.json; the version is `rise.<name>@<hash of the template>`, so lineage
and the response cache follow every edit of a prompt (no version is written by hand).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from transforms.llm.prompts import PromptTemplate, template_version

PROMPTS = Path(__file__).with_name("prompts")
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "llm"
STAGE = "rise"


@dataclass(frozen=True)
class Prompt:
    template: PromptTemplate
    schema: dict[str, Any] | None
    version: str

    def render(self, **variables: Any) -> str:
        return self.template.render(**variables)


@lru_cache(maxsize=16)
def load_prompt(name: str) -> Prompt:
    template = PromptTemplate.from_file(PROMPTS / f"{name}.jinja")
    schema_path = SCHEMAS / f"{STAGE}_{name}.json"
    schema = json.loads(schema_path.read_text()) if schema_path.exists() else None
    return Prompt(template, schema, f"{STAGE}.{name}@{template.version}")


def solve_messages(question: str) -> tuple[list[dict[str, str]], str]:
    """(the messages a solution is sampled from: system + user, their joint version)."""
    system, user = load_prompt("solve_system"), load_prompt("solve")
    msgs = [{"role": "system", "content": system.render()},
            {"role": "user", "content": user.render(question=question)}]
    version = f"{STAGE}.solve@{template_version(system.template.text + user.template.text)}"
    return msgs, version
