"""The streetlight node protocol: topics, JSON payloads, and the controller's side.

Topics (``prefix`` defaults to ``waldstadt/lights``; QoS 1 throughout)::

    {prefix}/{node_id}/cmd           controller → node   not retained   LightCommand
    {prefix}/{node_id}/schedule      controller → node   RETAINED       LightSchedule
    {prefix}/{node_id}/state         node → controller   retained       LightState
    {prefix}/{node_id}/availability  node                retained       "online" / "offline" (will)

Payloads (JSON; instants ISO 8601 with offset, computed in UTC)::

    cmd       {"command_id": "c-42", "level_pct": 60, "ramp_s": 5,
               "expires_at": "2026-11-25T18:05:00Z"}
    schedule  {"issued_at": "...", "fallback_level_pct": 100, "controller_timeout_s": 900,
               "valid_until": "..." | null,
               "steps": [{"at": "2026-11-25T16:12:00Z", "level_pct": 100, "ramp_s": 60}, ...]}
    state     {"ts": "...", "level_pct": 60.0, "power_w": 31.2, "energy_wh": 1234.5,
               "status": "ok" | "fault", "mode": "controller" | "schedule" | "fallback",
               "failures": ["lamp_failure", ...], "last_command_id": "c-42"}

Why this shape: the controller resolves programs (dusk, dawn, solar midnight, calendar) to
instants, so a node needs no astronomy -- only a clock. It follows commands while the
controller speaks; after ``controller_timeout_s`` without a command it runs its stored steps
(the last step at or before now), and the fallback level when no step applies (none yet, or
past ``valid_until``). Commands carry an id (a duplicate is applied once) and an expiry (a late
one is dropped). Every payload from a device is validated strictly (types and ranges; level
0..100) but unknown fields are ignored, so newer firmware does not break older controllers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from kernel.errors import PayloadError
from kernel.readings import Reading
from protocols.mqtt.bus import Bus
from protocols.mqtt.inbound import Inbound

DEFAULT_PREFIX = "waldstadt/lights"
_MAX_COMMAND_ID = 64

LevelPct = Annotated[float, Field(ge=0.0, le=100.0)]
RampS = Annotated[float, Field(ge=0.0, le=3600.0)]
Failure = Literal[
    "lamp_failure", "dimming_failure", "driver_overtemperature", "supply_loss", "power_out_of_range"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True, allow_inf_nan=False)


class LightCommand(_Strict):
    command_id: str = Field(min_length=1, max_length=_MAX_COMMAND_ID)
    level_pct: LevelPct
    ramp_s: RampS = 0.0
    expires_at: AwareDatetime


class ScheduleStep(_Strict):
    at: AwareDatetime
    level_pct: LevelPct
    ramp_s: RampS = 0.0


class LightSchedule(_Strict):
    issued_at: AwareDatetime
    steps: list[ScheduleStep] = Field(default_factory=list, max_length=2000)
    fallback_level_pct: LevelPct = 100.0
    controller_timeout_s: float = Field(default=900.0, gt=0.0, le=7 * 86_400.0)
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _steps_in_order(self) -> LightSchedule:
        for i, (a, b) in enumerate(zip(self.steps, self.steps[1:], strict=False)):
            if b.at <= a.at:
                raise ValueError(f"steps[{i + 1}].at {b.at.isoformat()} is not after steps[{i}].at")
        return self

    def step_at(self, now: datetime) -> ScheduleStep | None:
        """The step in force at ``now``: the last one at or before it; ``None`` when no step
        has started yet or the schedule ran out (``valid_until``), i.e. fallback time."""
        if self.valid_until is not None and now >= self.valid_until:
            return None
        current: ScheduleStep | None = None
        for step in self.steps:
            if step.at > now:
                break
            current = step
        return current


class LightState(_Strict):
    ts: AwareDatetime
    level_pct: LevelPct
    power_w: float = Field(ge=0.0)
    energy_wh: float = Field(ge=0.0)
    status: Literal["ok", "fault"] = "ok"
    mode: Literal["controller", "schedule", "fallback"] = "controller"
    failures: list[Failure] = Field(default_factory=list)
    last_command_id: str | None = None


def dump(model: BaseModel) -> bytes:
    """The JSON bytes of a payload model (instants as ISO 8601 with their offset)."""
    return model.model_dump_json().encode()


class LightTopics:
    """Topic names under one prefix (tests and multi-tenant brokers use their own prefix)."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix.rstrip("/")

    def cmd(self, node_id: str) -> str:
        return f"{self.prefix}/{node_id}/cmd"

    def schedule(self, node_id: str) -> str:
        return f"{self.prefix}/{node_id}/schedule"

    def state(self, node_id: str) -> str:
        return f"{self.prefix}/{node_id}/state"

    def availability(self, node_id: str) -> str:
        return f"{self.prefix}/{node_id}/availability"

    def all(self, kind: Literal["cmd", "schedule", "state", "availability"]) -> str:
        return f"{self.prefix}/+/{kind}"

    def node_of(self, topic: str) -> str:
        """The ``{node_id}`` level of one of these topics."""
        rest = topic[len(self.prefix) + 1 :] if topic.startswith(self.prefix + "/") else ""
        node_id, _, kind = rest.partition("/")
        if not node_id or "/" in kind or not kind:
            raise PayloadError(topic, "topic", f"not a {self.prefix}/{{node_id}}/... topic")
        return node_id


