"""Dataset release build: run the release config, check what it wrote, publish a version.

Manually triggered with params {version, config}. Only wiring: the run is `python -m
pipeline.launch`; checking and publishing are pipeline.release functions."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Param

REPO = os.environ.get("REFINERY_REPO", "/opt/refinery")
OUT = "{{ var.value.get('refinery_output_root', '/tmp/refinery') }}/release-{{ params.version }}"


def _check(out_dir: str) -> dict:
    from pipeline.release import check_release

    return check_release(out_dir)


def _publish(out_dir: str, releases_dir: str, version: str) -> str:
    from pipeline.release import publish_release

    return publish_release(out_dir, releases_dir, version)


with DAG(
    dag_id="refinery_release",
    description="Build, check and publish a Refinery dataset release",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"version": Param("v0", type="string"),
            "config": Param("configs/release.yaml", type="string")},
    tags=["refinery", "release"],
) as dag:
    build = BashOperator(
        task_id="build",
        bash_command=(f"cd {REPO} && python -m pipeline.launch --config={{{{ params.config }}}}"
                      f" --output_dir={OUT}"
                      " --runner={{ var.value.get('refinery_runner', 'DirectRunner') }}"),
    )
    check = PythonOperator(task_id="check", python_callable=_check, op_args=[OUT])
    publish = PythonOperator(
        task_id="publish",
        python_callable=_publish,
        op_args=[OUT, "{{ var.value.get('refinery_releases', '/tmp/refinery/releases') }}",
                 "{{ params.version }}"],
    )
    build >> check >> publish
