"""embed stage family."""
