"""What a run leaves on disk: storage helpers (any filesystem), local-disk primitives, publishing."""
