"""Alembic migration environment shipped inside the package (run programmatically on open)."""
