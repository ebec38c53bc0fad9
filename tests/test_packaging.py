"""Workers get the code: `--setup_file ./setup.py` builds an sdist with every module, prompt
template and JSON Schema the stages load at run time."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_sdist_for_remote_workers_carries_code_templates_and_schemas(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    (archive,) = tmp_path.glob("refinery-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {p.relative_to(ROOT).as_posix() for pattern in ("*.py", "*.jinja", "*.json")
              for top in ("pipeline", "transforms", "schemas")
              for p in (ROOT / top).rglob(pattern) if "__pycache__" not in p.parts}
    assert wanted and wanted <= names, sorted(wanted - names)[:10]
