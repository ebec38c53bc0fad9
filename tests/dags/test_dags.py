"""The Airflow DAGs: structure, params that refuse shell metacharacters, commands that never go
through a shell, and docs/airflow.md run for real from a fresh clone: both DAGs, the release
DAG twice (v1, then v2 with the changes in its changelog) and once with a broken config."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.launch import to_cli_args

ROOT = Path(__file__).resolve().parents[2]


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



def test_refinery_repo_points_the_commands_at_another_checkout(tmp_path: Path) -> None:
    """REFINERY_REPO (read when the DAG files load) is the checkout the commands run in: a
    relative config resolves there, not in the caller's directory nor the DAGs' checkout."""
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "in.jsonl").write_text(json.dumps(
        {"instruction": "Why do volcanoes erupt?", "input": "", "output": "Magma is lighter "
         "than the rock around it, and gas pressure pushes it out."}) + "\n")
    (repo / "release.yaml").write_text(
        "run: {name: test-release, seed: 1}\n"
        "sources: [{path: in.jsonl, name: alpaca, license: cc-by-4.0}]\n")
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import refinery_task as t; "
            "print(t.REPO); print(t.run_refinery(['pipeline', 'validate', 'release.yaml']))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REFINERY_"))}
    env.update({"REFINERY_REPO": str(repo), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    res = subprocess.run([sys.executable, "-c", code, str(ROOT / "dags")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert res.stdout.splitlines()[0] == str(repo)
    assert "release.yaml: valid" in res.stdout


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


# Runs airflow CLI commands one after the other through the CLI's own entry point (what the
# `airflow` script calls), in one process: Airflow's start-up (~10 s of CPU) is paid once, not
# once per command. Each command's output (fds 1 and 2) goes to STEP.log, its exit code (a
# SystemExit message printed as the interpreter would, exit 1) to STEP.code, and the releases'
# LATEST after it to STEP.latest.
AIRFLOW_STEPS = """
import json, os, sys, traceback
from airflow.__main__ import main
steps, logs, latest = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
for i, argv in enumerate(steps):
    sys.stdout.flush(); sys.stderr.flush()
    with open(os.path.join(logs, f"{i}.log"), "w") as fh:
        os.dup2(fh.fileno(), 1); os.dup2(fh.fileno(), 2)
    sys.argv, code = ["airflow", *argv], 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc(); code = 1
    sys.stdout.flush(); sys.stderr.flush()
    with open(os.path.join(logs, f"{i}.code"), "w") as fh:
        fh.write(str(code))
    with open(os.path.join(logs, f"{i}.latest"), "w") as fh:
        fh.write(open(latest).read().strip() if os.path.exists(latest) else "")
