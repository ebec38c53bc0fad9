"""What both Refinery DAGs share (no DAG here): where the checkout is, how a Refinery command
runs inside a task, and which failures a retry can fix.

A command runs as an argument list (no shell) in the checkout; its stderr and output reach the
task log line by line as they come. Exit 2 (bad arguments or config) and 3 (a run aborted, a
release check or publish refused) are deterministic: the task fails at once, without retries
(AirflowFailException). Any other failure (killed, out of memory, a crash) may be transient
and is retried.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

# The checkout this DAG file lives in (dags/ is at its top), unless REFINERY_REPO says otherwise.
REPO = os.environ.get("REFINERY_REPO") or str(Path(__file__).resolve().parents[1])
PYTHON = os.environ.get("REFINERY_PYTHON") or sys.executable
# relative to the checkout, or absolute; no shell metacharacters, no `..`
CONFIG_PATTERN = r"^/?[A-Za-z0-9_][A-Za-z0-9_./-]*\.ya?ml$"
DETERMINISTIC = (2, 3)
log = logging.getLogger("refinery")


def check_config(config: str) -> str:
    if not re.fullmatch(CONFIG_PATTERN, config) or ".." in config.split("/"):
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"refinery config {config!r} is not a .yaml path (relative "
                                   "to the checkout, or absolute; no `..`, no spaces)")
    return config


def run_refinery(argv: list[str], repo: str | None = None) -> str:
    """Run `PYTHON -m ARGV...` in the checkout; log its stderr and stdout into the task log
    as they come and return stdout. Raises AirflowFailException on exit 2 or 3 (no retry),
    RuntimeError on any other failure (retried)."""
    from airflow.sdk.exceptions import AirflowFailException

    proc = subprocess.Popen([PYTHON, "-m", *argv], cwd=repo or REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err: list[str] = []

    def pump() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            err.append(line)
            log.info("%s", line.rstrip())

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    out = proc.stdout.read()  # type: ignore[union-attr]
    code = proc.wait()
    reader.join()
    for line in out.splitlines():
        log.info("%s", line)
    if code == 0:
        return out
    tail = "".join(err[-40:]).strip() or out[-2000:]
    step = " ".join(a for a in argv[:4] if not a.startswith("-"))
    if code in DETERMINISTIC:
        raise AirflowFailException(f"{step} failed (exit {code}, not retried): {tail}")
    raise RuntimeError(f"{step} failed (exit {code}): {tail}")
