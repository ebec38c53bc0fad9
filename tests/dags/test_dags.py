"""The Airflow DAGs import cleanly and wire the pipeline as documented."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.launch import to_cli_args
from pipeline.release import ReleaseError, check_release, publish_release

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dags_import_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert {"refinery_curation", "refinery_release"} <= set(dagbag.dag_ids)


def test_release_dag_builds_then_checks_then_publishes(dagbag) -> None:
    dag = dagbag.dags["refinery_release"]
    assert [t.task_id for t in dag.topological_sort()] == ["build", "check", "publish"]
    build = dag.get_task("build")
    assert "python -m pipeline.launch --config={{ params.config }}" in build.bash_command
    assert "--output_dir=" in build.bash_command


def test_curation_dag_is_daily_and_launches_the_pipeline(dagbag) -> None:
    dag = dagbag.dags["refinery_curation"]
    (task,) = dag.tasks
    assert "python -m pipeline.launch" in task.bash_command
    assert "/{{ ds }}" in task.bash_command
    assert dag.schedule == "@daily"


def test_launcher_turns_flags_into_a_run() -> None:
    args = to_cli_args(["--config=configs/demo.yaml", "--output_dir=/tmp/x",
                        "--set=emit.num_shards=3", "--runner=DirectRunner", "--project=p"])
    assert args == ["run", "configs/demo.yaml", "--out", "/tmp/x", "--set", "emit.num_shards=3",
                    "--runner=DirectRunner", "--project=p"]


def _run_demo(out: Path) -> None:
    from pipeline.cli import main

    stages_off = [a for name in ("quality", "dedup", "decontam", "rise", "tag_instruct",
                                 "compound") for a in ("--set", f"stages.{name}.enabled=false")]
    assert main(["run", str(ROOT / "configs/demo.yaml"), "--out", str(out),
                 "--set", "emit.jsonl=false", *stages_off]) == 0


@pytest.mark.slow
def test_release_check_and_publish(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _run_demo(out)
    summary = check_release(str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["rows"]["sft"] == sum(
        s["rows"] for s in manifest["shards"] if s["dataset"] == "sft")
    target = publish_release(str(out), str(tmp_path / "releases"), "v1")
    assert (Path(target) / "manifest.json").exists()
    with pytest.raises(ReleaseError, match="immutable"):
        publish_release(str(out), str(tmp_path / "releases"), "v1")
    # A shard that no longer matches its checksum blocks the release.
    shard = next((out / "sft").glob("*.parquet"))
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "sft" / shard.name).write_bytes(b"not the shard")
    with pytest.raises(ReleaseError, match="sha256"):
        check_release(str(broken))
