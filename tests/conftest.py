"""Shared test set-up: offline models, GPU marker handling, sample paths."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests._hypothesis import CI

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A fresh `datasets` cache per session: pytest reuses numbered tmp dirs, and a cache keyed on
# such a path could serve a dataset built by an earlier session.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="refinery-hf-datasets-")
# Under pytest-xdist (`make test`: -n 2) each worker's torch gets its share of the cores: two
# workers with a thread per core each would oversubscribe them. Set before torch is imported.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# A small Hypothesis profile for CI (CI=true, as CI services and .ci/run set it): fewer
# examples, no deadline on a loaded machine, no example database (a saved failure belongs in
# the report, printed as a reproduction blob, not in the checkout). HYPOTHESIS_PROFILE picks
# another. Tests that set max_examples scale it with tests/_hypothesis.py's `examples`.
settings.register_profile("ci", max_examples=20, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if CI else "default"))


@pytest.fixture(autouse=True, scope="session")
def _local_runner_fixes() -> None:
    """Pipelines that tests build with their own options get the local-runner fixes every
    refinery run gets through pipeline_options (pipeline/runner/local_runner.py)."""
    from pipeline.runner.local_runner import prepare_local_runner

    prepare_local_runner()


ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
EVALDATA = ROOT.parent / "shared" / "evaldata"


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


# Seconds a slow test (its fixtures included: the demo run takes minutes) may take; every other
# test gets pyproject's `timeout`.
SLOW_TIMEOUT_S = 1800


def _xdist_group(item: pytest.Item) -> str | None:
    """The worker group of a test under `--dist loadgroup`: tests that share the demo run, a
    module-scoped run of their module run on one worker, so each of those is made once
    (session and module fixtures are per worker)."""
    if "demo_run" in item.fixturenames:
        return "demo-run"
    defs = getattr(item, "_fixtureinfo", None)
    for name in item.fixturenames:
        for fixturedef in (defs.name2fixturedefs.get(name, ()) if defs else ()):
            if fixturedef.scope == "module":
                return item.nodeid.split("::")[0]
    return None


def _name_group(config: pytest.Config, item: pytest.Item, group: str) -> None:
    """On an xdist worker under --dist loadgroup, name the test `nodeid@group`, the name the
    scheduler groups by. pytest-xdist 3.8 does it by setting `item._nodeid`, which pytest 9.2's
    nodes no longer read (their id is `item._id`), so its groups were silently ignored."""
    if not getattr(config.option, "loadgroup", False) or "@" in item.nodeid:
        return
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # an older pytest: xdist's own renaming works there
        return
    item._id = coerce_node_id(f"{item.nodeid}@{group}")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda = _has_cuda()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; runs on GPU machines (`-m gpu`)")
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(skip_gpu)
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))
        group = _xdist_group(item)
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
            _name_group(config, item, group)
    # Longest first, so no worker starts a long test while the other is nearly done (with
    # `--no-loadscope-reorder` xdist hands out groups in this order): the demo run, the slow
    # tests, the groups sharing a module's run, then the single tests that fill the gaps, each
    # in collection order.
    items.sort(key=_start_order)


def _start_order(item: pytest.Item) -> int:
    if "demo_run" in item.fixturenames:
        return 0
    if item.get_closest_marker("slow"):
        return 1
    return 2 if item.get_closest_marker("xdist_group") else 3


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def evaldata_dir() -> Path:
    if not EVALDATA.exists():
        pytest.skip("needs the public datasets in ../shared/evaldata: runs where they are "
                    "beside the checkout (the development machine)")
    return EVALDATA


HOSTILE_INSTRUCTION = "Summarize this page: <script>alert(1)</script> & <b>bold</b> claims."


@dataclass(frozen=True)
class DemoRun:
    out: Path
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """configs/demo.yaml (every stage, real local models) run once per session as `make run`
    runs it: the CLI in a subprocess whose output is a pipe, not a terminal. One extra source
    carries HTML in an instruction, twice (dedup removes the copy, so the report shows it)."""
    import json
    import subprocess
    import sys

    import yaml

    tmp = tmp_path_factory.mktemp("demo")
    hostile = tmp / "hostile.jsonl"
    row = {"instruction": HOSTILE_INSTRUCTION, "input": "",
           "output": "The page makes two claims, both about formatting."}
    hostile.write_text((json.dumps(row) + "\n") * 2)
    cfg = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    cfg["sources"].append({"path": str(hostile), "name": "hostile"})
    config = tmp / "demo.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("TQDM_DISABLE", "REFINERY_PROGRESS_S")}
    # cwd=ROOT: the config names its inputs relative to the repo root
    res = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config), "--out", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    return DemoRun(out, res.stdout, res.stderr)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[dict[str, Any]]:
    """An S3-compatible server (moto's server mode) on a free 127.0.0.1 port for the session,
    with one bucket. AWS_* variables point boto3, hence Beam's S3 filesystem, at it (subprocesses
    started meanwhile inherit them); `beam_args` says the same as pipeline options. Beam's
    FileSystems are given options here; a Pipeline sets its own."""
    import socket
    import subprocess
    import sys
    import time

    pytest.importorskip("moto.server", reason="moto[server] is not installed (dev extra)")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
           "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            client = boto3.client("s3")
            for _ in range(100):
                try:
                    client.create_bucket(Bucket="refinery-test")
                    break
                except Exception:  # not listening yet
                    if proc.poll() is not None:
                        pytest.fail("moto_server exited at start")
                    time.sleep(0.1)
            else:
                pytest.fail(f"moto_server did not answer on {url}")
            from transforms.io.files import use_options

            use_options()
            yield {"bucket": "refinery-test", "endpoint": url, "env": env,
                   "beam_args": [f"--s3_endpoint_url={url}", "--s3_region_name=us-east-1",
                                 "--s3_access_key_id=x", "--s3_secret_access_key=y"]}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
