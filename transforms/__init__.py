"""Stage families: one composite PTransform per file, a pure core beside it."""
