"""The Beam stage on the DirectRunner with the real embedding model. The LLM backend is
replaced (through RunContext.backend_factory) by a scripted one only to inject faults (dead
letters, malformed and weak answers) at chosen records; the whole serving layer still runs. The
real local model runs in test_stage_local.py."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from schemas.records import example_row, examples_to_batch, meta_field
from transforms.base import (
    DEADLETTER,
    EXAMPLES,
    REJECTED,
    REPORT,
    TAG_PAIRS,
    RunContext,
)
from transforms.llm.api import ChatRequest
from transforms.llm.backend_base import Generation, backend_model_id
from transforms.llm.config import LLMConfig
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.stage import TagInstructStage

pytestmark = pytest.mark.model

SEEDS = {
    "happy": "Explain how a binary search finds a value in a sorted list.",
    "dead": "DEAD: describe the water cycle.",
    "badtags": "BADTAGS: name three primary colours.",
    "copy": "COPY: write a short poem about the sea.",
    "shallow": "SHALLOW: list the planets of the solar system.",
}


def _tagger(n: int) -> str:
    tags = ["algorithms", "searching", "complexity analysis", "edge cases", "proof"][:n]
    return json.dumps({"tags": [{"tag": t, "explanation": "needed"} for t in tags]})


def script(req: ChatRequest) -> tuple[str, ...]:
    """Answers by step; faults where the instruction asks for them."""
    step = req.key.split("|")[2]
    text = req.payload.get("instruction") or ""
    if step == "compress":
        if text.startswith("DEAD"):
            raise RuntimeError("backend failed after retries")
        if text.startswith("BADTAGS"):
            return ('{"tags": ["Colours", "colour", "COLORS"]}',)
        return ('{"tags": ["Algorithms", "Explanation", "Searching"]}',)
    if step == "tag":
        return (_tagger(3),)
    if step == "expand":
        tag = ("Complexity Analysis", "Edge Cases", "Emoji")[req.payload["candidate"] % 3]
        return (json.dumps({"tag": tag, "explanation": "adds depth"}),)
    if step == "reconstruct":
        if text.startswith("COPY"):
            return (json.dumps({"tags_used": [req.payload["chosen_tag"]], "question": text}),)
        question = (text + " Then analyse its worst-case running time, and explain how "
                    "duplicates and an empty input change the answer.")
        if "|r2|" in req.key:
            question = ("Adapt binary search to a rotated sorted array and prove that it "
                        "still needs only logarithmic time.")
        return (json.dumps({"tags_used": [req.payload["chosen_tag"]], "question": question}),)
    if step == "respond":
        return ("It halves the interval each step, so it needs O(log n) comparisons.",)
    return (_tagger(1 if text.startswith("SHALLOW") else 4),)


class ScriptedBackend:
    """A backend answering from `script`; a RuntimeError there is a failed call."""

    model_id = "scripted"

    def __init__(self, config: LLMConfig):
        self.config = config

    def generate(self, requests: list[ChatRequest]) -> list[Generation]:
        out = []
        for req in requests:
            try:
                out.append(Generation(texts=list(script(req))))
            except RuntimeError as e:
                out.append(Generation(error=str(e)))
        return out

    def close(self) -> None:
        pass


CTX = RunContext(seed=1, llm=LLMConfig(cache=False, progress=False, retries=0),
                 backend_factory=ScriptedBackend)


def _seed_batch():
    rows = [example_row(f"id-{name}", [{"role": "user", "content": text},
                                       {"role": "assistant", "content": "A reference answer " * 3}])
            for name, text in SEEDS.items()]
    rows.append(example_row("id-noinstr", [{"role": "assistant", "content": "orphan answer"}]))
    return examples_to_batch(rows)


def _run(cfg: TagInstructConfig, check) -> None:
    with TestPipeline() as p:
        out = (p | beam.Create([_seed_batch()])
               | TagInstructStage(cfg, CTX))
        lists = {k: out[k] | f"{k}List" >> beam.combiners.ToList() for k in out}
        combined = (
            [lists[k] | f"{k}Tag" >> beam.Map(lambda v, k=k: (k, v)) for k in lists]
            | beam.Flatten() | beam.combiners.ToDict())
        assert_that(combined, lambda got: check(got[0]))


@pytest.mark.slow
def test_every_seed_ends_somewhere_with_lineage_and_pairs() -> None:
    cfg = TagInstructConfig(enabled=True, rounds=2, num_candidates=3, max_length_ratio=6.0)

    def check(got: dict[str, list]) -> None:
        rejected = [r for b in got[REJECTED] for r in b.to_pylist()]
        examples = [r for b in got[EXAMPLES] for r in b.to_pylist()]
        pairs = [r for b in got[TAG_PAIRS] for r in b.to_pylist()]
        dead = got[DEADLETTER]
        [report] = got[REPORT]
        reasons = {r["id"]: r["reject_reason"] for r in rejected}
        assert reasons == {
            "id-badtags": "compress_too_few_tags",
            "id-copy": "too_similar_to_original",
            "id-shallow": "complexity_loss",
            "id-noinstr": "no_instruction",
        }
        assert [d["record_id"] for d in dead] == ["id-dead|r1|compress"]
        assert dead[0]["stage"] == "tag_instruct" and "backend failed" in dead[0]["error"]
        # round 1: the happy seed is accepted; round 2: its output is accepted again
        by_round = {e["meta"]["ti_round"]: e for e in examples}
        assert sorted(by_round) == [1, 2]
        assert by_round[1]["meta"]["lineage"]["parent_ids"] == ["id-happy"]
        assert by_round[2]["meta"]["lineage"]["parent_ids"] == [by_round[1]["id"]]
        assert by_round[2]["meta"]["ti_root_id"] == "id-happy"
        assert by_round[1]["meta"]["ti_chosen_tag"] in {"complexity analysis", "edge case",
                                                       "emoji"}
        assert by_round[1]["meta"]["ti_tags_before"] == ["algorithm", "explanation", "searching"]
        assert by_round[1]["meta"]["lineage"]["model"] == backend_model_id(CTX.llm)
        seeds = {f"id-{n}" for n in SEEDS} | {"id-noinstr"}
        round1_out = ({by_round[1]["meta"]["lineage"]["parent_ids"][0]}
                      | {r["id"] for r in rejected if json.loads(r["reject_detail"])["round"] == 1}
                      | {d["record_id"].split("|")[0] for d in dead})
        assert round1_out == seeds
        # pairs: best vs worst of the 3 distinct candidates, when the margin is real; every
        # expansion is counted as written or skipped with a reason
        r1, r2 = report["rounds"]
        for r in (r1, r2):
            written = [p for p in pairs if p["meta"]["ti_round"] == r["round"]]
            assert r["pairs"] == len(written) == r["pairs_by_outcome"].get("written", 0)
        assert sum(r1["pairs_by_outcome"].values()) == 3  # happy, copy, shallow expanded
        assert sum(r2["pairs_by_outcome"].values()) == 1
        assert r1["pairs_by_outcome"] == {"written": 3} and r1["reward_margin"]["count"] == 3
        for pr in pairs:
            assert pr["meta"]["ti_chosen_reward"] - pr["meta"]["ti_rejected_reward"] >= 0.01
            assert pr["chosen"][0]["role"] == "assistant"
        # utility from round 1's tagger tags: three tags, equal utility, ranked by tag
        assert report["utility"]["top"] == ["algorithm"]
        assert report["utility"]["bottom"] == ["searching"]
        assert (r1["inputs"], r1["accepted"], r1["rejected"], r1["deadletter"]) == (6, 1, 4, 1)
        assert (r2["inputs"], r2["accepted"], r2["rejected"], r2["deadletter"]) == (1, 1, 0, 0)
        assert report["conserved"] and r1["acceptance_rate"] == round(1 / 6, 4)
        assert r1["mean_tags_before"] == 3.0 and r1["mean_tags_after"] == 4.0
        assert r1["unique_tags_before"] == 3
        assert r1["reward_chosen"]["count"] == 3 and r1["reward_candidates"]["count"] == 9
        assert r1["rejected_by_reason"]["complexity_loss"] == 1
        assert report["utility"]["source"] == "corpus"

    _run(cfg, check)


def test_utility_file_and_rejected_batches_keep_meta(tmp_path) -> None:
    path = tmp_path / "utility.json"
    path.write_text(json.dumps({"proof": 90.0, "complexity analysis": 80.0, "greeting": 1.0,
                                "emoji": 2.0}))  # counts default to 1000
    cfg = TagInstructConfig(enabled=True, rounds=1, num_candidates=3, utility_path=str(path),
                            reference_k=2)

    def check(got: dict[str, list]) -> None:
        [report] = got[REPORT]
        assert report["utility"]["source"] == "file"
        assert report["utility"]["top"] == ["proof", "complexity analysis"]
        [example] = [r for b in got[EXAMPLES] for r in b.to_pylist()]
        # against this table, "complexity analysis" beats "edge case" and "emoji"
        assert example["meta"]["ti_chosen_tag"] == "complexity analysis"
        for batch in got[REJECTED]:
            assert meta_field(batch, "lineage") is not None
            assert set(batch.schema.names) >= {"reject_reason", "reject_detail"}

    _run(cfg, check)
