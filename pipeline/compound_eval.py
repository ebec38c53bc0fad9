"""`refinery compound-eval`: reading its config (a `compound_eval:` YAML block and command-line
overrides) into the model of transforms/compound/evaluate.py; the run itself is
transforms/compound/evaluate_run.py."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path  # local-only: a config file
from typing import Any

from pydantic import ValidationError

from pipeline.config import ConfigError, parse_override, read_config_file, set_dotted
from transforms.compound import evaluate as ev


def load_eval_config(path: str | None, llm: Sequence[str] = (), limit: int | None = None,
                     sets: Sequence[str] = ()) -> ev.CompoundEvalConfig:
    """The `compound_eval:` block of a YAML file (or none), then `--llm ROLE.KEY=VALUE`
    overrides (`candidate.model=...`, `judge.base_url=...`, `judge_sampling.max_tokens=...`),
    then `--set KEY=VALUE` (any field), then `--limit`. Raises ConfigError
    listing the problems."""
    data: dict[str, Any] = {}
    if path:
        data = dict(read_config_file(Path(path)).get("compound_eval") or {})  # local-only: config
    roles = {*ev.ROLES, *(f"{r}_sampling" for r in ev.ROLES)}
    for text in llm:
        key, value = parse_override(text)
        if key.split(".", 1)[0] not in roles:
            raise ConfigError([f"--llm {text!r}: the key starts with one of {sorted(roles)}"])
        set_dotted(data, key, value)
    for text in sets:
        set_dotted(data, *parse_override(text))
    if limit is not None:
        data["limit"] = limit
    try:
        return ev.CompoundEvalConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError([f"compound_eval.{'.'.join(map(str, err['loc']))}: {err['msg']}"
                           for err in e.errors()]) from e
