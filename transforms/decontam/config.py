"""Config of the decontam stage (the `stages.decontam` block)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from transforms.config_base import StageConfig, StrictModel

PRESETS = ("gsm8k", "math", "humaneval", "mbpp", "mmlu", "arc", "truthfulqa", "mt_bench",
           "alpaca_eval", "ifeval")

# Named rules usable as plain strings in `rules`.
RULE_PRESETS: dict[str, dict[str, Any]] = {
    "tulu3": {"name": "tulu3", "n": 8, "min_coverage": 0.5},
    "gpt3": {"name": "gpt3", "n": 13, "min_coverage": 0.0},
}


class BenchmarkSpec(StrictModel):
    """One benchmark to check against: a file (local or object storage) or a Hugging Face dataset."""

    name: str = Field(..., description="benchmark name used in reasons and the report")
    path: str | None = Field(
        None, description="file or glob (jsonl, json, parquet, csv): local (relative to the "
        "working directory), gs:// or s3://")
    hf: str | None = Field(
        None, description="Hugging Face dataset id (e.g. openai/gsm8k); needs the network or a "
        "local datasets cache")
    hf_config: str | None = Field(None, description="dataset config name for `hf` (e.g. main)")
    split: str = Field("test", description="split to read for `hf` benchmarks")
    format: Literal["auto", "jsonl", "json", "parquet", "csv"] = Field(
        "auto", description="file format of `path`; auto = by extension")
    preset: Literal[PRESETS] | None = Field(  # type: ignore[valid-type]
        None, description="built-in field mapping (gsm8k, math, humaneval, mbpp, mmlu, arc, "
        "truthfulqa, mt_bench, alpaca_eval, ifeval); default: guessed from `name`")
    fields: list[str] = Field(
        default_factory=list,
        description="text fields of an item, joined with newlines; dotted paths reach nested "
        "values, lists are joined, 'a|b' takes the first present; overrides the preset")
    id_field: str | None = Field(
        None, description="field holding the item id; default: the preset's, else the row number")
    limit: int | None = Field(None, ge=1, description="read only the first N items")

    @model_validator(mode="after")
    def _one_source(self) -> BenchmarkSpec:
        if (self.path is None) == (self.hf is None):
            raise ValueError(f"benchmark {self.name!r}: set exactly one of `path` or `hf`")
        return self


class RuleConfig(StrictModel):
    """An n-gram overlap rule. A training row is contaminated with a benchmark item when the
    share of the item's tokens covered by n-grams the two share is above `min_coverage`."""

    name: str = Field(..., description="rule name; rejected rows get reason contaminated_<name>")
    n: int = Field(8, ge=1, le=64, description="n-gram length in tokens")
    min_coverage: float = Field(
        0.5, ge=0, lt=1, description="flag when covered item tokens / item tokens is above "
        "this; 0 = any shared n-gram (the GPT-3 rule)")


class ParaphraseConfig(StrictModel):
    """Optional embedding check for paraphrased benchmark items (uses the `embeddings` model)."""

    enabled: bool = Field(False, description="also flag rows whose embedding is close to an item")
    threshold: float = Field(
        0.9, gt=0, le=1, description="flag when cosine similarity to an item is at or above this")
    batch_rows: int = Field(256, ge=1, description="rows embedded per call")


class DecontamConfig(StageConfig):
    """Flags training rows that overlap benchmark items; flagged rows go to rejected/."""

    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=list, description="benchmarks to check against (replace with --set "
        "stages.decontam.benchmarks='[{name: gsm8k, path: test.jsonl}]')")
    rules: list[RuleConfig] = Field(
        default_factory=lambda: [RuleConfig(**RULE_PRESETS["tulu3"]),
                                 RuleConfig(**RULE_PRESETS["gpt3"])],
        description="overlap rules, checked in order; a name 'tulu3' (8-grams, > 50% of the "
        "item covered) or 'gpt3' (any shared 13-gram) stands for its preset")
    scope: Literal["prompt", "conversation"] = Field(
        "prompt", description="text checked: prompt = user messages, conversation = all messages")
    mask_numbers: bool = Field(
        True, description="map every number to one token, so changed numbers still match")
    max_item_share: int | None = Field(
        1000, ge=1, description="n-grams found in more benchmark items than this are treated as "
        "boilerplate and left out of the index (bounds the work per row); null = keep all")
    max_matches_per_row: int = Field(
        20, ge=1, description="flagged items listed in one rejected row's detail")
    sample_pairs: int = Field(5, ge=0, description="sample (row, item) pairs per benchmark in "
                                                   "the report")
    paraphrase: ParaphraseConfig = Field(default_factory=ParaphraseConfig,
                                         description="embedding similarity check")

    @field_validator("rules", mode="before")
    @classmethod
    def _rule_presets(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for rule in value:
            if isinstance(rule, str):
                if rule not in RULE_PRESETS:
                    raise ValueError(f"unknown rule {rule!r}; presets: {sorted(RULE_PRESETS)}")
                rule = dict(RULE_PRESETS[rule])
            out.append(rule)
        return out

    @model_validator(mode="after")
    def _check(self) -> DecontamConfig:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names must be unique, got {names}")
        bench = [b.name for b in self.benchmarks]
        if len(set(bench)) != len(bench):
            raise ValueError(f"benchmark names must be unique, got {bench}")
        if self.enabled and not self.benchmarks:
            raise ValueError("decontam is enabled but no benchmarks are listed")
        if self.enabled and not self.rules and not self.paraphrase.enabled:
            raise ValueError("decontam is enabled but has no rules and no paraphrase check")
        return self
