"""Beam runner plumbing: pipeline options, local-runner fixes, stage timings."""
