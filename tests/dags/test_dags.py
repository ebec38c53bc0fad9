"""The Airflow DAGs: structure, params that refuse shell metacharacters, commands that never go
through a shell, and the release DAG run for real twice with `dag.test()`."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.launch import to_cli_args

ROOT = Path(__file__).resolve().parents[2]
DAG_RUNNER = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("refinery_release_dag", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
run = mod.refinery_release().test(run_conf={"version": sys.argv[2], "config": sys.argv[3]})
print("DAG_STATE=" + str(run.state))
"""


@pytest.fixture(scope="module")
def dagbag():
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"dag_{name}", ROOT / "dags" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dags_import_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert {"refinery_curation", "refinery_release"} <= set(dagbag.dag_ids)


def test_release_dag_shape(dagbag) -> None:
    dag = dagbag.dags["refinery_release"]
    assert dag.max_active_runs == 1
    assert {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks} == {
        "build": [], "check": ["build"], "diff": ["build"],
        "publish": ["build", "check", "diff"]}
    assert dag.get_task("publish").retries == 2


def test_curation_asset_schedules_the_release(dagbag) -> None:
    curation, release = dagbag.dags["refinery_curation"], dagbag.dags["refinery_release"]
    (task,) = curation.tasks
    assert curation.schedule == "@daily"
    outlets = [a.name for a in task.outlets]
    assert outlets == ["refinery_curated"]
    assert [a.name for a in release.timetable.asset_condition.objects] == ["refinery_curated"]


