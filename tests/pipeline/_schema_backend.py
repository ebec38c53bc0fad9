"""A generic scripted backend: answers any request with a minimal instance of the request's
JSON Schema (free text when it has none), so every model-calling stage runs end to end through
the serving layer without a per-stage script. Behaviour, not quality: stages are expected to
reject much of what it writes; the contract test checks that every row is accounted for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transforms.llm.api import ChatRequest
from transforms.llm.backend_base import Generation
from transforms.llm.config import LLMConfig

FREE_TEXT = "Step 1: 2 + 2 = 4.\nThe answer is 4.\n#### 4"


def schema_instance(schema: dict[str, Any], salt: str = "") -> Any:
    """A minimal value valid for `schema` (the subset our answer schemas use: object, array,
    string, integer, number, boolean, enum/const); strings carry `salt` so items differ."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: schema_instance(v, f"{salt}{k}") for k, v in props.items()}
    if kind == "array":
        n = max(schema.get("minItems", 1), 1)
        items = schema.get("items", {"type": "string"})
        return [schema_instance(items, f"{salt}{i}") for i in range(n)]
    if kind == "string":
        text = f"value {salt}".strip()
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        text = text + "x" * max(0, low - len(text))
        return text if high is None else text[:high]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + (1 if "exclusiveMinimum" in schema else 0)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    return None


class SchemaBackend:
    """Backend protocol: `n` answers per request, each a schema instance (or FREE_TEXT)."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self.model_id = f"schema:{config.model}"

    def generate(self, requests: Sequence[ChatRequest]) -> list[Generation]:
        import json

        out = []
        for req in requests:
            texts = [FREE_TEXT if req.json_schema is None
                     else json.dumps(schema_instance(req.json_schema, str(i)))
                     for i in range(req.sampling.n)]
            out.append(Generation(texts=texts, completion_tokens=8 * len(texts)))
        return out

    def close(self) -> None:
        pass
