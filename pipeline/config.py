"""The run config: one YAML file, validated by pydantic, overridable from the command line."""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
from pathlib import Path  # local-only: config files and the local-path overlap check
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model, field_validator, model_validator

from pipeline.stages import STAGES
from transforms.config_base import StrictModel
from transforms.embed.config import EmbeddingConfig
from transforms.io.config import (  # noqa: F401 - re-exported: io owns its config
    FORMATS,
    LAYOUTS,
    EmitConfig,
    IngestConfig,
    SourceConfig,
)
from transforms.llm.config import AnyLLMConfig, LLMConfig, ModelRoles


class RunSection(StrictModel):
    """Name, seed and output directory of the run."""

    name: str = Field("refinery", description="dataset name used in the card and manifest")
    seed: int = Field(0, description="seed for every sampled choice in the run")
    output_dir: str = Field("out", description="where shards, card, manifest, rejected/ go: "
                            "a local path, gs://… or s3://… (see README: object stores)")
    max_error_rate: float | None = Field(
        None, ge=0, le=1, description="abort when dead-lettered rows of all stages / rows "
        "handled exceeds it; null: only the budgets of ingest and each stage apply")
    allow_empty: bool = Field(
        False, description="publish a run that produced no output rows from non-empty input "
        "(otherwise it fails)")
    take_over: bool = Field(
        False, description="use an output_dir that holds files Refinery did not write "
        "(`--take-over`): files under published names are moved to `.displaced/`, others are "
        "left alone; otherwise such a folder is refused (exit 2)")


class BeamConfig(StrictModel):
    """Runner and pipeline options."""

    runner: str = Field("DirectRunner", description="any Beam runner name")
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "in_memory"
    direct_num_workers: int = Field(1, ge=1)
    options: dict[str, Any] = Field(
        default_factory=dict, description="extra pipeline options passed through to Beam"
    )


# The stages, one field per registered stage (pipeline/stages.py), in run order.
StagesConfig = create_model(
    "StagesConfig", __base__=StrictModel,
    __doc__="The stages; each has `enabled` and its own settings.",
    **{s.name: (s.config_class, Field(default_factory=s.config_class)) for s in STAGES})


class RunConfig(StrictModel):
    """A whole run."""

    run: RunSection = Field(default_factory=RunSection)
    sources: list[SourceConfig] = Field(default_factory=list)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    stages: StagesConfig = Field(default_factory=StagesConfig)
    llm: AnyLLMConfig = Field(default_factory=LLMConfig)
    embeddings: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    emit: EmitConfig = Field(default_factory=EmitConfig)
    beam: BeamConfig = Field(default_factory=BeamConfig)

    @field_validator("sources")
    @classmethod
    def _need_sources(cls, v: list[SourceConfig]) -> list[SourceConfig]:
        if not v:
            raise ValueError("at least one source is required (or pass --input PATH)")
        return v

    def roles(self) -> dict[str, dict[str, LLMConfig]]:
        """stage → role → `llm` block, for the enabled stages whose config names roles."""
        out = {}
        for spec in STAGES:
            stage_cfg = getattr(self.stages, spec.name)
            if stage_cfg.enabled and isinstance(stage_cfg, ModelRoles) and stage_cfg.roles:
                out[spec.name] = dict(stage_cfg.roles)
        return out

    @model_validator(mode="after")
    def _inputs_outside_output(self) -> RunConfig:
        for i, source in enumerate(self.sources):
            if source.format != "hf" and paths_overlap(source.path, self.run.output_dir):
                raise ValueError(f"sources.{i}.path {source.path!r} overlaps run.output_dir "
                                 f"{self.run.output_dir!r}: a run would read its own outputs")
        return self

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of the validated config."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


def paths_overlap(source: str, output_dir: str) -> bool:
    """Whether an input path or glob can match files under `output_dir` (or inside it)."""
    if "://" in source or "://" in output_dir:
        return False
    parts = Path(source).parts  # local-only: URLs returned above
    static = list(itertools.takewhile(lambda p: not glob.has_magic(p), parts))
    base = Path(*static).resolve() if static else Path.cwd()  # local-only: as above
    out = Path(output_dir).resolve()  # local-only: as above
    if base == out or out in base.parents:  # the input is the output dir or inside it
        return True
    if base not in out.parents:
        return False
    if not glob.has_magic(source):
        return base.is_dir()  # a directory input is read recursively
    depth = len(parts) - len(static)  # a glob reaches files this deep below its base
    return "**" in parts or depth > len(out.relative_to(base).parts)


