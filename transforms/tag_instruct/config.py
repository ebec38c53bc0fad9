"""Config of the tag_instruct stage (the `stages.tag_instruct` block)."""

from __future__ import annotations

from pydantic import Field

from transforms.config_base import StrictModel, SynthesisConfig
from transforms.llm.config import ModelRoles


class StepSampling(StrictModel):
    """Sampling of one LLM step."""

    temperature: float = Field(0.0, ge=0, le=2, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int = Field(128, ge=1, description="cap on generated tokens")


class TagInstructConfig(SynthesisConfig, ModelRoles):
    """TAG-INSTRUCT: compress → tag utility → expand (rewarded) → reconstruct → respond →
    verify, repeated for `rounds` rounds; accepted examples of a round feed the next."""

    ROLES = {"teacher": "compress, reconstruct, respond and retag (verify)",
             "policy": "expand: proposes the candidate tags"}

    rounds: int = Field(2, ge=1, le=10, description="R: expansion rounds")
    num_tags: int = Field(3, ge=1, le=8, description="tags extracted by the compress step")
    max_tag_words: int = Field(4, ge=1, le=8,
                               description="longer tags are dropped (the prompt asks 1-2 words)")
    num_candidates: int = Field(4, ge=1, le=16,
                                description="N: candidate new tags sampled per instruction")
    keep_tags: int = Field(2, ge=0, le=8,
                           description="original tags (most important first) kept next to the "
                           "chosen new tag when rebuilding the question")
    # tag utility
    utility_path: str | None = Field(
        None, description="JSON {tag: {utility, count}} to use instead of computing utility "
        "from the corpus being processed")
    min_tag_count: int = Field(3, ge=1, description="tags seen at least this often form the pool")
    fallback_min_count: int | None = Field(
        1, ge=1, description="threshold used when fewer than 2 tags reach min_tag_count "
        "(small corpora); null = no fallback, the reward is then 0 for every candidate")
    reference_k: int = Field(5, ge=1, description="K: size of the top and bottom reference sets")
    # verify
    max_similarity: float = Field(
        0.9, ge=0, le=1, description="new question must have cosine similarity to the "
        "original instruction below this")
    max_answer_similarity: float = Field(
        0.9, ge=0, le=1, description="new question must have cosine similarity to the original "
        "answer and to its own answer below this (not a copy of an answer)")
    min_question_chars: int = Field(20, ge=1, description="shortest acceptable new question")
    max_question_chars: int = Field(
        600, ge=1, description="longest acceptable new question (also the answer schema's "
        "maxLength, so keep reconstruct.max_tokens above about a quarter of it)")
    max_length_ratio: float = Field(
        6.0, gt=0, description="new question length / original length must not exceed this")
    min_response_chars: int = Field(1, ge=1, description="shortest acceptable new answer")
    max_retag: int = Field(8, ge=1, le=16,
                           description="most tags the re-extraction may return")
    min_tags_after: int | None = Field(
        None, ge=1, description="re-extracted tags required; default: as many as the "
        "instruction had before (no loss of complexity)")
    # prompts and sampling
    system_prompt: str | None = Field(None, description="optional system message on every call")
    compress: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=64),
                                   description="sampling of the compress step")
    expand: StepSampling = Field(
        default_factory=lambda: StepSampling(temperature=0.9, top_p=0.95, max_tokens=64),
        description="sampling of the candidate tags (sampled: temperature > 0)")
    reconstruct: StepSampling = Field(
        default_factory=lambda: StepSampling(temperature=0.7, top_p=0.95, max_tokens=160),
        description="sampling of the rebuilt question")
    respond: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=256),
                                  description="sampling of the answer to the new question")
    retag: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=80),
                                description="sampling of the verify step's tag re-extraction")
    batch_rows: int = Field(500, ge=1, description="rows per output batch")
