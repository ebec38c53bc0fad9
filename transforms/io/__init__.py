"""io stage family."""
