"""Lets Beam ship Refinery to remote workers: `--setup_file ./setup.py` (Dataflow, Flink, Spark).
Everything is configured in pyproject.toml; Beam runs `python setup.py sdist` and installs the
result on each worker."""

from setuptools import setup

setup()
