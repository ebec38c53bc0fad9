"""Hypothesis sizes for the suite: the full counts locally, a fifth of them (at least ten) in CI
(CI=true), where tests/conftest.py also loads the small `ci` profile."""

from __future__ import annotations

import os

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def examples(n: int) -> int:
    """max_examples for a test that asks for `n` locally."""
    return max(10, n // 5) if CI else n
