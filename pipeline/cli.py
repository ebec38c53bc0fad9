"""Command line: `refinery run | validate | ingest | tag-utility | config-reference`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pipeline.config import ConfigError, RunConfig, load_config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refinery", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a config end to end (extra --flags go to Beam)")
    run.add_argument("config")
    run.add_argument("--input", action="append", default=[], help="replaces the config's sources")
    run.add_argument("--out", help="output directory (run.output_dir)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override any config value, e.g. --set emit.num_shards=4")
    run.add_argument("--runner", help="Beam runner (beam.runner)")

    val = sub.add_parser("validate", help="check a config; list every problem")
    val.add_argument("config")
    val.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    val.add_argument("--input", action="append", default=[])

    ing = sub.add_parser("ingest", help="detect formats, normalize and emit canonical shards")
    ing.add_argument("paths", nargs="+")
    ing.add_argument("--out", required=True)
    ing.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    tu = sub.add_parser("tag-utility", help="tag the config's sources with the TAG-INSTRUCT "
                        "tagger and write the tag utility table (stages.tag_instruct.utility_path)")
    tu.add_argument("config")
    tu.add_argument("--input", action="append", default=[], help="replaces the config's sources")
    tu.add_argument("--out", help="table path (default: stages.tag_instruct.utility_path)")
    tu.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("config-reference", help="print the config reference (Markdown)")
    return p


def _load(config: str | None, args: argparse.Namespace, inputs: list[str]) -> RunConfig:
    overrides = list(args.set)
    if getattr(args, "runner", None):
        overrides.append(f"beam.runner={args.runner}")
    return load_config(config, overrides, inputs or None, getattr(args, "out", None))


def _run(cfg: RunConfig, beam_args: list[str]) -> int:
    from pipeline.run import RunAborted, run_config
    from transforms.io.plan import SourceError

    try:
        result = run_config(cfg, beam_args)
    except (RunAborted, SourceError) as e:
        print(f"refinery: {e}", file=sys.stderr)
        return 3
    m = result.manifest
    print(json.dumps({"conservation": m["conservation"], "outputs": m["counts"]["outputs"]}))
    print(f"outputs in {result.out_dir}: sft/ preference/ rejected/ deadletter/ README.md "
          "manifest.json report.html")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    args, rest = _parser().parse_known_args(argv)
    if rest and args.command != "run":
        print(f"refinery {args.command}: unknown arguments {rest}", file=sys.stderr)
        return 2
    try:
        if args.command == "config-reference":
            from pipeline.reference import config_reference

            print(config_reference(), end="")
            return 0
        if args.command == "validate":
            cfg = _load(args.config, args, args.input)
            print(f"{args.config}: valid (config hash {cfg.config_hash()[:16]})")
            return 0
        if args.command == "tag-utility":
            from transforms.tag_instruct.utility_run import run_tag_utility

            cfg = load_config(args.config, args.set, args.input or None)
            if not (args.out or cfg.stages.tag_instruct.utility_path):
                print("refinery tag-utility: give --out or stages.tag_instruct.utility_path",
                      file=sys.stderr)
                return 2
            print(json.dumps(run_tag_utility(cfg, args.out)))
            return 0
        if args.command == "ingest":
            cfg = _load(None, args, args.paths)
            return _run(cfg, [])
        cfg = _load(args.config, args, args.input)
        return _run(cfg, rest)
    except ConfigError as e:
        where = getattr(args, "config", None) or "config"
        print(f"{where}: {len(e.problems)} problem(s)", file=sys.stderr)
        for line in e.problems:
            print(f"  {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
