"""llm stage family."""
