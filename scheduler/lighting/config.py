"""How the lighting service runs (:class:`LightingServiceConfig`), its counters, and two
helpers: the next local wall-time instant of the daily push, and command ids that fit the
node protocol."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from kernel.errors import ConfigError
from lighting.failures import FailureThresholds
from lighting.sun import zone
from protocols.streetlight import DEFAULT_PREFIX

_MAX_COMMAND_ID = 64  # LightCommand.command_id


@dataclass(frozen=True, slots=True)
class LightingServiceConfig:
    """How the service runs; every duration in s of clock time.

    ``uplink_filter`` is the network server's uplink topic filter (default: all
    applications); ``watch_uplinks=False`` leaves sensors out (a site without them)."""

    prefix: str = DEFAULT_PREFIX
    tick_s: float = 10.0
    command_expiry_s: float = 300.0
    refresh_s: float | None = None
    schedule_nights: int = 3
    fallback_level_pct: float = 100.0
    controller_timeout_s: float = 900.0
    push_at: time = time(12, 30)
    timezone: str = "Europe/Berlin"
    comm_check_s: float = 60.0
    thresholds: FailureThresholds = field(default_factory=FailureThresholds)
    network: Literal["chirpstack", "tts"] = "chirpstack"
    uplink_filter: str | None = None
    watch_uplinks: bool = True
    #: Tick commands handed to the bus at once (see ``LightingService._send_paced``).
    send_slice: int = 64

    def __post_init__(self) -> None:
        for name in ("tick_s", "command_expiry_s", "controller_timeout_s", "comm_check_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"lighting_service.{name}", "must be above 0 s")
        if self.effective_refresh_s >= self.controller_timeout_s:
            raise ConfigError(
                "lighting_service.refresh_s",
                f"{self.effective_refresh_s:g} s must be below controller_timeout_s "
                f"{self.controller_timeout_s:g} s, or nodes fall back between refreshes",
            )
        if not self.effective_refresh_s > 0:
            raise ConfigError("lighting_service.refresh_s", "must be above 0 s")
        zone(self.timezone, "lighting_service.timezone")
        if self.send_slice < 1:
            raise ConfigError("lighting_service.send_slice", "must be at least 1")

    @property
    def effective_refresh_s(self) -> float:
        return self.refresh_s if self.refresh_s is not None else self.controller_timeout_s / 3


@dataclass(slots=True)
class ServiceStats:
    ticks: int = 0
    tick_errors: int = 0
    commands: int = 0
    presence_commands: int = 0
    detections: int = 0
    traffic_samples: int = 0
    unknown_sensors: int = 0
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


def short_id(command_id: str) -> str:
    """The command id itself, or a stable digest of it when too long for the protocol."""
    if len(command_id) <= _MAX_COMMAND_ID:
        return command_id
    return "h-" + hashlib.blake2b(command_id.encode(), digest_size=16).hexdigest()
