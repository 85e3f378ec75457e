"""The tables, as SQLAlchemy Core metadata: the one source the migrations are checked against.

Conventions: every instant is :class:`~store.types.UTCDateTime`; energy is
:class:`~store.types.ExactDecimal` in Wh with three places (mWh resolution); money is
``ExactDecimal`` in EUR with six places; a raw measurement value is a float (it came off a
wire as one). Append-only tables (:data:`APPEND_ONLY_TABLES`) get database triggers that
reject UPDATE and DELETE, installed by the initial migration.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from store.types import ExactDecimal, JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

#: Surrogate keys: BIGINT on PostgreSQL, the rowid alias INTEGER on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

QUALITIES = ("good", "substitute", "unavailable")
COMMAND_STATUSES = ("pending", "sent", "acknowledged", "failed", "expired", "superseded")
ROLES = ("operator", "member", "lighting_engineer", "auditor", "device")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _energy() -> ExactDecimal:
    return ExactDecimal(18, 3)


raw_readings = Table(
    "raw_readings",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("ts", UTCDateTime(), primary_key=True),
    Column("value", Float(), nullable=True),
    Column("unit", String(16), nullable=False),
    Column("quality", String(16), nullable=False),
    CheckConstraint(_in("quality", QUALITIES), name="quality"),
    CheckConstraint("value IS NOT NULL OR quality = 'unavailable'", name="value_or_unavailable"),
    Index("ix_raw_readings_ts", "ts"),
)

member_intervals = Table(
    "member_intervals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", String(128), nullable=False),
    Column("channel", String(64), nullable=False),
    Column("interval_start", UTCDateTime(), nullable=False),
    Column("energy_wh", _energy(), nullable=False),
    Column("quality", String(16), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("restated", Boolean(), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    UniqueConstraint("member_id", "channel", "interval_start", "version"),
    CheckConstraint(_in("quality", QUALITIES), name="quality"),
    CheckConstraint("version >= 1", name="version_positive"),
    # covering: a member's month is summed from the index alone (migration 0003)
    Index(
        "ix_member_intervals_member_start_cover",
        "member_id",
        "interval_start",
        "channel",
        "version",
        "quality",
        "energy_wh",
    ),
)

#: Each member's newest interval versions summed per local day of a zone (a cache of
#: ``member_intervals`` kept by every interval write; see :mod:`store.day_totals`).
#: ``present_qh`` / ``substitute_qh``: which quarter-hours of the day (bit i = the i-th) have
#: this channel, and a substitute value in it, as hex.
member_day_totals = Table(
    "member_day_totals",
    metadata,
    Column("zone", String(64), primary_key=True),
    Column("member_id", String(128), primary_key=True),
    Column("day", Date(), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("energy_wh", _energy(), nullable=False),
    Column("present_qh", String(32), nullable=False),
    Column("substitute_qh", String(32), nullable=False),
)

#: The zones whose day totals are complete: built from every interval once, then kept.
member_day_zones = Table(
    "member_day_zones",
    metadata,
    Column("zone", String(64), primary_key=True),
    Column("complete_at", UTCDateTime(), nullable=False),
    Column("intervals", BigInteger(), nullable=False),
)

plans = Table(
    "plans",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("community_id", String(128), nullable=False),
    Column("interval_start", UTCDateTime(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("payload", JSONType, nullable=False),
    UniqueConstraint("community_id", "interval_start"),
)

commands = Table(
    "commands",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("command_id", String(128), nullable=False, unique=True),
    Column("target", String(128), nullable=False),
    Column("value", JSONType, nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_changed_at", UTCDateTime(), nullable=False),
    Column("detail", Text(), nullable=True),
    CheckConstraint(_in("status", COMMAND_STATUSES), name="status"),
    CheckConstraint("expires_at > issued_at", name="expires_after_issue"),
    Index("ix_commands_status_expires", "status", "expires_at"),
    Index("ix_commands_target", "target"),
)

settlement_runs = Table(
    "settlement_runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("community_id", String(128), nullable=False),
    Column("period_start", UTCDateTime(), nullable=False),
    Column("period_end", UTCDateTime(), nullable=False),
    Column("version", Integer(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("details", JSONType, nullable=False),
    UniqueConstraint("community_id", "period_start", "period_end", "version"),
    CheckConstraint("period_end > period_start", name="period_positive"),
    CheckConstraint("version >= 1", name="version_positive"),
    Index("ix_settlement_runs_period", "period_start", "period_end", "community_id", "version"),
)

settlement_statements = Table(
    "settlement_statements",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column(
        "run_id",
        Id,
        ForeignKey("settlement_runs.id"),
        nullable=False,
    ),
    Column("member_id", String(128), nullable=False),
    Column("consumption_wh", _energy(), nullable=False),
    Column("generation_wh", _energy(), nullable=False),
    Column("shared_received_wh", _energy(), nullable=False),
    Column("shared_delivered_wh", _energy(), nullable=False),
    Column("grid_import_wh", _energy(), nullable=False),
    Column("grid_export_wh", _energy(), nullable=False),
    Column("amount_eur", ExactDecimal(18, 6), nullable=False),
    Column("co2_g", _energy(), nullable=False),
    Column("details", JSONType, nullable=False),
    UniqueConstraint("run_id", "member_id"),
    Index("ix_settlement_statements_member", "member_id"),
)

alarm_events = Table(
    "alarm_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime(), nullable=False),
    Column("alarm_key", String(200), nullable=False),
    Column("source", String(128), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("event", String(8), nullable=False),
    Column("message", Text(), nullable=False),
    Column("details", JSONType, nullable=False),
    CheckConstraint("event IN ('raise', 'clear')", name="event"),
    CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),
    Index("ix_alarm_events_key", "alarm_key", "id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("role", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False),
    # Plain JSON (text as written) rather than jsonb: the hash chain must see the values
    # exactly as they were hashed, and jsonb normalises numbers.
    Column("old_value", JSON(), nullable=True),
    Column("new_value", JSON(), nullable=True),
    Column("result", String(32), nullable=False),
    Column("command_id", String(128), nullable=True),
    # The unique prev_hash makes the chain linear: two writers that read the same tail
    # cannot both append after it; the loser retries on the new tail.
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("password_hash", String(512), nullable=False),
    Column("role", String(32), nullable=False),
    Column("member_id", String(128), nullable=True),
    Column("disabled", Boolean(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    # bumped by a password change, disabling or re-creating: older tokens stop working
    Column("credentials_version", Integer(), nullable=False, server_default="0"),
    CheckConstraint(_in("role", ROLES), name="role"),
    CheckConstraint("role <> 'member' OR member_id IS NOT NULL", name="member_has_member_id"),
)

#: Readings that failed the plausibility checks: kept apart with the reason, never billed.
quarantined_readings = Table(
    "quarantined_readings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("source", String(32), nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("channel", String(64), nullable=True),
    Column("ts", UTCDateTime(), nullable=True),
    # what arrived, as text: it may not be a number at all
    Column("raw_value", String(256), nullable=True),
    Column("reason", String(64), nullable=False),
    Column("detail", Text(), nullable=False),
    Index("ix_quarantined_readings_device", "device_id", "received_at"),
    Index("ix_quarantined_readings_reason", "reason", "received_at"),
)

#: Web sessions and API tokens that can be revoked: a token names its session.
user_sessions = Table(
    "user_sessions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("username", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
    CheckConstraint("kind IN ('api', 'page')", name="kind"),
    Index("ix_user_sessions_username", "username"),
)

#: Failed logins per account: the exponential lockout.
login_failures = Table(
    "login_failures",
    metadata,
    Column("username", String(128), primary_key=True),
    Column("failures", Integer(), nullable=False),
    Column("last_failure_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=True),
)

mirror_outbox = Table(
    "mirror_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("line", Text(), nullable=False),
    Column("enqueued_at", UTCDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

mirror_counters = Table(
    "mirror_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger(), nullable=False),
)

#: Versions of the street-lighting configuration (``lighting:`` of the site file, as edited
#: over the web API): a new row per change, never changed or removed. See
#: :mod:`store.lighting_config`.
lighting_config_versions = Table(
    "lighting_config_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version", Integer(), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("base_hash", String(64), nullable=False),
    Column("change", Text(), nullable=False),
    Column("config", JSONType, nullable=False),
    CheckConstraint("version >= 1", name="version_positive"),
)

#: Tables whose rows are never changed or removed; the migration installs triggers for them.
APPEND_ONLY_TABLES: tuple[str, ...] = (
    "member_intervals",
    "plans",
    "settlement_runs",
    "settlement_statements",
    "alarm_events",
    "audit_log",
    "lighting_config_versions",  # triggers from migration 0002
)
