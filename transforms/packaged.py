"""Models that ship inside PyPI packages (offline): where an installed package's files are."""

from __future__ import annotations

import importlib.util
from pathlib import Path  # local-only: files installed inside a pip package (site-packages)


def package_dir(package: str, what: str) -> Path:
    """The directory of the installed `package`; a clear error naming the pip package when it
    is missing (`what` says what needed it)."""
    # local-only: an installed package's folder in site-packages
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{what} needs the package {package.replace('_', '-')} (installed "
                           "with --no-deps by `make install`)")
    return Path(next(iter(spec.submodule_search_locations)))
