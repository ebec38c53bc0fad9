"""Config of the tag_instruct stage (the `stages.tag_instruct` block)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, model_validator

from transforms.config_base import StrictModel, SynthesisConfig
from transforms.llm.config import ModelRoles


class StepSampling(StrictModel):
    """Sampling of one LLM step."""

    temperature: float = Field(0.0, ge=0, le=2, description="0 = greedy")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    max_tokens: int = Field(128, ge=1, description="cap on generated tokens")


# Which role serves each step: the policy proposes new tags, the teacher does everything else.
STEP_ROLES = {"compress": "teacher", "tag": "teacher", "expand": "policy", "pair_expand": "policy",
              "reconstruct": "teacher", "respond": "teacher", "retag": "teacher"}


class TagInstructConfig(SynthesisConfig, ModelRoles):
    """TAG-INSTRUCT: compress → tag (InsTag) → expand (policy, rewarded) → reconstruct →
    respond → verify (re-tag with the same tagger), repeated for `rounds` rounds; accepted
    examples of a round feed the next. Roles (`roles:`): `teacher` and `policy`."""

    ROLES = {"teacher": "compress, tag (InsTag, before and after), reconstruct and respond",
             "policy": "expand: proposes the candidate tags (point it at a trained policy)"}

    rounds: int = Field(2, ge=1, le=10, description="R: expansion rounds")
    num_tags: int = Field(3, ge=1, le=8, description="tags extracted by the compress step")
    max_tag_words: int = Field(4, ge=1, le=8,
                               description="longer tags are dropped (the prompts ask 1-3 words)")
    tagger_max_tags: int = Field(
        12, ge=1, le=32, description="most tags the InsTag tagger may return (complexity is "
        "measured with it before and after)")
    num_candidates: int = Field(4, ge=1, le=64,
                                description="N: candidate new tags sampled per instruction "
                                "(one request each, so an invalid one is dropped alone)")
    min_reward_margin: float | None = Field(
        0.01, gt=0, description="ours: a tag-policy pair is written only when reward(best) − "
        "reward(worst) reaches this (ties and zero-signal candidates give no pair); null = "
        "any 2 parseable candidates make a pair (the paper's build_preference.py)")
    # the paper's method vs our additions (configs/tag_instruct_paper.yaml turns ours off)
    best_of_n_rewrite: bool = Field(
        True, description="ours: the rewrite uses the best-reward of the N `expand` candidates; "
        "false (paper): ONE `expand` call (greedy) gives the new tag, and the N pair "
        "candidates are sampled separately with `pair_expand` only to build tag_policy pairs")
    filters: bool = Field(
        True, description="ours: the filters between steps and rounds (similarity to the "
        "original and to answers, question length limits, complexity loss, reconstruct "
        "dropped the new tag, truncated answers, repeated/overlapping candidates); false "
        "(paper): every parsed output goes on")
    instag_tagger: bool = Field(
        True, description="ours: tag the instruction and the new question with the InsTag "
        "tagger (teacher) to measure complexity before/after (with `filters`, fewer tags after "
        "= complexity_loss); false (paper): no tagger calls, the report counts the item's tags "
        "(compress tags + new tag)")
    answer_format: Literal["json", "brackets"] = Field(
        "json", description="ours: JSON answers with schemas; `brackets` (paper): their "
        "formats: comma list of tags, [Explanation] then [New Tag], [New Question]")
    respond_template: Literal["question", "alpaca"] = Field(
        "question", description="the respond step's user message: the question alone (ours) "
        "or wrapped in the Alpaca template (paper)")
    require_references: bool = Field(
        False, description="the utility table must give disjoint top-K and bottom-K sets "
        "(pool >= 2K), else the run stops before any model call (paper); false: a small "
        "table shrinks K and an empty one gives reward 0 (reported)")
    # tag utility
    utility_path: str | None = Field(
        None, description="table from `refinery tag-utility` (JSON {tag: {utility, count}}); "
        "default: utility from the tags of round 1's own inputs")
    min_tag_count: int = Field(3, ge=1, description="tags seen at least this often form the "
                               "pool (paper: count > 2)")
    fallback_min_count: int | None = Field(
        None, ge=1, description="threshold used when fewer than 2 tags reach min_tag_count "
        "(tiny corpora); null = no fallback: no reference sets, so reward 0 and no pairs")
    reference_k: int = Field(1000, ge=1, description="K: size of the top and bottom reference "
                             "sets (and of the table `tag-utility` writes)")
    merge_similarity: float | None = Field(
        None, gt=0, le=1, description="merge near-identical tags of the utility table whose "
        "embedding cosine reaches this into the most frequent one; null = no merging")
    # verify
    max_similarity: float = Field(
        0.9, ge=0, le=1, description="new question must have cosine similarity to the "
        "original instruction below this")
    max_answer_similarity: float = Field(
        0.9, ge=0, le=1, description="new question must have cosine similarity to the original "
        "answer and to its own answer below this (not a copy of an answer)")
    min_question_chars: int = Field(20, ge=1, description="shortest acceptable new question")
    max_question_chars: int = Field(2000, ge=1, description="longest acceptable new question")
    max_length_ratio: float = Field(
        6.0, gt=0, description="new question length / original length must not exceed this")
    min_response_chars: int = Field(1, ge=1, description="shortest acceptable new answer")
    min_tags_after: int | None = Field(
        None, ge=1, description="tagger tags required on the new question; default: as many "
        "as the tagger found on the instruction (no loss of complexity)")
    # prompts and sampling
    system_prompt: str | None = Field(None, description="optional system message on every call")
    compress: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=64),
                                   description="sampling of the compress step")
    tag: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=256),
                              description="sampling of the InsTag tagger (before and after)")
    expand: StepSampling = Field(
        default_factory=lambda: StepSampling(temperature=1.0, top_p=0.95, max_tokens=64),
        description="sampling of each candidate tag (paper: T=1.0, top_p 0.95)")
    reconstruct: StepSampling = Field(
        default_factory=lambda: StepSampling(temperature=0.7, top_p=0.95, max_tokens=512),
        description="sampling of the rebuilt question and the tags it used")
    respond: StepSampling = Field(default_factory=lambda: StepSampling(max_tokens=1024),
                                  description="sampling of the answer (cut answers are rejected)")
    pair_expand: StepSampling = Field(
        default_factory=lambda: StepSampling(temperature=1.0, top_p=0.95, max_tokens=256),
        description="sampling of the N pair candidates when best_of_n_rewrite is false "
        "(paper: T=1.0, top_p 0.95)")
    batch_rows: int = Field(500, ge=1, description="rows per output batch")
    round_datasets: bool = Field(
        False, description="also write each round's examples as its own dataset "
        "`tag_instruct_rounds/round_<r>/` (the authors write one file per round beside the "
        "all-rounds one; `sft/` holds all rounds, meta.ti_round)")

    @model_validator(mode="after")
    def _paper_needs(self) -> TagInstructConfig:
        if self.enabled and self.require_references:
            if not self.utility_path:
                raise ValueError("require_references: set utility_path (a tag-utility table)")
            if os.path.isfile(self.utility_path):  # local-only: object stores are checked at graph build
                from transforms.tag_instruct.utility import load_utility

                counts = load_utility(self.utility_path).count.values()
                pool = sum(1 for c in counts if c >= self.min_tag_count)
                if pool < 2 * self.reference_k:
                    raise ValueError(
                        f"require_references: {self.utility_path} has {pool} tags seen >= "
                        f"{self.min_tag_count} times; top and bottom {self.reference_k} need "
                        f"{2 * self.reference_k} (rebuild it from a bigger corpus, or lower "
                        "reference_k)")
        return self

    def sampling(self, step: str) -> StepSampling:
        return getattr(self, "tag" if step == "retag" else step)
