"""End to end on the data/ samples: conservation law, dead letter, determinism (two runs;
in-memory vs multi-process), Parquet and card read back with `datasets`, manifest checksums,
shard sizing, JSONL option, error budget abort."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main as cli_main
from pipeline.config import RunConfig, load_config
from pipeline.outputs.publish import published_dir
from pipeline.run import RunAborted, run_config

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "demo.yaml"


def demo_config(out: Path, *overrides: str) -> RunConfig:
    """The demo's sources and ingest/emit settings with every stage off (these tests cover
    ingest → emit; tests/test_configs.py runs the whole demo), absolute sample paths and
    `out` as output directory."""
    import yaml

    raw = yaml.safe_load(DEMO.read_text())
    sets = [f"sources.{i}.path={ROOT / s['path']}" for i, s in enumerate(raw["sources"])]
    sets += [f"stages.{name}.enabled=false" for name in raw.get("stages", {})]
    return load_config(DEMO, [*sets, *overrides], out=str(out))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def output_bytes(out: Path) -> dict[str, bytes]:
    out = Path(published_dir(out))  # the published run (<out>/current resolved once)
    names = [p for p in out.rglob("*") if p.is_file() and p.suffix in (".parquet", ".jsonl")]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(names)}


def count_input_rows(cfg: RunConfig) -> int:
    """Records in every source, counted independently of the pipeline's readers."""
    total = 0
    for s in cfg.sources:
        p = Path(s.path)
        if p.suffix == ".jsonl":
            total += sum(1 for line in p.read_bytes().split(b"\n") if line.strip())
        elif p.suffix == ".json":
            total += len(json.loads(p.read_text()))
        elif p.suffix == ".csv":
            with p.open(newline="") as f:
                total += sum(1 for _ in csv.reader(f)) - 1
        elif p.suffix == ".parquet":
            total += pq.ParquetFile(p).metadata.num_rows
    return total


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunConfig, Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    cfg = demo_config(out)
    result = run_config(cfg)
    return cfg, out, result.manifest


def test_conservation_law_matches_independent_counts(demo) -> None:
    cfg, out, manifest = demo
    c = manifest["conservation"]
    rows_in = count_input_rows(cfg)
    shard_rows = sum(pq.read_table(p).num_rows for p in out.glob("*/*.parquet"))
    dead = (out / "deadletter" / "deadletter.jsonl").read_text().splitlines()
    rejected = sum(pq.read_table(p).num_rows for p in out.glob("rejected/*.parquet"))
    assert c["holds"] is True
    assert c["records_in"] == rows_in
    assert c["records_out"] == shard_rows
    assert c["deadletter"] == len(dead)
    assert c["rejected"] == rejected
    assert rows_in == shard_rows + rejected + len(dead)
    assert len(dead) > 0 and shard_rows > 0
    # per-file figures agree too
    for entry in manifest["inputs"]:
        f = entry["path"]
        dead_f = sum(1 for line in dead if json.loads(line)["file"] == f)
        assert entry["deadletter"] == dead_f
        assert entry["rows_read"] == entry["examples"] + entry["pairs"] + entry["deadletter"]


def test_every_kind_of_bad_sample_is_dead_lettered_with_payload(demo) -> None:
    _, out, _ = demo
    entries = [json.loads(line) for line in
               (out / "deadletter" / "deadletter.jsonl").read_text().splitlines()]
    for e in entries:
        assert set(e) >= {"stage", "file", "row", "error", "raw"}
        assert e["stage"] == "ingest" and isinstance(e["row"], int) and e["raw"]
    errors = " | ".join(e["error"] for e in entries)
    for kind in ("malformed JSON", "invalid UTF-8", "missing field", "should be text",
                 "is empty", "exceeds max_record_bytes", "CSV row has", "unknown role",
                 "should be a list of turns", "should be an object"):
        assert kind in errors, kind
    by_key = {(Path(e["file"]).name, e["row"]): e for e in entries}
    assert by_key[("alpaca.jsonl", 38)]["raw"].startswith('{"instruction": "Unclosed record"')
    assert "\\xff" in by_key[("alpaca.jsonl", 39)]["raw"]


def test_shards_and_card_load_with_datasets(demo) -> None:
    import datasets

    _, out, manifest = demo
    outputs = manifest["counts"]["outputs"]
    sft = datasets.load_dataset("parquet", data_dir=str(out / "sft"), split="train")
    assert sft.num_rows == sum(outputs["sft"].values())
    assert set(sft.column_names) >= {"id", "messages", "source", "meta"}
    assert sft[0]["messages"][0]["role"] in ("system", "user")
    pref = datasets.load_dataset("parquet", data_dir=str(out / "preference"), split="train")
    assert pref.num_rows == sum(outputs["preference"].values())
    assert set(pref.column_names) >= {"prompt", "chosen", "rejected"}
    card_sft = datasets.load_dataset(str(out), "sft", split="train")
    assert card_sft.num_rows == sft.num_rows
    card_pref = datasets.load_dataset(str(out), "preference", split="train")
    assert card_pref.num_rows == pref.num_rows


