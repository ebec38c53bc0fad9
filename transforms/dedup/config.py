"""Config of the dedup stage (the `stages.dedup` block)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from transforms.config_base import StageConfig

# Defaults chosen on bench/dedup_quality.py (seeded labeled variants of real questions).
THRESHOLD = 0.45
CHAR_MAX_WORDS = 100
TEMPLATE_DF = 0.01
TEMPLATE_MIN_DOCS = 20
LAST_PARAGRAPH = 0.5
TEMPLATE_MIN_RUN = 15


class DedupConfig(StageConfig):
    """Exact, MinHash LSH near-duplicate and semantic (SemDeDup) dedup with deterministic
    keepers (best quality score, then smallest id)."""

    key: Literal["prompt", "first_user", "conversation"] = Field(
        "prompt", description="text compared: all user turns, the first user turn, or every "
        "turn of the conversation")
    exact: bool = Field(True, description="drop rows whose folded key text is identical")
    near: bool = Field(True, description="drop MinHash LSH near-duplicates")
    semantic: bool = Field(False, description="drop SemDeDup semantic duplicates (embeddings)")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations (datasketch)")
    threshold: float = Field(THRESHOLD, gt=0, lt=1, description="Jaccard threshold; bands × "
                             "rows follow from it and the weights below as in "
                             "datasketch.MinHashLSH (the report shows the choice)")
    fp_weight: float = Field(0.5, ge=0, le=1, description="false-positive weight of the "
                             "bands × rows optimisation")
    fn_weight: float = Field(0.5, ge=0, le=1, description="false-negative weight of the "
                             "bands × rows optimisation")
    shingle: Literal["word", "char", "auto"] = Field(
        "auto", description="word n-grams, character n-grams of the folded text, or auto: "
        "characters for texts of at most char_max_words words, words for longer ones (chosen "
        "on bench/dedup_quality.py: one typo breaks many word n-grams of a short text)")
    ngram: int = Field(5, ge=1, le=64, description="words per word shingle")
    char_ngram: int = Field(5, ge=1, le=64, description="characters per character shingle")
    char_max_words: int = Field(CHAR_MAX_WORDS, ge=0, description="auto shingling: texts of at "
                                "most this many words get character shingles")
    mask_numbers: bool = Field(False, description="read every number as 0 before shingling, "
                               "so a changed number stays a near duplicate (exact keys unchanged)")
    template_df: float = Field(TEMPLATE_DF, ge=0, lt=1, description="ours: shingles found in "
                               "more than this share of the documents (a template's fixed "
                               "text) are left out of the signatures, so rows sharing a "
                               "template are compared on what differs; 0 = off. Document "
                               "frequencies: a count-min sketch summed over the batches")
    template_min_docs: int = Field(TEMPLATE_MIN_DOCS, ge=2, description="ours: a shingle counts "
                                   "as template text only when in more than this many "
                                   "documents (small inputs)")
    last_paragraph: float = Field(LAST_PARAGRAPH, ge=0, le=1, description="ours: rows of "
                                  "several paragraphs are near duplicates only when their last "
                                  "paragraphs (usually the actual question after a shared "
                                  "context) also reach this estimated Jaccard; 0 = off")
    last_paragraph_perm: int = Field(32, ge=8, le=256, description="MinHash permutations of "
                                     "the last-paragraph signature")
    template_min_run: int = Field(TEMPLATE_MIN_RUN, ge=1, description="ours: common shingles "
                                  "are left out only in runs of at least this many consecutive "
                                  "ones (a template's span), so a common word alone still counts")
    df_sketch_width: int = Field(1 << 20, ge=1024, description="counters per row of the "
                                 "document-frequency sketch (3 rows of int32)")
    minhash_seed: int = Field(1, description="seed of the MinHash permutations (fixed, so "
                              "signatures stay comparable with a stored release index)")
    minhash_threads: int = Field(1, ge=1, le=64, description="threads computing MinHash "
                                 "signatures inside one worker (numpy releases the GIL): "
                                 "raise it when a run has fewer Beam workers than cores")
    verify: bool = Field(True, description="keep only candidate pairs whose estimated Jaccard "
                         "(from signatures) reaches the threshold")
    num_partitions: int = Field(64, ge=1, description="coarse partitions for the exact-key and "
                                "LSH band shuffles")
    shuffle_parts: int = Field(4, ge=1, le=64, description="the large shuffles (band buckets, "
                               "signature join, pair verification, batch join) run as this many "
                               "separate GroupByKeys over disjoint keys; the local runner hands each "
                               "one's input to its workers in several copies, so smaller "
                               "shuffles lower its peak memory")
    cc_rounds: int = Field(6, ge=0, le=64, description="large-star/small-star rounds of the "
                           "distributed connected components (a path of n near duplicates "
                           "needs about log2(n)); what is left goes to one bounded step")
    cc_max_remainder: int = Field(200_000, ge=0, description="edges not yet in stars after "
                                  "cc_rounds that one step may finish (more fails the run)")
    semantic_eps: float = Field(0.05, gt=0, lt=1, description="drop when cosine similarity to "
                                "a kept row exceeds 1 - eps")
    semantic_clusters: int | None = Field(None, ge=1, description="k-means clusters; default "
                                          "about sqrt(rows)")
    kmeans_iters: int = Field(20, ge=1, description="k-means iterations")
    kmeans_sample: int = Field(100_000, ge=10, description="rows (smallest id hashes) used "
                               "to train k-means")
    score_field: str = Field("quality_score", description="meta field ranking keepers "
                             "(higher wins; missing = all equal, then smallest id)")
    release_index_dir: str | None = Field(None, description="directory of a previous "
                                          "release's dedup index to dedup against")
    release_keep_same_ids: bool = Field(
        False, description="with release_index_dir: false drops every row already released "
        "(the run adds only new rows); true keeps one exact copy (same dedup key text) of each "
        "released row, whatever its id now (snapshot releases: released rows stay, also when "
        "they moved in their file; new near-duplicates of them go)")
    write_index_dir: str | None = Field(None, description="write the index of this run's "
                                        "kept rows (plus the previous release's) here")
    report_clusters: int = Field(1000, ge=0, description="clusters listed in the report "
                                 "(largest first); counts always cover all")
    warn_cluster_size: int = Field(100, ge=0, description="ours: the report warns about every "
                                   "cluster of more rows (usually distinct rows sharing a "
                                   "template); it always lists the 5 largest clusters with 3 "
                                   "sample ids each; 0 = no warnings")