def state_readings(node_id: str, state: LightState) -> list[Reading]:
    """Canonical readings of a node's state report."""
    ts = state.ts.astimezone(UTC)
    return [
        Reading(node_id, "level_pct", state.level_pct, "%", ts),
        Reading(node_id, "power_w", state.power_w, "W", ts),
        Reading(node_id, "energy_wh", state.energy_wh, "Wh", ts),
    ]


StateHandler = Callable[[str, LightState], Awaitable[None]]
AvailabilityHandler = Callable[[str, bool], Awaitable[None]]


class StreetlightController:
    """The controller's side: commands, retained schedules, and watching nodes."""

    def __init__(self, bus: Bus, prefix: str = DEFAULT_PREFIX) -> None:
        self.bus = bus
        self.topics = LightTopics(prefix)

    async def send_level(
        self,
        node_id: str,
        level_pct: float,
        ramp_s: float,
        command_id: str,
        expires_at: datetime,
    ) -> None:
        """Queue a dim command (QoS 1); the node drops it if it arrives after ``expires_at``."""
        cmd = LightCommand(
            command_id=command_id, level_pct=level_pct, ramp_s=ramp_s, expires_at=expires_at
        )
        await self.bus.publish(self.topics.cmd(node_id), dump(cmd), qos=1)

    async def push_schedule(self, node_id: str, schedule: LightSchedule) -> None:
        """Store the node's schedule on the broker (retained), so it finds it after a reboot."""
        await self.bus.publish(self.topics.schedule(node_id), dump(schedule), qos=1, retain=True)

    async def clear_schedule(self, node_id: str) -> None:
        """Delete the retained schedule (an empty retained message)."""
        await self.bus.publish(self.topics.schedule(node_id), b"", qos=1, retain=True)

    async def watch_states(self, handler: StateHandler) -> None:
        topics = self.topics

        async def handle(inbound: Inbound[LightState]) -> None:
            await handler(topics.node_of(inbound.topic), inbound.payload)

        await self.bus.subscribe(topics.all("state"), LightState, handle)

    async def watch_availability(self, handler: AvailabilityHandler) -> None:
        topics = self.topics

        async def handle(inbound: Inbound[bytes]) -> None:
            value = inbound.payload.strip().lower()
            if value not in (b"online", b"offline"):
                raise PayloadError(
                    inbound.topic, "$", f"availability must be online/offline, got {value[:20]!r}"
                )
            await handler(topics.node_of(inbound.topic), value == b"online")

        await self.bus.subscribe_raw(topics.all("availability"), handle)


def wire_command_id(command_id: str) -> str:
    """The command id itself, or a stable digest of it when too long for the protocol
    (``LightCommand.command_id`` ≤ 64 characters): the same id always gives the same."""
    if len(command_id) <= _MAX_COMMAND_ID:
        return command_id
    return "h-" + hashlib.blake2b(command_id.encode(), digest_size=16).hexdigest()


class NodeDimmer:
    """One node seen through the ``AcceptsDimLevelPct`` capability: how the command writer
    reaches a luminaire."""

    __slots__ = ("_controller", "device_id")

    def __init__(self, controller: StreetlightController, node_id: str) -> None:
        self._controller = controller
        self.device_id = node_id

    async def set_dim_level_pct(
        self, level_pct: float, ramp_s: float, command_id: str, expires_at: datetime
    ) -> None:
        await self._controller.send_level(
            self.device_id, level_pct, ramp_s, wire_command_id(command_id), expires_at
        )


__all__ = [
    "DEFAULT_PREFIX",
    "LightCommand",
    "LightSchedule",
    "LightState",
    "LightTopics",
    "NodeDimmer",
    "ScheduleStep",
    "StreetlightController",
    "dump",
    "state_readings",
    "wire_command_id",
]
