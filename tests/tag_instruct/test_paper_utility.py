"""The paper mode's utility table and reward: the authors' tag_values.jsonl loads into their
reference sets (count > 2, top/bottom 1,000 by average_value), rewards of fixed candidate tags
equal a direct numpy computation (mean cosine to top − mean cosine to bottom, embeddings not
pre-normalized), and the paper config refuses a missing role or a too-small table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.config import load_config
from transforms.tag_instruct import core
from transforms.tag_instruct.config import TagInstructConfig
from transforms.tag_instruct.parsers import Candidate
from transforms.tag_instruct.stage import LazyEmbedder, refs_dict
from transforms.tag_instruct.utility import ReferenceSets, load_utility, save_utility

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "configs" / "tag_instruct_paper.yaml"
CANDIDATES = ["Algorithm Design", "Emotional Support", "hello", "Risk Assessment",
              "Statistical Inference"]


def _paper_cfg(**changes) -> TagInstructConfig:
    cfg = load_config(PAPER).stages.tag_instruct
    return cfg.model_copy(update=changes)


def _their_sets(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    ranked = sorted([r for r in rows if r["count"] > 2], key=lambda r: r["average_value"],
                    reverse=True)
    return [r["tag"] for r in ranked[:1000]], [r["tag"] for r in ranked[-1000:]]


def test_their_table_gives_their_reference_sets(evaldata_dir: Path) -> None:
    path = evaldata_dir / "tag_instruct_tag_values.jsonl"
    cfg = _paper_cfg(utility_path=str(path))
    table = load_utility(path)
    refs = refs_dict(table, cfg, "file")
    assert len(refs["top"]) == len(refs["bottom"]) == 1000
    assert all(table.count[t] > 2 for t in refs["top"] + refs["bottom"])
    top, bottom = _their_sets(path)
    # the same tags (the order within equal average_value may differ: theirs keeps file order)
    assert set(refs["top"]) == set(top) and set(refs["bottom"]) == set(bottom)
    assert [table.utility[t] for t in refs["top"]] == sorted(
        (table.utility[t] for t in top), reverse=True)


@pytest.mark.slow
@pytest.mark.model
def test_rewards_match_a_direct_numpy_computation(evaldata_dir: Path) -> None:
    path = evaldata_dir / "tag_instruct_tag_values.jsonl"
    cfg = _paper_cfg(utility_path=str(path))
    refs = refs_dict(load_utility(path), cfg, "file")
    sets = ReferenceSets(tuple(refs["top"]), tuple(refs["bottom"]), refs["pool_size"],
                         refs["min_count"])
    # the paper config's embeddings: fp32 (int8 activations are quantized per batch, so a
    # reward would depend on which texts share the batch)
    embeddings = load_config(PAPER).embeddings.model_copy(update={"device": "cpu"})
    assert not embeddings.int8
    ours = core.candidate_rewards([Candidate(c.lower(), c, "x") for c in CANDIDATES], sets,
                                  LazyEmbedder(embeddings), cfg)
    # direct: raw (not normalized) embeddings of the same model, cosine = dot / (|a| |b|), as
    # theirs computes it, over their sets as they build them
    from transforms.embed.model import Embedder

    model = Embedder(embeddings.model_copy(update={"normalize": False}))
    top, bottom = _their_sets(path)
    c, t, b = (np.asarray(model.encode(x), dtype=np.float64) for x in (CANDIDATES, top, bottom))

    def cos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T) / (np.linalg.norm(x, axis=1)[:, None] * np.linalg.norm(y, axis=1))

    direct = cos(c, t).mean(axis=1) - cos(c, b).mean(axis=1)
    np.testing.assert_allclose(ours, direct, atol=1e-5)
    assert len(set(np.round(direct, 4))) == len(CANDIDATES)  # distinct: a real check


def test_jsonl_roundtrip_and_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"tag": "Data-Analysis", "count": 4, "total_value": 40.0,
                                "average_value": 10.0}) + "\n"
                    + json.dumps({"tag": "poems", "count": 3, "total_value": 3.0,
                                  "average_value": 1.0}) + "\n")
    table = load_utility(path)
    assert table.utility == {"Data-Analysis": 10.0, "poems": 1.0}  # tags kept as written
    assert table.count == {"Data-Analysis": 4, "poems": 3}
    out = tmp_path / "again.jsonl"
    save_utility(table, out)
    assert out.read_text() == path.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"tag": "x", "average_value": 1.0}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_utility(bad)


def test_too_few_frequent_tags_is_an_error_in_paper_mode(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps({"tag": f"t{i}", "count": 3 if i < 5 else 2,
                                        "total_value": 3.0 * i, "average_value": float(i)})
                            + "\n" for i in range(50)))
    # a validation error when the config is loaded (`refinery validate` lists it) ...
    data = load_config(PAPER).stages.tag_instruct.model_dump()
    with pytest.raises(ValidationError, match="has 5 tags seen >= 3 times"):
        TagInstructConfig.model_validate({**data, "utility_path": str(path)})
    # ... and again when the graph is built (tables on object stores are read only then)
    with pytest.raises(ValueError, match="5 tags seen >= 3 times"):
        refs_dict(load_utility(path), _paper_cfg(utility_path=str(path)), "file")
    # ours (require_references off): K shrinks to half the pool, reported
    small = refs_dict(load_utility(path), _paper_cfg(utility_path=str(path),
                                                     require_references=False), "file")
    assert len(small["top"]) == len(small["bottom"]) == 2


def test_paper_config_needs_every_role_and_a_table() -> None:
    data = load_config(PAPER).stages.tag_instruct.model_dump()
    for role in ("teacher", "policy"):
        partial = {**data, "roles": {k: v for k, v in data["roles"].items() if k != role}}
        with pytest.raises(ValidationError, match=f"'{role}'.*not set in `roles`"):
            TagInstructConfig.model_validate(partial)
    with pytest.raises(ValidationError, match="set utility_path"):
        TagInstructConfig.model_validate({**data, "utility_path": None})
    # ours: a missing role falls back to the run's llm
    TagInstructConfig.model_validate({**data, "require_roles": False, "roles": {}})


def test_tag_utility_never_overwrites_the_paper_table(evaldata_dir: Path) -> None:
    from pipeline.tag_utility import run_tag_utility

    before = (evaldata_dir / "tag_instruct_tag_values.jsonl").stat().st_mtime_ns
    with pytest.raises(ValueError, match="pass out"):
        run_tag_utility(load_config(PAPER))
    assert (evaldata_dir / "tag_instruct_tag_values.jsonl").stat().st_mtime_ns == before
