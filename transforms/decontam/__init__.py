"""decontam stage family."""
