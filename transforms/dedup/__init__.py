"""dedup stage family."""
