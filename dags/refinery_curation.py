"""Scheduled curation: run a Refinery config every day into a dated output directory, then
announce the result as the `refinery_curated` Asset (which schedules the release DAG).

Only wiring; setup in docs/airflow.md. Settings: Airflow Variables refinery_config (relative to
the checkout, or absolute), refinery_output_root and refinery_runner (read when the task
runs); REFINERY_REPO (default: the checkout this file is in) and REFINERY_PYTHON from the
environment. The run is `python -m pipeline.launch`, started as an argument list (no shell);
a bad config fails the task at once, a crash is retried (see refinery_task.py).
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta

from airflow.sdk import Asset, Variable, dag, get_current_context, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refinery_task import check_config, run_refinery

CURATED = Asset(name="refinery_curated", uri="file:///refinery/curated")


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
        config = check_config(Variable.get("refinery_config", default="configs/demo.yaml"))
        out = os.path.join(Variable.get("refinery_output_root", default="/tmp/refinery"),
                           get_current_context()["ds"])
        run_refinery(["pipeline.launch", f"--config={config}", f"--output_dir={out}",
                      f"--runner={Variable.get('refinery_runner', default='DirectRunner')}"])
        return out

    run_pipeline()


refinery_curation()
