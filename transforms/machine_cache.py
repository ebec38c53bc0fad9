"""This machine's cache folder for derived files that are costly to rebuild and never data:
the embedding model's ONNX export, the report's Vega runtime bundle.

`$REFINERY_CACHE`, else `$XDG_CACHE_HOME/refinery`, else `~/.cache/refinery`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def machine_cache_dir(*parts: str) -> Path:
    base = os.environ.get("REFINERY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "refinery")
    return Path(base, *parts)


def cached_text(path: Path, build: Callable[[], str]) -> str:
    """The text in `path`, built by `build()` and stored there (atomically) when it is missing.
    A cache that cannot be read or written is skipped: the text is built."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    text = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError:
        pass
    return text
