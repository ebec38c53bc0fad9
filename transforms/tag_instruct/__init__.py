"""tag_instruct stage family."""
