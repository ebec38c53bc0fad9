"""`refinery release {build,check,diff,publish,list}`: releases without Airflow.

Every command prints one JSON object (stdout) and exits 0, or prints the problem (stderr) and
exits 3 (a release check or publish refused) or 2 (bad arguments).
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
    pub = steps.add_parser("publish", help="check a build and publish it as a version")
    pub.add_argument("out")
    pub.add_argument("--releases", required=True)
    pub.add_argument("--version", required=True, help="v1, v2.1, ... or auto")
    pub.add_argument("--allow-schema-change", action="store_true")
    pub.add_argument("--checked", help="the check step's JSON answer (file): publish without "
                     "checking again")
    ls = steps.add_parser("list", help="list published releases")
    ls.add_argument("--releases", required=True)


def _read_checked(path: str) -> dict[str, Any]:
    from pipeline.release import ReleaseError
    from transforms.io.files import read_json

    try:
        checked = read_json(path)
    except (OSError, ValueError) as e:
        raise ReleaseError(f"--checked {path}: not a check result ({e})") from e
    if not isinstance(checked, dict) or "rows" not in checked or "config_hash" not in checked:
        raise ReleaseError(f"--checked {path}: not a check result (needs rows, config_hash)")
    return checked


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipeline import release_flow as flow

    try:
        if args.step == "build":
            result: Any = flow.build(args.config, args.out, args.releases, args.set, beam_args)
        elif args.step == "check":
            result = flow.check(args.out, args.releases, args.allow_schema_change)
        elif args.step == "diff":
            result = flow.diff(args.out, args.releases)
        elif args.step == "publish":
            flow.resolve_version(args.releases, args.version)  # a bad version fails first
            if args.checked:
                checked = _read_checked(args.checked)
            else:
                checked = flow.check(args.out, args.releases, args.allow_schema_change)
                flow.diff(args.out, args.releases)
            result = {"published": flow.publish(args.out, args.releases, args.version, checked)}
        else:
            result = flow.listing(args.releases)
    except flow.ReleaseError as e:
        print(f"refinery release {args.step}: {e}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0
