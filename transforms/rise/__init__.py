"""rise stage family."""
