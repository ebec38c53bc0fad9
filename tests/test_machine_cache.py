"""transforms/machine_cache.py: derived files built once per machine (the report's Vega bundle
costs seconds per process to build), and a cache that cannot be written never fails a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.report import charts
from transforms.machine_cache import cached_text, machine_cache_dir


def test_cache_dir_follows_refinery_cache_then_xdg(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.delenv("REFINERY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert machine_cache_dir("vega") == tmp_path / "xdg" / "refinery" / "vega"
    monkeypatch.setenv("REFINERY_CACHE", str(tmp_path / "mine"))
    assert machine_cache_dir("onnx", "x") == tmp_path / "mine" / "onnx" / "x"


def test_text_is_built_once_then_read(tmp_path: Path) -> None:
    built = []

    def build() -> str:
        built.append(1)
        return "bundle ✓"

    path = tmp_path / "a" / "b.js"
    assert cached_text(path, build) == "bundle ✓"
    assert cached_text(path, build) == "bundle ✓"
    assert len(built) == 1 and path.read_text(encoding="utf-8") == "bundle ✓"
    assert [p.name for p in path.parent.iterdir()] == ["b.js"]  # no temp file left


def test_an_unwritable_cache_still_gives_the_text(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert cached_text(blocker / "b.js", lambda: "built") == "built"
    assert cached_text(blocker / "b.js", lambda: "again") == "again"


def test_the_report_runtime_is_bundled_once_per_machine(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    import vl_convert

    monkeypatch.setenv("REFINERY_CACHE", str(tmp_path))
    charts.runtime.cache_clear()
    try:
        first = charts.runtime()
        (stored,) = (tmp_path / "vega").iterdir()
        assert stored.read_text(encoding="utf-8") == first and "refineryChart" in first

        def no_bundling(**_: object) -> str:
            raise AssertionError("bundled again")

        monkeypatch.setattr(vl_convert, "javascript_bundle", no_bundling)
        charts.runtime.cache_clear()  # a new process
        assert charts.runtime() == first
    finally:
        charts.runtime.cache_clear()
