"""The vectorized signals equal the per-record reference on a sample of the bench data
(GSM8K train + Alpaca subset from ../shared/evaldata)."""

from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path

from schemas.records import examples_to_batch
from transforms.quality.reference import record_signals
from transforms.quality.signals import compute_signals

BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_signals_equal_reference_on_bench_sample(evaldata_dir: Path) -> None:
    rows = _bench_module().load_rows(evaldata_dir)
    sample = random.Random(0).sample(rows, 600)
    arrays = compute_signals(examples_to_batch(sample))
    mismatches = []
    for i, row in enumerate(sample):
        ref = record_signals(row["messages"])
        for name, arr in arrays.items():
            got, want = arr[i].as_py(), ref[name]
            ok = math.isclose(got, want, abs_tol=1e-12) if isinstance(want, float) else got == want
            if not ok:
                mismatches.append((row["id"], name, got, want))
    assert mismatches == []
    # the sample exercises the repetition and truncation paths, not only zeros
    assert any(v > 0 for v in arrays["q_dup5gram_frac"].to_pylist())
    assert any(arrays["q_no_terminal_punct"].to_pylist())
