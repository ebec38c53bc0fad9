"""quality stage family."""
