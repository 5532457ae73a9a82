"""Build plans: the `.fplan` document, pure edits, recomputation through the engine, files."""
