"""Dataset release build: build → check → diff → publish, one version at a time.

Only wiring; each step is `pipeline.release.flow` (the same steps as `refinery release ...`).
Triggered by hand with params {version, config}, or by the curation DAG's Asset (then with the
defaults: version `auto`, the next major version). Commands run as argument lists, never
through a shell, and the params are checked by their JSON-schema patterns before a run starts.
A bad config or a refused check or publish (exit 2 or 3) fails the task at once, without retry;
a crashed or killed step is retried; every step's output is in its task log. The check
result reaches publish through XCom, so the build is checked once. Setup: docs/airflow.md.

The default config, configs/release_quick.yaml, curates the samples in data/ without model
stages (about a minute on a laptop); configs/release.yaml runs every stage (synthesis with the
CPU model: tens of minutes to hours on a CPU; use it on a GPU machine or with a served model).

Settings (Airflow Variables, read when a task runs): refinery_output_root (build folders),
refinery_releases (published versions), refinery_runner; REFINERY_REPO (default: the checkout
this file is in) and REFINERY_PYTHON (its interpreter) from the environment.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, Variable, dag, get_current_context, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refinery_task import CONFIG_PATTERN, check_config, run_refinery

CURATED = Asset(name="refinery_curated", uri="file:///refinery/curated")
VERSION_PATTERN = r"^(auto|v\d+(\.\d+)*)$"


def _setting(name: str, default: str) -> str:
    return Variable.get(name, default=default)


def _params() -> dict[str, Any]:
    params = get_current_context()["params"]
    # The Param schema already refused these; checked again where the values are used.
    if not re.fullmatch(VERSION_PATTERN, params["version"]):
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"bad version param {params['version']!r}")
    check_config(params["config"])
    return params


def _build_dir() -> str:
    run_id = re.sub(r"[^A-Za-z0-9_.-]", "_", get_current_context()["run_id"])
    return os.path.join(_setting("refinery_output_root", "/tmp/refinery"), f"build-{run_id}")


def _releases() -> str:
    return _setting("refinery_releases", "/tmp/refinery/releases")


def refinery(*args: str, answer: bool = True) -> Any:
    """Run `refinery release ARGS` (see refinery_task.run_refinery: output in the task log,
    exit 2/3 final, other failures retried); with `answer`, return its JSON answer."""
    out = run_refinery(["pipeline", "release", *args, *(["--json"] if answer else [])])
    return json.loads(out) if answer else None


@dag(
    dag_id="refinery_release",
    description="Build, check, diff and publish a Refinery dataset release",
    schedule=[CURATED],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    params={
        "version": Param("auto", type="string", pattern=VERSION_PATTERN,
                         description="release version (v1, v2.1) or auto (next major)"),
        "config": Param("configs/release_quick.yaml", type="string", pattern=CONFIG_PATTERN,
                        description="release config, relative to the checkout or absolute"),
    },
    tags=["refinery", "release"],
)
def refinery_release() -> None:
    @task
    def build() -> str:
        params, out = _params(), _build_dir()
        refinery("build", params["config"], "--out", out, "--releases", _releases(),
                 f"--runner={_setting('refinery_runner', 'DirectRunner')}", answer=False)
        return out

    @task
    def check(out: str) -> dict[str, Any]:
        return refinery("check", out, "--releases", _releases())

    @task
    def diff(out: str) -> dict[str, Any]:
        result = refinery("diff", out, "--releases", _releases())
        return {name: {k: d[k] for k in ("added", "removed", "kept")}
                for name, d in result["datasets"].items()}

    @task
    def publish(out: str, checked: dict[str, Any], _changes: dict[str, Any]) -> str:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(checked, fh)
        try:
            return refinery("publish", out, "--releases", _releases(),
                            "--version", _params()["version"], "--checked", fh.name)["published"]
        finally:
            os.unlink(fh.name)

    out = build()
    publish(out, check(out), diff(out))


refinery_release()
