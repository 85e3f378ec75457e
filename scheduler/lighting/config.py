"""How the street lighting runs inside the cycle (:class:`LightingServiceConfig`), its
counters, and two helpers: the next local wall-time instant of the daily schedule push, and
command ids that fit the node protocol."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from kernel.errors import ConfigError
from lighting.config import Network
from lighting.failures import FailureThresholds
from lighting.sun import zone
from protocols.streetlight import DEFAULT_PREFIX


@dataclass(frozen=True, slots=True)
class LightingServiceConfig:
    """How the lighting runs; every duration in s of clock time.

    ``command_expiry_s``: how long a level command lives. A level that stays is sent again
    as a new command once per ``command_expiry_s − renew_within_s``, each luminaire at its
    own phase (:func:`lighting.tick.level_commands`), and always within ``renew_within_s``
    of its expiry; it must stay below the node's ``controller_timeout_s`` (after which a
    node runs its stored program).
    ``uplink_filters`` are the network servers' uplink topic filters by network (default:
    all applications); which networks are listened to is the site's choice, a property of
    each sensor (``lighting.config.SensorConfig.network``). ``watch_uplinks=False`` leaves
    sensors out."""

    prefix: str = DEFAULT_PREFIX
    command_expiry_s: float = 300.0
    renew_within_s: float = 90.0
    schedule_nights: int = 3
    fallback_level_pct: float = 100.0
    controller_timeout_s: float = 900.0
    push_at: time = time(12, 30)
    timezone: str = "Europe/Berlin"
    thresholds: FailureThresholds = field(default_factory=FailureThresholds)
    uplink_filters: Mapping[Network, str] = field(default_factory=dict)
    watch_uplinks: bool = True

    def __post_init__(self) -> None:
        for name in ("command_expiry_s", "controller_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"lighting_service.{name}", "must be above 0 s")
        if not 0 <= self.renew_within_s < self.command_expiry_s:
            raise ConfigError(
                "lighting_service.renew_within_s",
                f"{self.renew_within_s:g} s must be at least 0 and below command_expiry_s "
                f"{self.command_expiry_s:g} s",
            )
        if self.command_expiry_s >= self.controller_timeout_s:
            raise ConfigError(
                "lighting_service.command_expiry_s",
                f"{self.command_expiry_s:g} s must be below controller_timeout_s "
                f"{self.controller_timeout_s:g} s, or nodes fall back between renewals",
            )
        zone(self.timezone, "lighting_service.timezone")


@dataclass(slots=True)
class ServiceStats:
    cycles: int = 0
    cycle_errors: int = 0
    commands: int = 0
    presence_commands: int = 0
    detections: int = 0
    traffic_samples: int = 0
    unknown_sensors: int = 0
    #: uplinks of a known sensor that came through another network server than its own
    wrong_network: int = 0
    schedules_pushed: int = 0
    state_reports: int = 0


def next_local(now: datetime, at: time, tz_name: str) -> datetime:
    """The next instant (UTC) after ``now`` when the local clock of ``tz_name`` shows ``at``."""
    tz = zone(tz_name)
    local = now.astimezone(tz)
    for days in (0, 1, 2):
        cand = datetime.combine(local.date() + timedelta(days=days), at, tzinfo=tz)
        if cand.astimezone(UTC) > now:
            return cand.astimezone(UTC)
    raise AssertionError("unreachable: a local time recurs within two days")