def test_manifest_checksums_hash_and_versions(demo) -> None:
    cfg, out, manifest = demo
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["config_hash"] == manifest["config_hash"] == cfg.config_hash()
    assert len(manifest["config_hash"]) == 64
    assert {Path(i["path"]).name for i in manifest["inputs"]} == {
        Path(s.path).name for s in cfg.sources}
    for entry in manifest["inputs"]:
        assert entry["sha256"] == sha(Path(entry["path"]))
    files = {s["path"]: s for s in manifest["shards"]}
    assert len(files) == 8  # 2 datasets x 2 shards x (parquet + jsonl)
    for rel, s in files.items():
        path = out / rel
        assert s["sha256"] == sha(path), rel
        if s["format"] == "parquet":
            assert s["rows"] == pq.read_table(path).num_rows
        else:
            assert s["rows"] == len(path.read_text().splitlines())
    dl = out / "deadletter" / "deadletter.jsonl"
    assert dl.exists()
    versions = manifest["versions"]
    for lib in ("python", "apache-beam", "pyarrow", "datasets", "pydantic"):
        assert versions.get(lib), lib


def test_jsonl_beside_parquet_holds_the_same_rows(demo) -> None:
    _, out, _ = demo
    for dataset in ("sft", "preference"):
        for pf in sorted((out / dataset).glob("*.parquet")):
            jf = out / "jsonl" / dataset / pf.with_suffix(".jsonl").name
            ids = [json.loads(line)["id"] for line in jf.read_text().splitlines()]
            assert ids == pq.read_table(pf).column("id").to_pylist()
        assert not list((out / dataset).glob("*.jsonl"))


def test_two_runs_give_identical_bytes(demo, tmp_path: Path) -> None:
    cfg, out, _ = demo
    run_config(demo_config(tmp_path / "again"))
    first, second = output_bytes(out), output_bytes(tmp_path / "again")
    assert first.keys() == second.keys() and len(first) == 9
    assert first == second


@pytest.mark.slow
def test_multi_processing_gives_the_same_shards(demo, tmp_path: Path) -> None:
    _, out, _ = demo
    run_config(demo_config(tmp_path / "mp", "beam.direct_running_mode=multi_processing",
                           "beam.direct_num_workers=2"))
    assert output_bytes(tmp_path / "mp") == output_bytes(out)


def _small_input(tmp_path: Path, n: int, bad: int = 0) -> Path:
    path = tmp_path / "small.jsonl"
    lines = [json.dumps({"question": f"What is {i} + {i}?", "answer": str(2 * i)})
             for i in range(n)] + ["{not json"] * bad
    path.write_text("\n".join(lines) + "\n")
    return path


def test_rows_per_shard_and_shard_names(tmp_path: Path) -> None:
    src = _small_input(tmp_path, 23)
    cfg = load_config(None, ["emit.rows_per_shard=10", "emit.jsonl=false"], inputs=[str(src)],
                      out=str(tmp_path / "out"))
    result = run_config(cfg)
    names = sorted(p.name for p in (tmp_path / "out" / "sft").iterdir())
    assert names == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    assert sum(s["rows"] for s in result.manifest["shards"] if s["dataset"] == "sft") == 23
    assert not (tmp_path / "out" / "jsonl").exists()
    assert [s["path"] for s in result.manifest["shards"] if s["dataset"] == "preference"] == [
        "preference/train-00000-of-00001.parquet"]


def test_error_budget_exceeded_aborts_and_publishes_nothing(tmp_path: Path, capsys) -> None:
    src = _small_input(tmp_path, 6, bad=4)
    out = tmp_path / "out"
    cfg = load_config(None, ["ingest.max_error_rate=0.3"], inputs=[str(src)], out=str(out))
    with pytest.raises(RunAborted, match=r"4 of 10 rows \(40.0%\).*max_error_rate=0.3") as err:
        run_config(cfg)
    assert sorted(p.name for p in out.iterdir()) == [".runs"]  # nothing published
    dead = Path(str(err.value).rsplit("this run's dead letter: ", 1)[1].strip())
    assert dead.parent.parent.parent == out / ".runs"
    assert len(dead.read_text().splitlines()) == 4
    # the CLI turns it into exit status 3 with the message on stderr
    code = cli_main(["ingest", str(src), "--out", str(tmp_path / "cli"),
                     "--set", "ingest.max_error_rate=0.3"])
    err_text = capsys.readouterr().err
    assert code == 3
    assert "aborted at stage ingest" in err_text and "nothing was published" in err_text
    assert "4× ReadError: malformed JSON" in err_text
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == [".runs"]


def test_error_rate_within_budget_publishes_and_accounts_for_bad_rows(tmp_path: Path) -> None:
    src = _small_input(tmp_path, 6, bad=4)
    ok = run_config(load_config(None, ["ingest.max_error_rate=0.5"], inputs=[str(src)],
                                out=str(tmp_path / "ok")))
    assert ok.manifest["conservation"] == {"records_in": 10, "records_out": 6, "rejected": 0,
                                           "deadletter": 4, "holds": True}


def test_missing_input_exits_3_with_source_error(tmp_path: Path, capsys) -> None:
    code = cli_main(["ingest", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")])
    assert code == 3
    assert "file not found" in capsys.readouterr().err
