"""The config reference (docs/CONFIG.md), generated from the config models.

Defaults are read from an instantiated default config (`default_config()`), not from the class
fields, so a section built by a `default_factory` with its own values (e.g.
`stages.tag_instruct.expand`) is documented with the values a run really gets. The `llm` block
lists the fields of its default backend, then each other backend's own fields.
"""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pipeline.config import RunConfig
from transforms.llm.config import BACKENDS, LLMConfig, ModelRoles

NO_DEFAULT = "(required)"


def default_config() -> RunConfig:
    """A RunConfig holding every default (sources, which a run must name, left empty)."""
    return RunConfig.model_construct()


def _item_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a `list[Model]` field."""
    if typing.get_origin(annotation) is list:
        (arg,) = typing.get_args(annotation)
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _show(value: Any) -> str:
    return f"`{json.dumps(value, default=str)}`"


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return (text or str(annotation).replace("typing.", "")).replace("|", "\\|")


def _class_default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return NO_DEFAULT
    value = field.default_factory() if field.default_factory is not None else field.default
    return _show(value.model_dump(mode="json") if isinstance(value, BaseModel) else value)


def _doc(model: type[BaseModel] | BaseModel) -> str:
    return ((model.__doc__ or "").strip().split("\n")[0]).replace("|", "\\|")


def _roles_meaning(owner: ModelRoles, description: str) -> str:
    roles = "; ".join(f"`{name}`: {what}" for name, what in owner.ROLES.items())
    return f"{description}. Roles: {roles}"


def _rows(value: BaseModel, prefix: str, out: list[str], skip: set[str] = frozenset()) -> None:
    """One row per field of the instance `value` (sections recurse into their own value)."""
    for name, field in type(value).model_fields.items():
        if name in skip:
            continue
        key, current = f"{prefix}{name}", getattr(value, name)
        desc = (field.description or "").replace("|", "\\|")
        if isinstance(current, LLMConfig):
            out.append(f"| `{key}` | section | | {desc or _doc(LLMConfig)} |")
            _llm_rows(current, f"{key}.", out)
        elif isinstance(current, BaseModel):
            out.append(f"| `{key}` | section | | {desc or _doc(current)} |")
            _rows(current, f"{key}.", out)
        elif (item := _item_model(field.annotation)) is not None:
            out.append(f"| `{key}[]` | section | {_show(_dump(current))} | "
                       f"{desc or _doc(item)} |")
            _class_rows(item, f"{key}[].", out)
        else:
            type_text = _type_name(field.annotation)
            if name == "roles" and isinstance(value, ModelRoles):
                desc, type_text = _roles_meaning(value, desc.rstrip(".")), "dict[str, llm]"
            out.append(f"| `{key}` | {type_text} | {_show(_dump(current))} | {desc} |")


def _class_rows(model: type[BaseModel], prefix: str, out: list[str]) -> None:
    """Rows of a list item's model: its class defaults (items have no instance to read)."""
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        desc = (field.description or "").replace("|", "\\|")
        out.append(f"| `{key}` | {_type_name(field.annotation)} | {_class_default(field)} "
                   f"| {desc} |")


def _llm_rows(current: LLMConfig, prefix: str, out: list[str]) -> None:
    """The default backend's fields, then each other backend's own fields."""
    _rows(current, prefix, out)
    seen = set(type(current).model_fields)
    for backend in BACKENDS:
        variant = LLMConfig(backend=backend)
        if type(variant) is type(current):
            continue
        own = set(type(variant).model_fields) - seen
        if own:
            out.append(f"| `{prefix}*` | backend: {backend} | | fields only `backend: {backend}` "
                       "takes (a field of another backend is an error) |")
            _rows(variant, prefix, out, skip=set(type(variant).model_fields) - own)
            seen |= own


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value


def config_reference() -> str:
    lines = ["# Config reference", "",
             "Generated from the config models (`refinery config-reference`); every key with its "
             "type, default and meaning. Override any key on the command line with "
             "`--set dotted.key=value` (values are YAML), replace sources with `--input PATH` and "
             "the output directory with `--out DIR`. A config may start with "
             "`extends: other.yaml` (a path relative to it): the other file is read first and "
             "this one deep-merged over it.", "",
             "| key | type | default | meaning |", "|---|---|---|---|"]
    _rows(default_config(), "", lines)
    return "\n".join(lines) + "\n"
