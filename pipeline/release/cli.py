"""`refinery release {build,check,diff,publish,list}`: releases without Airflow.

Each command prints what a person reads (build: the run's summary table; check: a PASS or FAIL
line; diff: the explained summary; publish: the version written) and exits 0, or prints the
problem (stderr) and exits 3 (a release check or publish refused) or 2 (bad arguments or
config). `--json` prints the step's JSON answer instead (what the release DAG reads); check and
diff then print their line and summary on stderr, so the DAG's task log shows them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    rel = sub.add_parser("release", help="build, check, diff, publish and list dataset releases")
    steps = rel.add_subparsers(dest="step", required=True)
    b = steps.add_parser("build", help="run a config as a release build")
    b.add_argument("config")
    b.add_argument("--out", required=True, help="build directory")
    b.add_argument("--releases", required=True, help="releases directory")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    for name, text in (("check", "check a build"), ("diff", "diff a build with the latest release")):
        p = steps.add_parser(name, help=text)
        p.add_argument("out")
        p.add_argument("--releases", required=True)
        if name == "check":
            p.add_argument("--allow-schema-change", action="store_true")
        else:
            p.add_argument("--examples", type=int, default=5, metavar="N",
                           help="example rows per reason in the terminal summary")
    pub = steps.add_parser("publish", help="check a build and publish it as a version")
    pub.add_argument("out")
    pub.add_argument("--releases", required=True)
    pub.add_argument("--version", required=True, help="v1, v2.1, ... or auto")
    pub.add_argument("--allow-schema-change", action="store_true")
    pub.add_argument("--force", action="store_true",
                     help="publish even if the build equals the latest release")
    pub.add_argument("--checked", help="the check step's JSON answer (file): publish without "
                     "checking again")
    ls = steps.add_parser("list", help="list published releases")
    ls.add_argument("--releases", required=True)
    for p in (b, pub, ls, *(steps.choices[n] for n in ("check", "diff"))):
        p.add_argument("--json", action="store_true", help="print the JSON answer instead")


def _read_checked(path: str) -> dict[str, Any]:
    from pipeline.release.check import ReleaseError
    from transforms.io.files import read_json

    try:
        checked = read_json(path)
    except (OSError, ValueError) as e:
        raise ReleaseError(f"--checked {path}: not a check result ({e})") from e
    if not isinstance(checked, dict) or "rows" not in checked or "config_hash" not in checked:
        raise ReleaseError(f"--checked {path}: not a check result (needs rows, config_hash)")
    return checked


def _text(step: str, result: Any, args: argparse.Namespace) -> str:
    """What a person reads for each step."""
    if step == "build":
        from pipeline.release.check import read_manifest
        from pipeline.report.console import summary_table

        return summary_table(read_manifest(result["out_dir"]), result["out_dir"])
    if step == "check":
        rows = ", ".join(f"{d}/{s} {n}" for d, splits in result["rows"].items()
                         for s, n in splits.items())
        changes = (f"; schema changed (declared): {result['schema_changes']}"
                   if result["schema_changes"] else "")
        return f"PASS release check of {args.out}: {rows}{changes}"
    if step == "diff":
        from pipeline.release.diff import diff_summary

        return diff_summary(result, args.examples)
    if step == "publish":
        return f"published {result['published']}"
    lines = [f"{r['version']:<8} {r['published_at']}  rows "
             + ", ".join(f"{d} {sum(s.values())}" for d, s in r["rows"].items())
             + ("  (latest)" if r["latest"] else "") for r in result]
    return "\n".join(lines) or "no releases yet"


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline.release import flow

    try:
        if args.step == "build":
            result: Any = flow.build(args.config, args.out, args.releases, args.set, beam_args)
        elif args.step == "check":
            result = flow.check(args.out, args.releases, args.allow_schema_change)
        elif args.step == "diff":
            result = flow.diff(args.out, args.releases)
        elif args.step == "publish":
            flow.resolve_version(args.releases, args.version)  # a bad version fails first
            if args.version == "auto" and not args.force:
                flow.refuse_unchanged(args.out, args.releases)
            if args.checked:
                checked = _read_checked(args.checked)
            else:
                checked = flow.check(args.out, args.releases, args.allow_schema_change)
                flow.diff(args.out, args.releases)
            result = {"published": flow.publish(args.out, args.releases, args.version, checked,
                                                args.force)}
        else:
            result = flow.listing(args.releases)
    except flow.ReleaseError as e:
        if args.step == "check" and not args.json:
            print(f"FAIL release check of {args.out}: {e}")
        print(f"refinery release {args.step}: {e}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
        if args.step in ("check", "diff"):  # the line a person reads, for a scheduler's log
            print(_text(args.step, result, args), file=sys.stderr)
    else:
        print(_text(args.step, result, args))
    return 0
