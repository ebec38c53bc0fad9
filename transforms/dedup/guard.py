"""Report guard of the dedup stage (ours): the largest clusters with a few sample members, and
a warning for every cluster larger than `warn_cluster_size` rows. One very large cluster is
the usual sign that near dedup merged distinct rows that share a template."""

from __future__ import annotations

from typing import Any

SAMPLES = 3
TOP = 5


def cluster_guard(clusters: list[dict[str, Any]], warn_size: int, stage: str = "dedup"
                  ) -> dict[str, Any]:
    """From the report's clusters (largest first): {"largest": [{keeper, size, reasons,
    sample}], "warnings": [text]}; `sample` = the keeper and up to SAMPLES - 1 removed ids."""
    largest = [{"keeper": c["keeper"], "size": c["size"], "reasons": c["reasons"],
                "sample": c["members"][:SAMPLES]} for c in clusters[:TOP]]
    warnings = [f"{stage}: a cluster of {c['size']} rows (keeper {c['keeper']}) is larger than "
                f"warn_cluster_size={warn_size}; check that its rows are true duplicates and not "
                f"distinct rows sharing a template (sample: {', '.join(c['members'][:SAMPLES])})"
                for c in clusters if warn_size and c["size"] > warn_size]
    return {"largest": largest, "warnings": warnings}


def manifest_warnings(manifest: dict[str, Any]) -> list[str]:
    """The guard's warnings in a run manifest (for the terminal)."""
    reports = (manifest.get("reports") or {}).get("dedup") or []
    return [w for r in (reports if isinstance(reports, list) else [reports])
            for w in (r.get("guard") or {}).get("warnings", [])]
