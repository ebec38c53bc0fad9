"""Scheduled curation: run a Refinery config every day into a dated output directory.

Only wiring. Settings: Airflow Variables refinery_config, refinery_output_root and
refinery_runner (read when the task runs) and REFINERY_REPO (the checkout on the workers,
from the environment). The run is launched with `python -m pipeline.launch`; the Beam
provider's BeamRunPythonPipelineOperator would do the same but, in provider 6.3, cannot be
constructed without the Google provider installed."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

REPO = os.environ.get("REFINERY_REPO", "/opt/refinery")
LAUNCH = (
    f"cd {REPO} && python -m pipeline.launch"
    " --config={{ var.value.get('refinery_config', 'configs/demo.yaml') }}"
    " --output_dir={{ var.value.get('refinery_output_root', '/tmp/refinery') }}/{{ ds }}"
    " --runner={{ var.value.get('refinery_runner', 'DirectRunner') }}"
)

with DAG(
    dag_id="refinery_curation",
    description="Daily curation run of a Refinery config",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(minutes=10)},
    tags=["refinery"],
) as dag:
    BashOperator(task_id="run_pipeline", bash_command=LAUNCH)