@pytest.mark.parametrize("version", ["v1; rm -rf /", "v1$(touch x)", "../v1", "/abs", "v1 v2", ""])
def test_version_param_refuses_metacharacters(dagbag, version: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    params = dagbag.dags["refinery_release"].params
    with pytest.raises(ParamValidationError):
        params.get_param("version").resolve(version)
    assert params.get_param("version").resolve("v2.1") == "v2.1"
    with pytest.raises(ParamValidationError):
        params.get_param("config").resolve("cfg.yaml; curl evil")


def test_commands_are_argv_never_a_shell(tmp_path: Path) -> None:
    """Even if a hostile version reached the command, no shell interprets it: the CLI gets it
    as one argument and refuses it (exit 3), and nothing is executed."""
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    from airflow.sdk.exceptions import AirflowFailException

    mod = _module("refinery_release")
    marker = tmp_path / "pwned"
    with pytest.raises(AirflowFailException, match="must look like"):
        mod.refinery("publish", str(tmp_path), "--releases", str(tmp_path / "rel"),
                     "--version", f"v1; touch {marker}", "--checked", "/dev/null")
    assert not marker.exists()


def test_launcher_turns_flags_into_a_run() -> None:
    args = to_cli_args(["--config=configs/demo.yaml", "--output_dir=/tmp/x",
                        "--set=emit.num_shards=3", "--runner=DirectRunner", "--project=p"])
    assert args == ["run", "configs/demo.yaml", "--out", "/tmp/x", "--set", "emit.num_shards=3",
                    "--runner=DirectRunner", "--project=p"]


def _airflow_env(tmp: Path, repo: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(tmp / "airflow"), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp / 'airflow' / 'airflow.db'}",
        "AIRFLOW_VAR_REFINERY_RELEASES": str(tmp / "releases"),
        "AIRFLOW_VAR_REFINERY_OUTPUT_ROOT": str(tmp / "builds"),
        "REFINERY_REPO": str(repo), "REFINERY_PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    return env


@pytest.mark.slow
def test_release_dag_runs_twice_and_the_changelog_shows_the_change(tmp_path: Path) -> None:
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    repo = tmp_path / "repo"
    repo.mkdir()
    pairs = [
        ("Explain how rivers carve canyons over time.", "Flowing water erodes rock grain by "
         "grain; over millions of years the channel deepens into a canyon."),
        ("Why do volcanoes erupt?", "Magma rises because it is lighter than the rock around "
         "it, and gas pressure pushes it out through weak spots in the crust."),
        ("Describe a suspension bridge in two sentences.", "Its deck hangs from vertical "
         "cables. Those cables hang from two main cables anchored at both ends."),
        ("What do honeybees do in winter?", "They cluster together inside the hive and shiver "
         "their flight muscles to keep the queen warm."),
        ("List three facts about glaciers.", "Glaciers store most of Earth's fresh water, "
         "they move downhill under their own weight, and they leave moraines behind."),
        ("How did lighthouse keepers live?", "They lived at remote stations, trimmed lamp "
         "wicks at night and logged the weather every few hours."),
        ("Give a short definition of a comet.", "A comet is a small icy body that grows a "
         "glowing tail of gas and dust when it nears the Sun."),
        ("Name two threats to coral reefs.", "Warming seas bleach the corals, and runoff "
         "from farms clouds the water they need."),
        ("Translate 'good morning' into Spanish.", "Good morning in Spanish is 'buenos "
         "días'."),
        ("Suggest a name for a bakery by the sea.", "How about 'Salt and Crumb', a name that "
         "mixes the coast with fresh bread?"),
    ]
    rows = [{"instruction": q, "input": "", "output": a} for q, a in pairs]
    (repo / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (repo / "release.yaml").write_text(
        "run: {name: test-release, seed: 1}\n"
        "sources: [{path: in.jsonl, name: alpaca, license: cc-by-4.0}]\n"
        "stages: {quality: {enabled: true}, dedup: {enabled: true, semantic: false}}\n")
    env = _airflow_env(tmp_path, repo)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True,
                   capture_output=True, timeout=600)
    runner = tmp_path / "run_dag.py"
    runner.write_text(DAG_RUNNER)

    def run(version: str) -> None:
        res = subprocess.run([sys.executable, str(runner), str(ROOT / "dags/refinery_release.py"),
                              version, "release.yaml"], env=env, capture_output=True, text=True,
                             timeout=900)
        assert "DAG_STATE=success" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]

    run("v1")
    added = {"instruction": "Name the largest planet of the solar system.", "input": "",
             "output": "Jupiter is the largest planet of the solar system."}
    (repo / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows[1:], added]))
    run("auto")  # the next version: v2
    releases = tmp_path / "releases"
    assert (releases / "LATEST").read_text().strip() == "v2"
    assert [r["version"] for r in json.loads((releases / "releases.json").read_text())] == [
        "v1", "v2"]
    diff = json.loads((releases / "v2" / "release_diff.json").read_text())["datasets"]["sft"]
    assert (diff["added"], diff["removed"]) == (1, 1)
    assert diff["kept"] == len(rows) - 1
    card = (releases / "v2" / "README.md").read_text()
    assert "version: `v2` (previous: `v1`)" in card and "| sft | 1 | 1 |" in card
    assert "cc-by-4.0" in card
    import datasets

    for version in ("v1", "v2"):
        ds = datasets.load_dataset("parquet", data_dir=str(releases / version / "sft"),
                                   split="train")
        assert len(ds) == json.loads((releases / version / "release_check.json").read_text())[
            "rows"]["sft"]["train"]
    assert not list(releases.glob(".tmp-*"))


def test_checkout_default_and_config_paths() -> None:
    """REFINERY_REPO defaults to the checkout holding the DAG files; configs may be relative
    or absolute, never `..`, spaces or shell characters (refused for good, no retry)."""
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    from airflow.sdk.exceptions import AirflowFailException

    _module("refinery_release")  # puts dags/ on the path, as Airflow does
    import refinery_task

    if "REFINERY_REPO" not in os.environ:
        assert str(ROOT) == refinery_task.REPO
    for good in ("configs/demo.yaml", "/srv/configs/weekly.yml", "/tmp/x-1/c_2.yaml"):
        assert refinery_task.check_config(good) == good
    for bad in ("../etc/c.yaml", "/a/../b.yaml", "c.yaml; rm -rf /", "my config.yaml",
                "c.json", "$(x).yaml"):
        with pytest.raises(AirflowFailException):
            refinery_task.check_config(bad)


