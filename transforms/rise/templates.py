"""The messages a policy sample is generated from: the solve prompts, versioned by content.

`solve_messages(question)` renders transforms/rise/prompts/solve_system.jinja (system) and
solve.jinja (user) through the kit's `load_prompt`; their joint version is
`rise.solve@<hash of both templates>`, recorded in lineage and the response cache key.
"""

from __future__ import annotations

from transforms.llm.prompts import load_prompt, template_version

STAGE = "rise"


def solve_messages(question: str) -> tuple[list[dict[str, str]], str]:
    """(the messages a solution is sampled from: system + user, their joint version)."""
    system, user = load_prompt(STAGE, "solve_system"), load_prompt(STAGE, "solve")
    msgs = [{"role": "system", "content": system.render()},
            {"role": "user", "content": user.render(question=question)}]
    version = f"{STAGE}.solve@{template_version(system.template.text + user.template.text)}"
    return msgs, version
