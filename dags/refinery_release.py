"""Dataset release build: build → check → diff → publish, one version at a time.

Only wiring; each step is `pipeline.release_flow` (the same steps as `refinery release ...`).
Triggered by hand with params {version, config}, or by the curation DAG's Asset (then with the
defaults: version `auto`, the next major version). Commands run as argument lists, never
through a shell, and the params are checked by their JSON-schema patterns before a run starts.
A release check that fails is final (no retry); a crashed or killed step is retried. The check
result reaches publish through XCom, so the build is checked once.

Settings (Airflow Variables, read when a task runs): refinery_output_root (build folders),
refinery_releases (published versions), refinery_runner; REFINERY_REPO (checkout on the
workers) and REFINERY_PYTHON (its interpreter) from the environment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, Variable, dag, get_current_context, task

REPO = os.environ.get("REFINERY_REPO", "/opt/refinery")
PYTHON = os.environ.get("REFINERY_PYTHON", sys.executable)
CURATED = Asset(name="refinery_curated", uri="file:///refinery/curated")
VERSION_PATTERN = r"^(auto|v\d+(\.\d+)*)$"
CONFIG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.ya?ml$"


def _setting(name: str, default: str) -> str:
    return Variable.get(name, default=default)


def _params() -> dict[str, Any]:
    params = get_current_context()["params"]
    # The Param schema already refused these; checked again where the values are used.
    if not re.fullmatch(VERSION_PATTERN, params["version"]):
        raise ValueError(f"bad version param {params['version']!r}")
    if not re.fullmatch(CONFIG_PATTERN, params["config"]) or ".." in params["config"]:
        raise ValueError(f"bad config param {params['config']!r}")
    return params


def _build_dir() -> str:
    run_id = re.sub(r"[^A-Za-z0-9_.-]", "_", get_current_context()["run_id"])
    return os.path.join(_setting("refinery_output_root", "/tmp/refinery"), f"build-{run_id}")


def _releases() -> str:
    return _setting("refinery_releases", "/tmp/refinery/releases")


def refinery(*args: str) -> Any:
    """Run `refinery release ARGS` in the checkout as an argument list (no shell); return its
    JSON answer. Exit 3 (a refused release: same input, same answer) fails the task for good;
    any other failure is retried."""
    from airflow.sdk.exceptions import AirflowFailException

    argv = [PYTHON, "-m", "pipeline", "release", *args]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if done.returncode == 3:
        raise AirflowFailException(f"release refused: {done.stderr[-4000:]}")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed ({done.returncode}): "
                           f"{done.stderr[-4000:]}")
    return json.loads(done.stdout)


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
        "config": Param("configs/release.yaml", type="string", pattern=CONFIG_PATTERN,
                        description="release config, relative to the checkout"),
    },
    tags=["refinery", "release"],
)
def refinery_release() -> None:
    @task
    def build() -> str:
        params, out = _params(), _build_dir()
        refinery("build", params["config"], "--out", out, "--releases", _releases(),
                 f"--runner={_setting('refinery_runner', 'DirectRunner')}")
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