def test_deterministic_failures_are_final_others_retried(tmp_path: Path) -> None:
    """Exit 2 (bad config) fails for good with Refinery's message; a crash is retryable."""
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    from airflow.sdk.exceptions import AirflowFailException

    _module("refinery_release")
    import refinery_task

    broken = tmp_path / "broken.yaml"
    broken.write_text("run: {name: x}\nsources: [{path: data/alpaca.jsonl}]\n"
                      "stages: {qualty: {enabled: true}}\n")
    with pytest.raises(AirflowFailException, match="stages.qualty: Extra inputs"):
        refinery_task.run_refinery(["pipeline", "validate", str(broken)])
    with pytest.raises(RuntimeError, match="exit 1") as crash:
        refinery_task.run_refinery(["pipeline.no_such_module"])
    assert not isinstance(crash.value, AirflowFailException)
    assert "valid" in refinery_task.run_refinery(
        ["pipeline", "validate", "configs/release_quick.yaml"])


def _fresh_clone(dest: Path) -> Path:
    """The tracked files of this checkout, as a fresh clone has them (working-tree content)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            (dest / name).write_bytes(src.read_bytes())
    return dest


@pytest.mark.slow
def test_docs_airflow_setup_runs_both_dags(tmp_path: Path) -> None:
    """docs/airflow.md step by step from a fresh clone: db migrate, the DAG folder, the
    variables, `airflow dags test` of both DAGs; then the release DAG with an absolute config
    (accepted, published as v2) and with a broken one (fails once, no retry, Refinery's
    message in the task log). No REFINERY_REPO: the DAGs find their checkout."""
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    clone = _fresh_clone(tmp_path / "clone")
    doc = (clone / "docs" / "airflow.md").read_text()
    for step in ("airflow db migrate", "AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags",
                 "airflow variables set refinery_output_root",
                 "airflow variables set refinery_releases", "airflow variables set refinery_config",
                 "airflow dags test refinery_curation", "airflow dags test refinery_release"):
        assert step in doc, step
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "REFINERY_"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(clone / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "HF_HUB_OFFLINE": "1",
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"})
    env.pop("PYTHONPATH", None)
    airflow = [sys.executable, "-m", "airflow"]

    def sh(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([*airflow, *args], cwd=clone, env=env, capture_output=True,
                             text=True, timeout=900)
        if ok:
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res

    sh("db", "migrate")
    builds, releases = tmp_path / "builds", tmp_path / "releases"
    sh("variables", "set", "refinery_output_root", str(builds))
    sh("variables", "set", "refinery_releases", str(releases))
    sh("variables", "set", "refinery_config", "configs/release_quick.yaml")
    curation = sh("dags", "test", "refinery_curation", "2026-01-02")
    assert "state=success" in curation.stdout + curation.stderr
    assert (builds / "2026-01-02" / "manifest.json").exists()
    release = sh("dags", "test", "refinery_release")
    log = release.stdout + release.stderr
    assert "state=success" in log and "PASS release check" in log  # Refinery's output
    assert (releases / "LATEST").read_text().strip() == "v1"

    absolute = tmp_path / "elsewhere" / "weekly.yaml"
    absolute.parent.mkdir()
    absolute.write_text((clone / "configs" / "release_quick.yaml").read_text().replace(
        "  - {path: data/dolly.jsonl, name: dolly}\n", ""))
    res = sh("dags", "test", "refinery_release", "-c", json.dumps({"config": str(absolute)}))
    assert "state=success" in res.stdout + res.stderr
    assert (releases / "LATEST").read_text().strip() == "v2"
    assert "source file removed" in (releases / "v2" / "CHANGELOG.md").read_text()

    broken = tmp_path / "elsewhere" / "broken.yaml"
    broken.write_text("run: {name: x}\nsources: [{path: data/alpaca.jsonl}]\n"
                      "stages: {qualty: {enabled: true}}\n")
    res = sh("dags", "test", "refinery_release", "-c", json.dumps({"config": str(broken)}),
             ok=False)
    log = res.stdout + res.stderr
    assert res.returncode != 0 and "DagRun failed" in log
    assert re.search(r"stages\.qualty: Extra inputs are not permitted.*\[refinery\]", log)
    assert log.count("[DAG TEST] starting task_id=build ") == 1  # one try
    assert "up_for_retry" not in log and "new_state=failed" in log
    assert (releases / "LATEST").read_text().strip() == "v2"
