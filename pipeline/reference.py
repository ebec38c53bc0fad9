"""The config reference (docs/CONFIG.md), generated from the pydantic models."""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pipeline.config import RunConfig


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "(required)"
    value = field.default_factory() if field.default_factory is not None else field.default
    if isinstance(value, BaseModel):
        return ""
    return f"`{json.dumps(value, default=str)}`"


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return text or str(annotation).replace("typing.", "")


def _rows(model: type[BaseModel], prefix: str, out: list[str], seen: set) -> None:
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        sub = _model_of(field.annotation)
        desc = (field.description or (sub.__doc__ or "").strip().split("\n")[0] if sub else
                field.description or "")
        if sub is not None and (key, sub) not in seen:
            seen.add((key, sub))
            suffix = "[]" if typing.get_origin(field.annotation) is list else ""
            out.append(f"| `{key}{suffix}` | section | | {desc} |")
            _rows(sub, f"{key}{suffix}.", out, seen)
        else:
            type_text = _type_name(field.annotation).replace("|", "\\|")
            out.append(f"| `{key}` | {type_text} | {_default(field)} | {desc} |")


def config_reference() -> str:
    lines = ["# Config reference", "",
             "Generated from the config models (`refinery config-reference`); every key with its "
             "type, default and meaning. Override any key on the command line with "
             "`--set dotted.key=value` (values are YAML), replace sources with `--input PATH` and "
             "the output directory with `--out DIR`.", "",
             "| key | type | default | meaning |", "|---|---|---|---|"]
    _rows(RunConfig, "", lines, set())
    return "\n".join(lines) + "\n"
