"""Command line: `refinery run | validate | ingest | layouts | report | inspect | export |
release | review | tag-utility | eval | config-reference`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from pipeline.config import ConfigError, RunConfig, load_config
from pipeline.outputs import layout
from pipeline.report.console import quiet_startup
from transforms.redact import install_log_redaction, secret_env_names

# Commands that take Beam pipeline options after their own flags: `run` for the pipeline, the
# others for reading and writing object stores (e.g. --s3_endpoint_url, --s3_region_name).
BEAM_ARGS = ("run", "release", "report", "inspect", "export")
TAKE_OVER = ("use an --out holding files Refinery did not write (run.take_over): files under "
             "published names are moved to OUT/.displaced/, nothing is deleted")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("refinery")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "(not installed)"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refinery", description=__doc__)
    p.add_argument("--version", action="version", version=f"refinery {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a config end to end (extra --flags go to Beam)")
    run.add_argument("config")
    run.add_argument("--input", action="append", default=[], help="replaces the config's sources")
    run.add_argument("--out", help="output directory (run.output_dir)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override any config value, e.g. --set emit.num_shards=4")
    run.add_argument("--runner", help="Beam runner (beam.runner)")
    run.add_argument("--take-over", action="store_true", help=TAKE_OVER)

    val = sub.add_parser("validate", help="check a config; list every problem")
    val.add_argument("config")
    val.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    val.add_argument("--input", action="append", default=[])

    ing = sub.add_parser("ingest", help="detect formats, normalize and emit canonical shards")
    ing.add_argument("paths", nargs="+")
    ing.add_argument("--out", required=True)
    ing.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ing.add_argument("--take-over", action="store_true", help=TAKE_OVER)

    rep = sub.add_parser("report", help="(re)write OUT/report.html from a finished run "
                         "(extra --flags: Beam options for object stores)")
    rep.add_argument("out")

    ins = sub.add_parser("inspect", help="print sample rows of a finished run (extra --flags: "
                         "Beam options for object stores)")
    ins.add_argument("out")
    ins.add_argument("--dataset", default=layout.SFT, choices=layout.INSPECTABLE)
    ins.add_argument("--stage", help="rows of this stage (rejected/deadletter: by stage; "
                     "sft/preference: produced by it)")
    ins.add_argument("--reason", help="rejected rows with this reason")
    ins.add_argument("-n", type=int, default=5, help="number of rows (default 5)")
    ins.add_argument("--id", help="one row's whole path: source, stages and signals, parents, "
                     "models and prompts, where and why it was dropped")

    from pipeline.export.registry import EXPORTERS

    exp = sub.add_parser("export", help="write a finished run's datasets in a trainer's file "
                         "layout (extra --flags: Beam options for object stores)")
    exp.add_argument("out", help="output directory of a finished run")
    exp.add_argument("--format", required=True, choices=sorted(EXPORTERS),
                     help="; ".join(f"{k}: {v.about}" for k, v in sorted(EXPORTERS.items())))
    exp.add_argument("--dataset", action="append", dest="datasets", metavar="D",
                     help="dataset(s) to export (repeat; default: every dataset with rows)")
    exp.add_argument("--to", help="file (rise) or folder to write (default: OUT/export/<name>)")

    from pipeline.release.cli import add_parser as add_release_parser

    add_release_parser(sub)
    rev = sub.add_parser("review", help="export a run's synthesized items for human review, or "
                         "keep only the accepted ones")
    rev.add_argument("out", help="output directory of a finished run")
    rev.add_argument("--stage", required=True, choices=["compound"])
    what = rev.add_mutually_exclusive_group(required=True)
    what.add_argument("--export", metavar="JSONL", help="write the review file")
    what.add_argument("--apply", metavar="JSONL", help="read decisions; write accepted items")
    rev.add_argument("--to", help="where --apply writes (default: OUT/reviewed/STAGE)")
    tu = sub.add_parser("tag-utility", help="tag the config's sources with the TAG-INSTRUCT "
                        "tagger and write the tag utility table (stages.tag_instruct.utility_path)")
    tu.add_argument("config")
    tu.add_argument("--input", action="append", default=[], help="replaces the config's sources")
    tu.add_argument("--out", help="table path (default: stages.tag_instruct.utility_path)")
    tu.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    evl = sub.add_parser("eval", help="evaluate a model: `eval compound PATH...` answers "
                         "Compound-QA questions and judges them against the references")
    evl.add_argument("benchmark", choices=["compound"])
    evl.add_argument("paths", nargs="+", help="Compound-QA JSONL files or folders, or a run's "
                     "output directory (its synthesized items)")
    evl.add_argument("--config", help="YAML with a `compound_eval:` block")
    evl.add_argument("--llm", action="append", default=[], metavar="ROLE.KEY=VALUE",
                     help="candidate.model=..., judge.backend=openai, judge.base_url=...")
    evl.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="any other compound_eval field, e.g. examples=5")
    evl.add_argument("--limit", type=int, help="records per file")
    evl.add_argument("--out", help="report JSON (default: printed only)")
    sub.add_parser("config-reference", help="print the config reference (Markdown)")
    sub.add_parser("layouts", help="list the input layouts and the dataset presets")
    return p


def _report_or_inspect(args: argparse.Namespace) -> int:
    from pipeline.outputs.publish import published_dir
    from pipeline.report.inspect import InspectError, print_rows, sample_rows
    from pipeline.report.page import rewrite_report

    try:
        if args.command == "report":
            print(f"wrote {rewrite_report(args.out)}")
            return 0
        if args.id:
            from pipeline.report.lineage import RowNotFound, format_trace, trace

            try:
                print(format_trace(trace(published_dir(args.out), args.id)))
            except RowNotFound as e:
                raise InspectError(str(e)) from e
            return 0
        rows = sample_rows(published_dir(args.out), args.dataset, args.stage, args.reason, args.n)
    except (InspectError, FileNotFoundError) as e:
        print(f"refinery {args.command}: {e}", file=sys.stderr)
        return 2
    title = args.dataset + "".join(f" {k}={v}" for k, v in (("stage", args.stage),
                                                             ("reason", args.reason)) if v)
    print_rows(rows, title)
    return 0


def _load(config: str | None, args: argparse.Namespace, inputs: list[str]) -> RunConfig:
    overrides = list(args.set)
    if getattr(args, "runner", None):
        overrides.append(f"beam.runner={args.runner}")
    if getattr(args, "take_over", False):
        overrides.append("run.take_over=true")
    return load_config(config, overrides, inputs or None, getattr(args, "out", None))


def _run(cfg: RunConfig, beam_args: list[str]) -> int:
    from transforms import progress

    if progress.interval_s() > 0:  # Beam and the stages take a while to import
        print(f"[refinery] {cfg.run.name}: loading Apache Beam and the stages",
              file=sys.stderr, flush=True)
    from pipeline.run import RunAborted, RunRefused, run_config
    from transforms.io.plan import SourceError

    install_log_redaction(secret_env_names(cfg.model_dump(mode="json")))
    try:
        result = run_config(cfg, beam_args)
    except (RunAborted, SourceError) as e:
        from pipeline.report.inspect import printable

        print(f"refinery: {printable(str(e))}", file=sys.stderr)  # may quote row text
        _layout_hints(getattr(e, "deadletter", None))
        return 2 if isinstance(e, RunRefused) else 3
    _layout_hints(result.deadletter)
    from pipeline.report.console import summary_table, synthesis_notes

    for line in synthesis_notes(result.manifest).values():
        print(f"refinery: {line}", file=sys.stderr)
    print(summary_table(result.manifest, result.out_dir))
    from transforms.dedup.guard import manifest_warnings

    for line in manifest_warnings(result.manifest):
        print(f"refinery: warning: {line}", file=sys.stderr)
    return 0


def _layout_hints(deadletter: list[dict] | None) -> None:
    """Files whose rows had no known layout (from this run's dead-letter entries, of a
    published run or an aborted one): the fields seen and the fix, on the terminal."""
    if not deadletter:
        return
    from pipeline.report.inspect import printable
    from transforms.io.presets import layout_problems

    for line in layout_problems(deadletter):
        print(f"refinery: {printable(line)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    quiet_startup()
    args, rest = _parser().parse_known_args(argv)
    if rest and args.command not in BEAM_ARGS:
        print(f"refinery {args.command}: unknown arguments {rest}", file=sys.stderr)
        return 2
    if rest:
        from pipeline.runner.options import unknown_flags

        bad = unknown_flags(rest)
        if bad or not all(a.startswith("-") for a in rest[:1]):
            print(f"refinery {args.command}: unknown flag(s) {bad or rest[:1]}: neither a "
                  f"refinery flag (see refinery {args.command} --help) nor a Beam pipeline "
                  "option", file=sys.stderr)
            return 2
    if args.command in BEAM_ARGS and args.command != "run":
        from transforms.io.files import use_options

        use_options(rest)  # object-store endpoints and credentials for the driver's reads
    try:
        if args.command == "release":
            from pipeline.release.cli import run as run_release

            return run_release(args, rest)
        if args.command in ("report", "inspect"):
            return _report_or_inspect(args)
        if args.command == "export":
            from pipeline.export.registry import ExportError, export

            try:
                print(json.dumps(export(args.out, args.format, args.to, args.datasets)))
            except ExportError as e:
                print(f"refinery export: {e}", file=sys.stderr)
                return 2
            return 0
        if args.command == "config-reference":
            from pipeline.reference import config_reference

            print(config_reference(), end="")
            return 0
        if args.command == "layouts":
            from transforms.io.presets import describe

            print(describe(), end="")
            return 0
        if args.command == "review":
            from transforms.compound.review import run_review

            return run_review(args.out, args.export, args.apply, args.to)
        if args.command == "eval":
            from pipeline.compound_eval import load_eval_config
            from transforms.compound.evaluate_run import run_eval, summary

            cfg = load_eval_config(args.config, args.llm, args.limit, args.set)
            report = run_eval(args.paths, cfg, args.out)
            print(summary(report))
            print(json.dumps({k: report[k] for k in ("records", "overall", "failed")}))
            return 0
        if args.command == "validate":
            cfg = _load(args.config, args, args.input)
            from transforms.io.plan import missing_inputs

            if missing := missing_inputs(cfg.sources):
                raise ConfigError(missing)
            print(f"{args.config}: valid (config hash {cfg.config_hash()[:16]})")
            return 0
        if args.command == "tag-utility":
            from pipeline.tag_utility import run_tag_utility

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