"""
DOC_STEPS = ("airflow db migrate", "AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags",
             "airflow variables set refinery_output_root", "airflow variables set refinery_releases",
             "airflow variables set refinery_config", "airflow dags test refinery_curation",
             "airflow dags test refinery_release")
BROKEN = "run: {name: x}\nsources: [{path: data/alpaca.jsonl}]\nstages: {qualty: {enabled: true}}\n"
ADDED = {"instruction": "Name the largest planet of the solar system.", "input": "",
         "output": "Jupiter is the largest planet of the solar system."}


@dataclass
class Step:
    code: int
    log: str
    latest: str  # the releases' LATEST after the step


@dataclass
class DocsRun:
    clone: Path
    builds: Path
    releases: Path
    steps: dict[str, Step]


@pytest.fixture(scope="module")
def docs_run(tmp_path_factory: pytest.TempPathFactory) -> DocsRun:
    """docs/airflow.md step by step from a fresh clone, with no REFINERY_REPO (the DAGs find
    their checkout): db migrate, the DAG folder, the variables, `airflow dags test` of both
    DAGs (release v1, the default config); then the release DAG by the docs' `-c` with an
    absolute config (the default one without dolly, plus a new licensed source file: v2), and
    with a broken config. Read by the two tests below."""
    pytest.importorskip("airflow", reason="the airflow extra is installed by `make install`")
    tmp = tmp_path_factory.mktemp("airflow_docs")
    clone = _fresh_clone(tmp / "clone")
    builds, releases, elsewhere, logs = (tmp / "builds", tmp / "releases", tmp / "elsewhere",
                                         tmp / "logs")
    elsewhere.mkdir()
    logs.mkdir()
    (elsewhere / "added.jsonl").write_text(json.dumps(ADDED) + "\n")
    weekly, quick = elsewhere / "weekly.yaml", (clone / "configs/release_quick.yaml").read_text()
    assert "  - {path: data/dolly.jsonl, name: dolly}\n" in quick
    weekly.write_text(quick.replace(
        "  - {path: data/dolly.jsonl, name: dolly}\n",
        f"  - {{path: {elsewhere / 'added.jsonl'}, name: added, license: cc-by-4.0}}\n"))
    (elsewhere / "broken.yaml").write_text(BROKEN)
    steps = {
        "migrate": ["db", "migrate"],
        "var_output_root": ["variables", "set", "refinery_output_root", str(builds)],
        "var_releases": ["variables", "set", "refinery_releases", str(releases)],
        "var_config": ["variables", "set", "refinery_config", "configs/release_quick.yaml"],
        "curation": ["dags", "test", "refinery_curation", "2026-01-02"],
        "release": ["dags", "test", "refinery_release"],
        "absolute": ["dags", "test", "refinery_release", "-c", json.dumps({"config": str(weekly)})],
        "broken": ["dags", "test", "refinery_release", "-c",
                   json.dumps({"version": "v3", "config": str(elsewhere / "broken.yaml")})],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "REFINERY_"))}
    env.update({"AIRFLOW_HOME": str(tmp / "airflow"),
                "AIRFLOW__CORE__DAGS_FOLDER": str(clone / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "HF_HUB_OFFLINE": "1",
                "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}"})
    env.pop("PYTHONPATH", None)
    res = subprocess.run([sys.executable, "-c", AIRFLOW_STEPS, json.dumps(list(steps.values())),
                          str(logs), str(releases / "LATEST")], cwd=clone, env=env,
                         capture_output=True, text=True, timeout=1500)
    last = max(logs.glob("*.log"), key=lambda f: int(f.stem), default=None)
    assert res.returncode == 0, res.stderr[-3000:] + (last.read_text()[-3000:] if last else "")
    done = {name: Step(int((logs / f"{i}.code").read_text()), (logs / f"{i}.log").read_text(),
                       (logs / f"{i}.latest").read_text()) for i, name in enumerate(steps)}
    return DocsRun(clone, builds, releases, done)


def _ok(step: Step) -> str:
    assert step.code == 0, step.log[-6000:]
    return step.log


@pytest.mark.slow
def test_docs_airflow_setup_runs_both_dags(docs_run: DocsRun) -> None:
    """The docs' steps work as written; the release DAG accepts an absolute config (published
    as v2) and fails a broken one once, without retry, with Refinery's message in the log."""
    doc = (docs_run.clone / "docs" / "airflow.md").read_text()
    for step in DOC_STEPS:
        assert step in doc, step
    steps = docs_run.steps
    for name in ("migrate", "var_output_root", "var_releases", "var_config"):
        _ok(steps[name])
    assert "state=success" in _ok(steps["curation"])
    assert (docs_run.builds / "2026-01-02" / "manifest.json").exists()
    log = _ok(steps["release"])
    assert "state=success" in log and "PASS release check" in log  # Refinery's output
    assert steps["release"].latest == "v1"

    assert "state=success" in _ok(steps["absolute"])
    assert steps["absolute"].latest == "v2"
    assert "source file removed" in (docs_run.releases / "v2" / "CHANGELOG.md").read_text()

    broken = steps["broken"]
    log = broken.log
    assert broken.code != 0 and "DagRun failed" in log
    assert re.search(r"stages\.qualty: Extra inputs are not permitted.*\[refinery\]", log)
    assert log.count("[DAG TEST] starting task_id=build ") == 1  # one try
    assert "up_for_retry" not in log and "new_state=failed" in log
    assert broken.latest == "v2"


@pytest.mark.slow
def test_release_dag_runs_twice_and_the_changelog_shows_the_change(docs_run: DocsRun) -> None:
    """v2 diffs against v1: dolly's rows removed (source file removed), the added file's row
    added; the card names both versions and the new source's license; each version's
    parquet loads with the rows its check counted; no publish leftovers."""
    import datasets

    releases = docs_run.releases
    assert (releases / "LATEST").read_text().strip() == "v2"
    assert [r["version"] for r in json.loads((releases / "releases.json").read_text())] == [
        "v1", "v2"]
    loaded = {}
    for version in ("v1", "v2"):
        loaded[version] = datasets.load_dataset(
            "parquet", data_dir=str(releases / version / "sft"), split="train")
        assert len(loaded[version]) == json.loads(
            (releases / version / "release_check.json").read_text())["rows"]["sft"]["train"]
    dolly = sum(s["file"] == "data/dolly.jsonl" for s in loaded["v1"]["source"])
    assert dolly > 0
    diff = json.loads((releases / "v2" / "release_diff.json").read_text())["datasets"]["sft"]
    assert (diff["added"], diff["removed"]) == (1, dolly)
    assert diff["kept"] == len(loaded["v1"]) - dolly == len(loaded["v2"]) - 1
    assert diff["reasons"] == {"added": {"new source file": 1},
                               "removed": {"source file removed": dolly}}
    card = (releases / "v2" / "README.md").read_text()
    assert "version: `v2` (previous: `v1`)" in card and f"| sft | 1 | {dolly} |" in card
    assert "cc-by-4.0" in card
    assert not list(releases.glob(".tmp-*"))
