"""Releases of a finished run: checks, publishing a version, diffs, their HTML page, the CLI."""
