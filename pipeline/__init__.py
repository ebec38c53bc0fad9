"""The run: CLI, config, Beam graph, runner options, manifest, report."""
