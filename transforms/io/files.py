"""Writing whole files through Beam's FileSystems (local paths, gs://, s3://)."""

from __future__ import annotations

import json
from typing import Any

from apache_beam.io.filesystems import FileSystems


def write_bytes(path: str, data: bytes) -> None:
    parent = path.rsplit("/", 1)[0]
    if parent and not FileSystems.exists(parent):
        FileSystems.mkdirs(parent)
    with FileSystems.create(path) as f:
        f.write(data)


def write_json(path: str, value: Any) -> None:
    write_bytes(path, json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False,
                                 default=str).encode() + b"\n")
