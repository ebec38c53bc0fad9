"""`refinery tag-utility CONFIG`: the driver of the tagging job whose graph is
transforms/tag_instruct/utility_run.py (tag a corpus, write the utility table)."""

from __future__ import annotations

import dataclasses
from typing import Any

import apache_beam as beam

from pipeline.run import make_context
from pipeline.runner.options import pipeline_options
from transforms.io.files import exists, read_json
from transforms.tag_instruct import core
from transforms.tag_instruct.utility_run import build_tag_utility


def run_tag_utility(run_cfg: Any, out: str | None = None,
                    extra_args: list[str] | None = None) -> dict[str, Any]:
    """Run the tagging pipeline; returns the summary written next to the table."""
    path = out or run_cfg.stages.tag_instruct.utility_path
    if not path:
        raise ValueError("no table path: set stages.tag_instruct.utility_path or pass out")
    if out is None and run_cfg.stages.tag_instruct.require_references and exists(path):
        raise ValueError(f"{path} is this config's reference table: pass out (--out) to "
                         "write a new one instead of overwriting it")
    # the stage's roles apply even when the stage itself is not enabled in this config
    ctx = make_context(run_cfg)
    ctx = dataclasses.replace(ctx, roles={**ctx.roles,
                                          core.STAGE: run_cfg.stages.tag_instruct.roles})
    with beam.Pipeline(options=pipeline_options(run_cfg.beam, extra_args)) as p:
        build_tag_utility(p, run_cfg, ctx, path)
    return read_json(f"{path}.summary.json")
