"""Each member's intervals summed per local day: the day and month views read these.

``member_day_totals``: per zone, member, local day and channel the energy of the newest
versions and which quarter-hours of the day are present and substitute (bit masks as hex).
``member_day_zones``: the zones whose totals are complete (built from every interval once,
then kept up to date by every interval write). See :mod:`store.day_totals`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 15:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_day_totals",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column(
            "energy_wh", store.types.ExactDecimal(precision=18, scale=3), nullable=False
        ),
        sa.Column("present_qh", sa.String(length=32), nullable=False),
        sa.Column("substitute_qh", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint(
            "zone", "member_id", "day", "channel", name=op.f("pk_member_day_totals")
        ),
    )
    op.create_table(
        "member_day_zones",
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("complete_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("intervals", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("zone", name=op.f("pk_member_day_zones")),
    )


def downgrade() -> None:
    op.drop_table("member_day_zones")
    op.drop_table("member_day_totals")
