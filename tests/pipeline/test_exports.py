"""Trainer exports (pipeline/export/formats.py) of a small run (sft and preference rows), each loaded
the way its trainer loads it: TRL's SFTTrainer / DPOTrainer data preparation on the local
SmolLM2-135M model, LLaMA-Factory's dataset_info.json and files against its documented
schema and converter rules, the OpenAI chat and preference fine-tuning JSONL against their
documented schemas, Axolotl's dataset block parsed as YAML and pointing at chat JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.cli import main
from pipeline.export import formats as exports

ROOT = Path(__file__).resolve().parents[2]
STAGES_OFF = [a for name in ("quality", "dedup", "decontam", "rise", "tag_instruct", "compound")
              for a in ("--set", f"stages.{name}.enabled=false")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "run"
    flags = [a for i in ("alpaca.jsonl", "openai_messages.jsonl", "preference.jsonl")
             for a in ("--input", str(ROOT / "data" / i))]
    assert main(["run", str(ROOT / "configs/demo.yaml"), "--out", str(out), *flags,
                 "--set", "emit.jsonl=false", *STAGES_OFF]) == 0
    return out


def _counts(run: Path) -> dict[str, int]:
    return {d: pq.read_table(run / d).num_rows for d in ("sft", "preference")}


def _jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_openai_export_follows_the_fine_tuning_schemas(run: Path, tmp_path: Path) -> None:
    files = exports.export_openai(str(run), str(tmp_path / "openai"))
    counts = _counts(run)
    sft, pref = _jsonl(tmp_path / "openai/sft.jsonl"), _jsonl(tmp_path / "openai/preference.jsonl")
    assert sorted(files) == sorted([*(str(tmp_path / "openai" / f"{d}.jsonl") for d in counts),
                                    str(tmp_path / "openai" / "README.md")])
    # rows with tool turns cannot be written (OpenAI ties them to tool_call ids): counted
    tools = sum(any(m["role"] == "tool" for m in r["messages"])
                for r in pq.read_table(run / "sft", columns=["messages"]).to_pylist())
    assert tools > 0 and len(sft) == counts["sft"] - tools and sft and pref
    assert len(pref) == counts["preference"]
    assert f"`sft.jsonl`: {len(sft)} rows (chat fine-tuning); {tools} rows with tool messages " \
        "left out" in (tmp_path / "openai" / "README.md").read_text()
    # chat fine-tuning: {"messages": [{role, content}]}, roles system/user/assistant, the last
    # message the assistant's, at least one assistant message
    for line in sft:
        assert set(line) == {"messages"}
        assert all(set(m) == {"role", "content"} and isinstance(m["content"], str)
                   and m["role"] in ("system", "user", "assistant") for m in line["messages"])
        assert line["messages"][-1]["role"] == "assistant"
    # preference fine-tuning (DPO): input.messages, one preferred and one non-preferred
    # assistant message
    for line in pref:
        assert set(line) == {"input", "preferred_output", "non_preferred_output"}
        assert line["input"]["messages"][-1]["role"] == "user"
        for key in ("preferred_output", "non_preferred_output"):
            assert [m["role"] for m in line[key]] == ["assistant"] and line[key][0]["content"]
        assert line["preferred_output"] != line["non_preferred_output"]


@pytest.mark.parametrize("sft_format", ["sharegpt", "alpaca"])
def test_llamafactory_dataset_info_and_files(run: Path, tmp_path: Path, sft_format: str) -> None:
    """LLaMA-Factory's documented dataset_info.json (data/README.md): file_name, formatting,
    ranking, columns; sharegpt: `conversations` of {from, value}, human/gpt alternating after
    an optional system turn, ending with gpt (sft) or human (ranking, with chosen/rejected
    gpt turns); alpaca: instruction, input, output, system, history of [q, a]."""
    to = tmp_path / "lf"
    exports.export_llamafactory(str(run), str(to), sft_format=sft_format)
    info = json.loads((to / "dataset_info.json").read_text())
    assert set(info) == {"refinery_sft", "refinery_preference"}
    counts = _counts(run)
    for name, entry in info.items():
        rows = _jsonl(to / entry["file_name"])
        tools = 0 if entry["formatting"] == "sharegpt" else sum(  # alpaca cannot hold tool turns
            any(m["role"] == "tool" for m in r["messages"])
            for r in pq.read_table(run / "sft", columns=["messages"]).to_pylist())
        assert len(rows) == counts[name.removeprefix("refinery_")] - tools
        cols = entry["columns"]
        if entry["formatting"] == "alpaca":
            assert cols == {"prompt": "instruction", "query": "input", "response": "output",
                            "system": "system", "history": "history"}
            for r in rows:
                assert r["instruction"] and r["output"]
                assert all(len(h) == 2 for h in r["history"])
            continue
        assert entry["formatting"] == "sharegpt"
        for r in rows:
            turns = r[cols["messages"]]
            if turns and turns[0]["from"] == "system":
                turns = turns[1:]
            # odd positions: human or observation (a tool result), even: gpt
            assert all(t["from"] in (("human", "observation") if i % 2 == 0 else ("gpt",))
                       for i, t in enumerate(turns)), turns
            if entry.get("ranking"):
                assert len(turns) % 2 == 1  # ends with the human turn to answer
                assert r[cols["chosen"]]["from"] == r[cols["rejected"]]["from"] == "gpt"
            else:
                assert len(turns) % 2 == 0 and turns
    assert info["refinery_preference"]["ranking"] is True
    assert info["refinery_sft"]["formatting"] == sft_format


def test_axolotl_block_is_yaml_that_points_at_chat_jsonl(run: Path, tmp_path: Path) -> None:
    files = exports.export_axolotl(str(run), str(tmp_path / "ax"))
    sft = yaml.safe_load((tmp_path / "ax" / "axolotl-sft.yaml").read_text())
    (ds,) = sft["datasets"]
    assert ds["type"] == "chat_template" and ds["field_messages"] == "messages"
    assert ds["path"] in files and len(_jsonl(ds["path"])) == _counts(run)["sft"]
    pref = yaml.safe_load((tmp_path / "ax" / "axolotl-preference.yaml").read_text())
    assert pref["rl"] == "dpo"
    row = _jsonl(pref["datasets"][0]["path"])[0]
    assert row["chosen"]["role"] == row["rejected"]["role"] == "assistant"


def test_trl_export_readme_and_unknown_dataset(run: Path, tmp_path: Path) -> None:
    files = exports.export_trl(str(run), str(tmp_path / "trl"), datasets=["sft"])
    readme = (tmp_path / "trl" / "README.md").read_text()
    assert "`sft/`: SFTTrainer" in readme and "preference" not in readme
    assert pq.read_table(tmp_path / "trl" / "sft").num_rows == _counts(run)["sft"]
    assert len(files) == len(list((run / "sft").glob("*.parquet"))) + 1
    with pytest.raises(exports.ExportError, match="no dataset"):
        exports.export_sharegpt(str(run), str(tmp_path / "x"), datasets=["nope"])


@pytest.mark.slow
@pytest.mark.model
def test_trl_trainers_prepare_the_exported_datasets(run: Path, tmp_path: Path) -> None:
    """SFTTrainer and DPOTrainer tokenize the exported datasets (their data preparation, no
    training step) with the local SmolLM2-135M model and its chat template."""
    trl = pytest.importorskip("trl", reason="the trainers extra installs trl")
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transforms.llm.config import LLMConfig
    from transforms.llm.local_model import local_model_path

    exports.export_trl(str(run), str(tmp_path / "trl"))
    path = local_model_path(LLMConfig())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    args = {"output_dir": str(tmp_path / "ckpt"), "report_to": [], "use_cpu": True,
            "max_length": 256}
    sft = datasets.load_dataset("parquet", data_dir=str(tmp_path / "trl" / "sft"),
                                split="train")
    trainer = trl.SFTTrainer(model=model, args=trl.SFTConfig(**args), train_dataset=sft,
                             processing_class=tok)
    prepared = trainer.train_dataset
    assert len(prepared) == len(sft) and "input_ids" in prepared.column_names
    assert all(len(ids) > 4 for ids in prepared["input_ids"])
    pref = datasets.load_dataset("parquet", data_dir=str(tmp_path / "trl" / "preference"),
                                 split="train")
    dpo = trl.DPOTrainer(model=model, args=trl.DPOConfig(**args), train_dataset=pref,
                         processing_class=tok)
    cols = dpo.train_dataset.column_names
    assert len(dpo.train_dataset) == len(pref)
    for part in ("prompt", "chosen", "rejected"):  # token ids of each part, every row
        (ids,) = [c for c in cols if c.startswith(part) and c.endswith("ids")]
        assert all(len(x) > 0 for x in dpo.train_dataset[ids]), ids


def test_export_command_writes_each_trainer_format(run: Path, tmp_path: Path, capsys) -> None:
    """`refinery export OUT --format F [--dataset D]` reaches the same writers as the functions."""
    for fmt in ("trl", "sharegpt", "llamafactory", "openai", "axolotl"):
        assert main(["export", str(run), "--format", fmt, "--to", str(tmp_path / fmt),
                     "--dataset", "sft"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["format"] == fmt and summary["files"]
        assert all(Path(f).exists() and "preference" not in Path(f).name
                   for f in summary["files"])
    info = json.loads((tmp_path / "llamafactory" / "dataset_info.json").read_text())
    assert list(info) == ["refinery_sft"]
    assert main(["export", str(run), "--format", "sharegpt", "--dataset", "nope"]) == 2
    assert "no dataset" in capsys.readouterr().err
