"""Scheduled curation: run a Refinery config every day into a dated output directory, then
announce the result as the `refinery_curated` Asset (which schedules the release DAG).

Only wiring. Settings: Airflow Variables refinery_config, refinery_output_root and
refinery_runner (read when the task runs), REFINERY_REPO and REFINERY_PYTHON from the
environment. The run is `python -m pipeline.launch`, started as an argument list (no shell).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta

from airflow.sdk import Asset, Variable, dag, get_current_context, task

REPO = os.environ.get("REFINERY_REPO", "/opt/refinery")
PYTHON = os.environ.get("REFINERY_PYTHON", sys.executable)
CURATED = Asset(name="refinery_curated", uri="file:///refinery/curated")
CONFIG_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_./-]*\.ya?ml$"


@dag(
    dag_id="refinery_curation",
    description="Daily curation run of a Refinery config",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["refinery"],
)
def refinery_curation() -> None:
    @task(outlets=[CURATED])
    def run_pipeline() -> str:
        config = Variable.get("refinery_config", default="configs/demo.yaml")
        if not re.fullmatch(CONFIG_PATTERN, config) or ".." in config:
            raise ValueError(f"refinery_config {config!r} is not a config path in the checkout")
        out = os.path.join(Variable.get("refinery_output_root", default="/tmp/refinery"),
                           get_current_context()["ds"])
        argv = [PYTHON, "-m", "pipeline.launch", f"--config={config}", f"--output_dir={out}",
                f"--runner={Variable.get('refinery_runner', default='DirectRunner')}"]
        subprocess.run(argv, cwd=REPO, check=True)
        return out

    run_pipeline()


refinery_curation()
