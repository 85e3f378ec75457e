"""Versions of the street-lighting configuration, append-only like the other versioned records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 05:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import store.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they were at this revision (a migration is a snapshot, not a view of schema.py).
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TABLE = "lighting_config_versions"


def create_append_only_triggers() -> None:
    """Reject UPDATE and DELETE (and TRUNCATE on PostgreSQL), as 0001 does for its tables;
    PostgreSQL's ``waldstadt_reject_change()`` comes from 0001."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION waldstadt_reject_change()"
        )
        op.execute(
            f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
            "FOR EACH STATEMENT EXECUTE FUNCTION waldstadt_reject_change()"
        )
    elif dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {TABLE}_no_{verb.lower()} BEFORE {verb} ON {TABLE} "
                f"BEGIN SELECT RAISE(ABORT, 'table {TABLE} is append-only: {verb} rejected'); "
                "END"
            )
    else:
        raise RuntimeError(f"no append-only triggers for dialect {dialect!r}")


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("base_hash", sa.String(length=64), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("config", JSON_TYPE, nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f(f"ck_{TABLE}_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{TABLE}")),
        sa.UniqueConstraint("version", name=op.f(f"uq_{TABLE}_version")),
    )
    create_append_only_triggers()


def downgrade() -> None:
    # Dropping the table drops its triggers on both backends; the function belongs to 0001.
    op.drop_table(TABLE)
