"""Capabilities: small protocols that drivers implement and deciders ask for.

Deciders never ask "is this an SMA inverter?" but "can it take a power limit in %?".
Units are in the names. Sign conventions:

* grid connection point: ``power_w`` positive = import from the grid;
* battery: ``battery_power_w`` positive = charging (energy into the battery);
* energy registers only grow; a drop is a counter reset or a meter exchange.

Every write carries a ``command_id`` (idempotence: the same id twice is applied once) and
setpoints that a device must drop by itself carry a revert time in seconds (fail-safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from kernel.readings import Reading


@runtime_checkable
class Device(Protocol):
    """Anything that can be polled: one read returns all its channels at one instant."""

    @property
    def device_id(self) -> str: ...

    async def read(self) -> Sequence[Reading]:
        """All channels; unavailable channels come back with quality ``unavailable``."""
        ...


@runtime_checkable
class ReportsAvailability(Protocol):
    """A device that knows why it is down (its last error), e.g. while it backs off."""

    @property
    def unavailable_reason(self) -> str | None:
        """Why the device is unavailable now; None while it answers."""
        ...


@runtime_checkable
class ReadsPowerW(Protocol):
    async def read_power_w(self) -> Reading:
        """Total active power in W (at a grid point: positive = import)."""
        ...


@runtime_checkable
class ReadsEnergyWh(Protocol):
    async def read_import_energy_wh(self) -> Reading:
        """Total imported active energy in Wh (monotonic)."""
        ...

    async def read_export_energy_wh(self) -> Reading:
        """Total exported active energy in Wh (monotonic)."""
        ...


@runtime_checkable
class AcceptsPowerLimitPct(Protocol):
    async def set_power_limit_pct(self, limit_pct: float, revert_s: int, command_id: str) -> None:
        """Limit active power to ``limit_pct`` % of the rating. The device drops the limit by
        itself ``revert_s`` seconds after the last write (0 = never) unless it is refreshed."""
        ...

    async def clear_power_limit(self, command_id: str) -> None:
        """Remove the limit (100 %)."""
        ...


@runtime_checkable
class AcceptsBatteryPowerW(Protocol):
    async def set_battery_power_w(self, power_w: float, revert_s: int, command_id: str) -> None:
        """Charge (positive) or discharge (negative) at ``power_w`` W within the device's limits;
        the device returns to its own mode ``revert_s`` seconds after the last write."""
        ...


@runtime_checkable
class AcceptsLoadPowerW(Protocol):
    async def set_load_power_w(self, power_w: float, revert_s: int, command_id: str) -> None:
        """Draw ``power_w`` W (EV charger, storage heater, heat pump); the device returns to its
        own schedule ``revert_s`` seconds after the last write. Under §14a EnWG a limited device
        keeps at least 4.2 kW; the decider, not the driver, enforces that floor."""
        ...


@runtime_checkable
class AcceptsDimLevelPct(Protocol):
    async def set_dim_level_pct(
        self, level_pct: float, ramp_s: float, command_id: str, expires_at: datetime
    ) -> None:
        """Go to ``level_pct`` % (0 = off, 100 = full) over ``ramp_s`` seconds; a node ignores
        a command whose ``expires_at`` (UTC) has passed."""
        ...
