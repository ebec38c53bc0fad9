"""Entry point for schedulers that launch a Python file with `--flag=value` options
(Airflow's BeamRunPythonPipelineOperator): `python -m pipeline.launch --config=C
[--output_dir=D] [--set=k=v ...] [Beam options]` is `refinery run C --out D --set ...`."""

from __future__ import annotations

import argparse
import sys

from pipeline.cli import main as cli_main


def to_cli_args(argv: list[str]) -> list[str]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--config", required=True)
    parser.add_argument("--output_dir")
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--input", action="append", default=[])
    known, beam_args = parser.parse_known_args(argv)
    args = ["run", known.config]
    if known.output_dir:
        args += ["--out", known.output_dir]
    for s in known.set:
        args += ["--set", s]
    for i in known.input:
        args += ["--input", i]
    return args + beam_args


def main(argv: list[str] | None = None) -> int:
    return cli_main(to_cli_args(list(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    raise SystemExit(main())