class ConfigError(Exception):
    """A config that cannot be used; `problems` lists 'field.path: message' lines."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _format_errors(err: ValidationError) -> list[str]:
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"{path}: {e['msg']}{shown}")
    return lines


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `a.b.0.c = value` in nested dicts/lists, creating dicts on the way."""
    keys = dotted.split(".")
    node: Any = data
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError([f"{'.'.join(keys[:i + 1])}: no list item {key!r}"])
            if last:
                node[int(key)] = value
            else:
                node = node[int(key)]
            continue
        if not isinstance(node, dict):
            raise ConfigError([f"{'.'.join(keys[:i])}: cannot set {key!r} inside a value"])
        if last:
            node[key] = value
        else:
            node = node.setdefault(key, {})


MAX_CONFIG_BYTES = 1 << 20  # a config file or --set value
MAX_CONFIG_NODES = 100_000  # values once aliases are expanded (an alias bomb has billions)
MAX_CONFIG_DEPTH = 64  # nesting of mappings and lists


def safe_yaml(text: str, where: str) -> Any:
    """`yaml.safe_load(text)` within limits of size, expanded size (aliases counted as what
    they stand for) and depth, checked on the event stream before anything is built: a
    config built to explode in memory fails fast (ConfigError)."""
    if len(text.encode("utf-8", "replace")) > MAX_CONFIG_BYTES:
        raise ConfigError([f"<file>: {where} is larger than {MAX_CONFIG_BYTES} bytes"])
    sizes: dict[str, int] = {}
    stack: list[list[Any]] = [[0, None]]  # per open collection: [values in it, its anchor]
    total = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                stack.append([1, event.anchor])
                if len(stack) > MAX_CONFIG_DEPTH:
                    raise ConfigError([f"<file>: {where} nests deeper than {MAX_CONFIG_DEPTH}"])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                n, anchor = stack.pop()
            elif isinstance(event, yaml.ScalarEvent):
                n, anchor = 1, event.anchor
            elif isinstance(event, yaml.AliasEvent):
                n, anchor = sizes.get(event.anchor, 1), None
                total += n
            else:
                continue
            if anchor is not None:
                sizes[anchor] = n
            stack[-1][0] += n
            if total > MAX_CONFIG_NODES or stack[-1][0] > MAX_CONFIG_NODES:
                raise ConfigError([f"<file>: {where} expands to more than {MAX_CONFIG_NODES} "
                                   "values (YAML aliases): refused"])
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError([f"<file>: not valid YAML in {where}: {e}"]) from e


def parse_override(text: str) -> tuple[str, Any]:
    """'a.b=value' → ('a.b', YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError([f"--set {text!r}: expected dotted.key=value"])
    key, raw = text.split("=", 1)
    return key.strip(), safe_yaml(raw, f"--set {key.strip()}") if raw.strip() else ""


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into `base`: mappings merge key by key, anything else (lists, scalars)
    replaces. A mapping that names another `backend` (an `llm` block) replaces the base one,
    since the fields of one backend are errors in another."""
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if (isinstance(old, dict) and isinstance(value, dict)
                and old.get("backend", value.get("backend")) == value.get("backend", old.get("backend"))):
            out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def read_config_file(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML mapping of `path`, with its `extends: other.yaml` (relative to `path`) read
    first and this file deep-merged over it; a cycle of extends is an error."""
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ConfigError([f"extends: cycle {cycle}"])
    try:
        with path.open("rb") as fh:  # local-only: a config file (read no more than the limit)
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as e:
        where = f" (extended by {_chain[-1]})" if _chain else ""
        raise ConfigError([f"<file>: config file not found: {path}{where}"]) from e
    loaded = safe_yaml(raw.decode("utf-8", "replace"), str(path))
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError([f"<root>: the config must be a mapping of sections ({path})"])
    data = dict(loaded or {})
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError([f"extends: expected a file path, got {base!r} ({path})"])
    return deep_merge(read_config_file(path.parent / base, (*_chain, resolved)), data)


def load_config(
    path: str | Path | None,
    overrides: list[str] | None = None,
    inputs: list[str] | None = None,
    out: str | None = None,
) -> RunConfig:
    """Read YAML, apply --input/--out/--set, validate. Raises ConfigError listing every problem."""
    data: dict[str, Any] = (read_config_file(Path(path))  # local-only: a config file
                            if path is not None else {})
    if inputs:
        data["sources"] = [{"path": p} for p in inputs]
    if out:
        data.setdefault("run", {})["output_dir"] = out
    for text in overrides or []:
        key, value = parse_override(text)
        set_dotted(data, key, value)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_errors(e)) from e
