"""Trust: quarantined readings, revocable sessions, login lockout, credentials versions.

``quarantined_readings``: readings that failed the plausibility checks, kept apart with the
reason and never billed. ``user_sessions``: every web session and API token names one, so a
logout, a password change or an erasure can revoke it. ``login_failures``: failed logins per
account for the exponential lockout. ``users.credentials_version``: bumped on a password
change, a disable or a re-created account, so that older tokens stop working.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quarantined_readings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("received_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=True),
        sa.Column("ts", store.types.UTCDateTime(), nullable=True),
        sa.Column("raw_value", sa.String(length=256), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_readings")),
    )
    op.create_index(
        "ix_quarantined_readings_device", "quarantined_readings", ["device_id", "received_at"]
    )
    op.create_index(
        "ix_quarantined_readings_reason", "quarantined_readings", ["reason", "received_at"]
    )
    op.create_table(
        "user_sessions",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", store.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('api', 'page')", name=op.f("ck_user_sessions_kind")),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_user_sessions")),
    )
    op.create_index("ix_user_sessions_username", "user_sessions", ["username"])
    op.create_table(
        "login_failures",
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("locked_until", store.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_login_failures")),
    )
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("credentials_version", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("credentials_version")
    op.drop_table("login_failures")
    op.drop_index("ix_user_sessions_username", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_index("ix_quarantined_readings_reason", table_name="quarantined_readings")
    op.drop_index("ix_quarantined_readings_device", table_name="quarantined_readings")
    op.drop_table("quarantined_readings")
