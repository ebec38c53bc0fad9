"""Beam pipeline options from the config's `beam` block plus command-line pass-through."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import BeamConfig
from pipeline.runner.local_runner import prepare_local_runner


def pipeline_options(beam_cfg: BeamConfig, extra_args: list[str] | None = None,
                     shuffles_rows: bool = True) -> PipelineOptions:
    """Config values first; `extra_args` (e.g. --project, --region for Dataflow) override.
    Also applies the local runner's fixes (pipeline/runner/local_runner.py; `shuffles_rows`
    False for a pipeline without stages)."""
    prepare_local_runner(shuffles_rows)
    kwargs = dict(beam_cfg.options)
    kwargs["runner"] = beam_cfg.runner
    if beam_cfg.runner in ("DirectRunner", "direct"):
        kwargs["direct_running_mode"] = beam_cfg.direct_running_mode
        kwargs["direct_num_workers"] = beam_cfg.direct_num_workers
    return PipelineOptions(flags=list(extra_args or []), **kwargs)


def _beam_option_classes() -> list[type]:
    classes, todo = [], [PipelineOptions]
    while todo:
        cls = todo.pop()
        classes.append(cls)
        todo.extend(cls.__subclasses__())
    return classes


def unknown_flags(args: list[str]) -> list[str]:
    """The flags in `args` that no Beam pipeline option (of any runner) defines."""
    import argparse

    import apache_beam.options.pipeline_options  # noqa: F401 - registers every runner's options

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False,
                                     conflict_handler="resolve")  # options declared twice
    for cls in _beam_option_classes():
        cls._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(args)
    return [a for a in unknown if a.startswith("-")]
