"""The output layout of a run, in one place: every dataset name (one kind of row each) and every
path a run writes. The graph, the writers, the manifest, the card, the report, `refinery
inspect`, lineage, releases, exports and publishing take their names from here
(tests/pipeline/test_layout.py fails on a stray literal elsewhere).

    <run>/<dataset>/<split>-0000i-of-0000N.parquet    one folder per dataset below
    <run>/jsonl/<dataset>/...                         the same rows as JSONL (emit.jsonl)
    <run>/<stage>_rounds/round_<r>/...                per-round datasets (tag_instruct)
    <run>/rejected/<stage>.parquet                    rejected rows with stage and reason
    <run>/deadletter/deadletter.jsonl                 rows or calls that failed, with the error
    <run>/manifest.json  README.md  report.html       manifest, dataset card, HTML report
"""

from __future__ import annotations

from dataclasses import dataclass


def join(base: str, *parts: str) -> str:
    """`base/part/...`: run paths are `/`-joined on every filesystem Refinery writes (POSIX
    local paths, gs://, s3://); no Beam import here, so the console can use this module."""
    return "/".join([base.rstrip("/") or base, *parts])


@dataclass(frozen=True)
class Dataset:
    """One output dataset: its name (= folder), the kind of row it holds, a card line."""

    name: str
    kind: str  # examples | pairs | step_pairs | tag_pairs
    about: str
    copy_of: str | None = None  # the dataset whose rows it holds again, in another layout


SFT, CURATED = "sft", "curated"
PREFERENCE, PREFERENCE_STEPS = "preference", "preference_steps"
TAG_POLICY, TAG_POLICY_SHAREGPT = "tag_policy", "tag_policy_sharegpt"

DATASETS: tuple[Dataset, ...] = (
    Dataset(SFT, "examples", "chat examples (`messages`): the curated input (unless "
            "`emit.include_curated` is off) and every synthesized example"),
    Dataset(CURATED, "examples", "the curated input alone (written when `emit.include_curated` "
            "is off, so `sft` holds only synthesized examples)"),
    Dataset(PREFERENCE, "pairs", "response pairs for DPO (`prompt`, `chosen`, `rejected` in "
            "conversational form, each a whole answer): the input's pairs, `respond`'s pairs "
            "and RISE's full-solution pairs"),
    Dataset(PREFERENCE_STEPS, "step_pairs", "RISE step pairs in its trainer layout: the shared "
            "correct prefix (`initial_reason_steps`), then the correct step (`chosen`) or the "
            "step with one subtle error (`rejected`), the gold `answer` and the edit span; "
            "partial solutions, not for a response-level DPO trainer"),
    Dataset(TAG_POLICY, "tag_pairs", "TAG-INSTRUCT tag-policy pairs (best vs worst candidate "
            "tags; the prompt is Refinery's tag-proposal prompt): for training the expansion "
            "policy, not a chat model"),
    Dataset(TAG_POLICY_SHAREGPT, "tag_pairs", "the tag-policy pairs in the authors' ShareGPT "
            "layout", copy_of=TAG_POLICY),
)
BY_NAME: dict[str, Dataset] = {d.name: d for d in DATASETS}
EXAMPLE_DATASETS = tuple(d.name for d in DATASETS if d.kind == "examples")
INPUT_DATASETS = (SFT, CURATED, PREFERENCE)  # the datasets input records can land in
SECOND_LAYOUTS = tuple(d.name for d in DATASETS if d.copy_of)  # not counted twice
# A synthesis stage's output counts in the manifest (`out_<dataset>`): always these ...
SYNTHESIS_COUNTED = (SFT, PREFERENCE)
# ... and these when the stage wrote rows there
SYNTHESIS_COUNTED_IF_ANY = (PREFERENCE_STEPS, TAG_POLICY)
ROUND_STAGES = ("tag_instruct",)  # stages that may write one dataset per round

JSONL = "jsonl"
REJECTED = "rejected"
DEADLETTER = "deadletter"
DEADLETTER_FILE = "deadletter.jsonl"
MANIFEST = "manifest.json"
CARD = "README.md"
REPORT = "report.html"
RUN_INFO = "_run_info.json"  # the graph's facts for the driver; deleted once read
WORK = "_work"  # scratch of a run (caches), beside the run directories
# what a release build writes beside its run (pipeline/release/)
DIFF_FILE = "release_diff.json"
DIFF_PAGE = "release_diff.html"  # the explained diff, beside the report
DIFF_ROWS = "release_diff_rows.parquet"  # every added and removed row with its reason
INDEX_DIR = "dedup_index"  # a release build's dedup index, read by the next build


def rounds_folder(stage: str) -> str:
    return f"{stage}_rounds"


def round_dataset(stage: str, r: int) -> tuple[str, str]:
    """(dataset name, folder relative to the run) of round `r` of `stage`."""
    return f"{stage}_round_{r}", f"{rounds_folder(stage)}/round_{r}"


# The top-level names a run may write, i.e. what publishing exposes under `<out>/`.
PUBLISHED = (*(d.name for d in DATASETS), *map(rounds_folder, ROUND_STAGES), JSONL, REJECTED,
             DEADLETTER, CARD, MANIFEST, REPORT)
# Names readers can inspect row by row (`refinery inspect --dataset`).
INSPECTABLE = (*(d.name for d in DATASETS), REJECTED, DEADLETTER)


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run directory (local, gs://, s3://)."""

    root: str

    def dataset(self, name: str) -> str:
        return join(self.root, name)

    def jsonl(self, name: str) -> str:
        return join(self.root, JSONL, name)

    @property
    def rejected(self) -> str:
        return join(self.root, REJECTED)

    @property
    def deadletter_dir(self) -> str:
        return join(self.root, DEADLETTER)

    @property
    def deadletter(self) -> str:
        return join(self.root, DEADLETTER, DEADLETTER_FILE)

    @property
    def manifest(self) -> str:
        return join(self.root, MANIFEST)

    @property
    def card(self) -> str:
        return join(self.root, CARD)

    @property
    def report(self) -> str:
        return join(self.root, REPORT)

    @property
    def run_info(self) -> str:
        return join(self.root, RUN_INFO)
