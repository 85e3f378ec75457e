"""Initial schema: readings, intervals, plans, commands, settlement, alarms, audit, users,
mirror outbox; and the triggers that keep the append-only tables append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 02:55:48
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import store.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Types as they were at this revision (a migration is a snapshot, not a view of schema.py).
ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

APPEND_ONLY = (
    "member_intervals",
    "plans",
    "settlement_runs",
    "settlement_statements",
    "alarm_events",
    "audit_log",
)
PG_REJECT_FUNCTION = """
CREATE OR REPLACE FUNCTION waldstadt_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is append-only: % rejected', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END
$$
"""


def create_append_only_triggers() -> None:
    """Reject UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the append-only tables."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_REJECT_FUNCTION)
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION waldstadt_reject_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION waldstadt_reject_change()"
            )
    elif dialect == "sqlite":
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'table {table} is append-only: {verb} rejected'); "
                    "END"
                )
    else:
        raise RuntimeError(f"no append-only triggers for dialect {dialect!r}")


def upgrade() -> None:
    op.create_table(
        "alarm_events",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("ts", store.types.UTCDateTime(), nullable=False),
        sa.Column("alarm_key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("event", sa.String(length=8), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", JSON_TYPE, nullable=False),
        sa.CheckConstraint("event IN ('raise', 'clear')", name=op.f("ck_alarm_events_event")),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alarm_events_severity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_events")),
    )
    op.create_index("ix_alarm_events_key", "alarm_events", ["alarm_key", "id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("ts", store.types.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("old_value", sa.JSON(), nullable=True),
        sa.Column("new_value", sa.JSON(), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("command_id", sa.String(length=128), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_log_hash")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_log_prev_hash")),
    )
    op.create_table(
        "commands",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("command_id", sa.String(length=128), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("value", JSON_TYPE, nullable=False),
        sa.Column("issued_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_changed_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'acknowledged', 'failed', 'expired', 'superseded')",
            name=op.f("ck_commands_status"),
        ),
        sa.CheckConstraint("expires_at > issued_at", name=op.f("ck_commands_expires_after_issue")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_commands")),
        sa.UniqueConstraint("command_id", name=op.f("uq_commands_command_id")),
    )
    op.create_index(
        "ix_commands_status_expires", "commands", ["status", "expires_at"], unique=False
    )
    op.create_index("ix_commands_target", "commands", ["target"], unique=False)

    op.create_table(
        "member_intervals",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("interval_start", store.types.UTCDateTime(), nullable=False),
        sa.Column("energy_wh", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("restated", sa.Boolean(), nullable=False),
        sa.Column("recorded_at", store.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "quality IN ('good', 'substitute', 'unavailable')",
            name=op.f("ck_member_intervals_quality"),
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_member_intervals_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_intervals")),
        sa.UniqueConstraint(
            "member_id",
            "channel",
            "interval_start",
            "version",
            name=op.f("uq_member_intervals_member_id_channel_interval_start_version"),
        ),
    )
    op.create_index(
        "ix_member_intervals_member_start",
        "member_intervals",
        ["member_id", "interval_start"],
        unique=False,
    )

    op.create_table(
        "mirror_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mirror_counters")),
    )
    op.create_table(
        "mirror_outbox",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("enqueued_at", store.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mirror_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "plans",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=128), nullable=False),
        sa.Column("interval_start", store.types.UTCDateTime(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("payload", JSON_TYPE, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint(
            "community_id", "interval_start", name=op.f("uq_plans_community_id_interval_start")
        ),
    )
    op.create_table(
        "raw_readings",
        sa.Column("device_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("ts", store.types.UTCDateTime(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "quality IN ('good', 'substitute', 'unavailable')", name=op.f("ck_raw_readings_quality")
        ),
        sa.CheckConstraint(
            "value IS NOT NULL OR quality = 'unavailable'",
            name=op.f("ck_raw_readings_value_or_unavailable"),
        ),
        sa.PrimaryKeyConstraint("device_id", "channel", "ts", name=op.f("pk_raw_readings")),
    )
    op.create_index("ix_raw_readings_ts", "raw_readings", ["ts"], unique=False)

    op.create_table(
        "settlement_runs",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("community_id", sa.String(length=128), nullable=False),
        sa.Column("period_start", store.types.UTCDateTime(), nullable=False),
        sa.Column("period_end", store.types.UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", JSON_TYPE, nullable=False),
        sa.CheckConstraint(
            "period_end > period_start", name=op.f("ck_settlement_runs_period_positive")
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_settlement_runs_version_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_runs")),
        sa.UniqueConstraint(
            "community_id",
            "period_start",
            "period_end",
            "version",
            name=op.f("uq_settlement_runs_community_id_period_start_period_end_version"),
        ),
    )
    op.create_table(
        "users",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", store.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "role <> 'member' OR member_id IS NOT NULL", name=op.f("ck_users_member_has_member_id")
        ),
        sa.CheckConstraint(
            "role IN ('operator', 'member', 'lighting_engineer', 'auditor', 'device')",
            name=op.f("ck_users_role"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "settlement_statements",
        sa.Column("id", ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("run_id", ID_TYPE, nullable=False),
        sa.Column("member_id", sa.String(length=128), nullable=False),
        sa.Column("consumption_wh", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("generation_wh", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("shared_received_wh", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("shared_delivered_wh", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("grid_import_wh", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("grid_export_wh", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("amount_eur", store.types.ExactDecimal(18, 6), nullable=False),
        sa.Column("co2_g", store.types.ExactDecimal(18, 3), nullable=False),
        sa.Column("details", JSON_TYPE, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["settlement_runs.id"],
            name=op.f("fk_settlement_statements_run_id_settlement_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_statements")),
        sa.UniqueConstraint(
            "run_id", "member_id", name=op.f("uq_settlement_statements_run_id_member_id")
        ),
    )
    op.create_index(
        "ix_settlement_statements_member", "settlement_statements", ["member_id"], unique=False
    )
    create_append_only_triggers()


def downgrade() -> None:
    op.drop_index("ix_settlement_statements_member", table_name="settlement_statements")

    op.drop_table("settlement_statements")
    op.drop_table("users")
    op.drop_table("settlement_runs")
    op.drop_index("ix_raw_readings_ts", table_name="raw_readings")

    op.drop_table("raw_readings")
    op.drop_table("plans")
    op.drop_table("mirror_outbox")
    op.drop_table("mirror_counters")
    op.drop_index("ix_member_intervals_member_start", table_name="member_intervals")

    op.drop_table("member_intervals")
    op.drop_index("ix_commands_target", table_name="commands")
    op.drop_index("ix_commands_status_expires", table_name="commands")

    op.drop_table("commands")
    op.drop_table("audit_log")
    op.drop_index("ix_alarm_events_key", table_name="alarm_events")

    op.drop_table("alarm_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS waldstadt_reject_change()")
