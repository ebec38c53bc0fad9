"""Issue #13 fuzz test: random input files (layouts, formats, encodings, BOMs, compression,
nesting, field sizes, malformed rows, truncation) never crash a run; the exit code is the
documented one (0 published, 3 aborted with a message); and rows read == out + rejected +
dead letter, counted from the files the run wrote. Clean files must be read completely."""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability._helpers import counts_from_files, run_cli, run_dir_of

LAYOUTS = {"alpaca": ("instruction", "output"), "qa": ("question", "answer"),
           "dolly": ("instruction", "response")}
ENCODINGS = ("utf-8", "utf-8-bom", "utf-16", "latin-1")
COMPRESSIONS = (None, "gzip", "zstd", "bz2")
NEST = "@@nested@@"


@dataclass
class FileSpec:
    fmt: str
    layout: str
    rows: int
    encoding: str
    compression: str | None
    nesting: int
    big_field: int
    malformed: int
    truncate: float | None

    @property
    def clean(self) -> bool:
        """A file every row of which must come out (latin-1 is clean when ASCII-only: it is)."""
        return not self.malformed and self.truncate is None and self.rows > 0 and (
            self.nesting < 200 or self.fmt == "csv")


file_specs = st.builds(
    FileSpec, fmt=st.sampled_from(("jsonl", "json", "csv")), layout=st.sampled_from(list(LAYOUTS)),
    rows=st.integers(0, 25), encoding=st.sampled_from(ENCODINGS),
    compression=st.sampled_from(COMPRESSIONS), nesting=st.sampled_from((0, 5, 150, 5000)),
    big_field=st.sampled_from((0, 0, 200_000)), malformed=st.integers(0, 3),
    truncate=st.one_of(st.none(), st.floats(0.05, 0.95)))


def _records(spec: FileSpec, index: int) -> list[dict]:
    first, second = LAYOUTS[spec.layout]
    out = []
    for i in range(spec.rows):
        rec = {first: f"File {index} question {i}?", second: f"Answer {i} of file {index}."}
        if i == 0 and spec.big_field:
            rec[second] = "long " * (spec.big_field // 5)
        if i == 1 and spec.nesting and spec.fmt != "csv":
            rec["extra"] = NEST  # replaced by the nested text after dumping
        out.append(rec)
    return out


def _text(spec: FileSpec, records: list[dict]) -> str:
    first, second = LAYOUTS[spec.layout]
    if spec.fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([first, second])
        w.writerows([[r[first], r[second]] for r in records])
        w.writerows([["only one field"]] * spec.malformed)
        return buf.getvalue()
    if spec.fmt == "json":
        return json.dumps(records)
    lines = [json.dumps(r) for r in records] + ["{not json"] * spec.malformed
    return "\n".join(lines) + "\n"


def write_file(directory: Path, index: int, spec: FileSpec) -> Path:
    data = _text(spec, _records(spec, index)).replace(
        json.dumps(NEST), "[" * spec.nesting + "]" * spec.nesting)
    encoded = (codecs.BOM_UTF8 + data.encode() if spec.encoding == "utf-8-bom"
               else data.encode(spec.encoding))
    if spec.truncate is not None:
        encoded = encoded[: int(len(encoded) * spec.truncate)]
    if spec.compression == "gzip":
        encoded = gzip.compress(encoded, mtime=0)
    elif spec.compression == "zstd":
        encoded = zstandard.ZstdCompressor().compress(encoded)
    elif spec.compression == "bz2":
        encoded = bz2.compress(encoded)
    path = directory / f"f{index}.{spec.fmt}"
    path.write_bytes(encoded)
    return path


@pytest.mark.slow
@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(specs=st.lists(file_specs, min_size=1, max_size=3))
def test_random_files_never_crash_and_every_row_is_accounted_for(
        specs: list[FileSpec], tmp_path_factory: pytest.TempPathFactory, capsys) -> None:
    base = tmp_path_factory.mktemp("fuzz")
    inputs = base / "in"
    inputs.mkdir()
    paths = [write_file(inputs, i, s) for i, s in enumerate(specs)]
    out = base / "out"
    code, err = run_cli(capsys, paths, out, "--set", "run.allow_empty=true")
    assert code in (0, 3), err
    assert "Traceback" not in err
    run_dir = run_dir_of(out)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    counts = counts_from_files(run_dir)
    assert manifest["conservation"]["records_in"] == counts["out"] + counts["rejected"] + counts["dead"]
    files = {f["path"]: f for f in manifest["inputs"]}
    assert counts["file_errors"] == sum(f["file_errors"] for f in files.values())
    for path, spec in zip(paths, specs, strict=True):
        if spec.clean:  # a clean file is read completely, whatever its encoding or compression
            assert files[str(path)]["file_errors"] == 0, (spec, err)
            assert files[str(path)]["rows_read"] == spec.rows, spec
    if code == 0:
        assert (out / "manifest.json").read_bytes() == (run_dir / "manifest.json").read_bytes()
    else:
        said = [line for line in err.splitlines() if not line.startswith("[refinery] ")]
        assert said[0].startswith("refinery: aborted") and not (out / "manifest.json").exists()
    if all(s.clean and s.nesting < 200 and s.encoding != "latin-1" for s in specs):
        assert code == 0, err
    shutil.rmtree(base)
