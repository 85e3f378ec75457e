"""Alembic migrations of the Waldstadt schema (run them through :mod:`store.migrate`)."""
