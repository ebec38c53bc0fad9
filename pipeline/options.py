"""Beam pipeline options from the config's `beam` block plus command-line pass-through."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.config import BeamConfig


def pipeline_options(beam_cfg: BeamConfig, extra_args: list[str] | None = None) -> PipelineOptions:
    """Config values first; `extra_args` (e.g. --project, --region for Dataflow) override."""
    kwargs = dict(beam_cfg.options)
    kwargs["runner"] = beam_cfg.runner
    if beam_cfg.runner in ("DirectRunner", "direct"):
        kwargs["direct_running_mode"] = beam_cfg.direct_running_mode
        kwargs["direct_num_workers"] = beam_cfg.direct_num_workers
    return PipelineOptions(flags=list(extra_args or []), **kwargs)
