"""The store tests use the database fixtures of ``tests/db_fixtures.py`` (loaded globally)."""

from tests.db_fixtures import T0

__all__ = ["T0"]
