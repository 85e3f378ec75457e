"""Indexes for members' balances over long histories.

* ``member_intervals``: the (member, start) index also carries channel, version, quality and
  energy, so that a month of a member's intervals (~6,000 rows) is summed from the index
  alone, without a table lookup per row.
* ``settlement_runs``: an index by period (with community and version), so that the newest
  version of each period in a month is found among that month's runs, not among every
  statement the member ever had (a day has ~100 versions with provisional settlement).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 15:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INTERVAL_COLUMNS = ["member_id", "interval_start", "channel", "version", "quality", "energy_wh"]
RUN_COLUMNS = ["period_start", "period_end", "community_id", "version"]


def upgrade() -> None:
    op.create_index(
        "ix_member_intervals_member_start_cover", "member_intervals", INTERVAL_COLUMNS
    )
    op.drop_index("ix_member_intervals_member_start", table_name="member_intervals")
    op.create_index("ix_settlement_runs_period", "settlement_runs", RUN_COLUMNS)


def downgrade() -> None:
    op.drop_index("ix_settlement_runs_period", table_name="settlement_runs")
    op.create_index(
        "ix_member_intervals_member_start", "member_intervals", ["member_id", "interval_start"]
    )
    op.drop_index("ix_member_intervals_member_start_cover", table_name="member_intervals")
