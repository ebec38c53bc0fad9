"""length_filter: the example stage of docs/DEVELOPING.md."""
