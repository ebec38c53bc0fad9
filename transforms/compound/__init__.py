"""compound stage family."""
