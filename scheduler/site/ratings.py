"""What the site file says about each device for the plausibility checks: its channels, its
rating and, per energy counter, what the register may do (:class:`CounterRules`).

* **Channels**: those of the device's driver (a template's channels; for ``sunspec`` every
  channel the SunSpec mapping yields).
* **Rating** (W): a PV system's ``rated_power_w``; a battery's larger of ``max_charge_w`` and
  ``max_discharge_w``; an EV charger's or storage heater's ``max_power_w``; a member's grid
  meter: the member's ``grid_connection_w``, by default :func:`default_grid_connection_w`.
  A device that serves no member has no rating (its counters are only checked for falls).
* **Register size** (Wh) of a counter: an unsigned integer register wraps at ``2^bits ×``
  its constant scale; a register with a scale-factor register is taken at scale factor 0
  (SunSpec meters' ``TotWh_SF`` usually is); ``sunspec`` counters are ``acc32`` (2^32 Wh);
  float registers do not wrap.
* **Exchanges**: the device's recorded meter exchanges of that counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from protocols.modbus.codec import SIZE
from protocols.modbus.factory import SUNSPEC
from protocols.modbus.template import load_template
from protocols.sunspec.mapping import meter_part_of
from scheduler.site.assets import DeviceConfig, MemberConfig
from scheduler.site.model import Site
from scheduler.site.plausibility import COUNTER_CHANNELS, driver_channels
from vpp.metering.plausibility import CounterRules

#: The usual German house connection, 3 × 63 A at 230 V, in W.
HOUSE_CONNECTION_W = 3 * 63 * 230.0
_UNSIGNED = frozenset({"uint16", "uint32", "acc32", "uint64", "acc64"})


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """One device as the plausibility checks see it."""

    name: str
    channels: frozenset[str]
    rating_w: float | None
    counters: Mapping[str, CounterRules] = field(default_factory=dict)


def default_grid_connection_w(member: MemberConfig) -> float:
    """A grid connection carries at least what is behind it: the larger of
    :data:`HOUSE_CONNECTION_W` and the sum of the member's PV, battery, EV and heater
    ratings, in W."""
    behind = sum(pv.rated_power_w for pv in member.pv)
    if member.battery is not None:
        behind += max(member.battery.max_charge_w, member.battery.max_discharge_w)
    if member.ev is not None:
        behind += member.ev.max_power_w
    if member.storage_heater is not None:
        behind += member.storage_heater.max_power_w
    return max(HOUSE_CONNECTION_W, behind)


def _ratings(site: Site) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in site.members:
        out[m.meter] = m.grid_connection_w or default_grid_connection_w(m)
        for pv in m.pv:
            out[pv.device] = pv.rated_power_w
        if m.battery is not None:
            out[m.battery.device] = max(m.battery.max_charge_w, m.battery.max_discharge_w)
        if m.ev is not None:
            out[m.ev.device] = m.ev.max_power_w
        if m.storage_heater is not None:
            out[m.storage_heater.device] = m.storage_heater.max_power_w
    return out


def register_wrap_wh(driver: str, channel: str) -> float | None:
    """The size of a counter's register in Wh (it counts ``0 … size − 1``), None when it
    does not wrap (see the module doc)."""
    if driver == SUNSPEC:
        return float(2**32) if channel in COUNTER_CHANNELS else None
    template = load_template(driver)
    reg = template.channels.get(channel)
    if reg is None:
        return None
    kind = reg.type or template.defaults.type
    if kind not in _UNSIGNED:
        return None
    factor = 1.0 if reg.scale_factor is not None else reg.factor
    return float(2 ** (16 * SIZE[kind])) * factor


def _facts(device: DeviceConfig, rating_w: float | None) -> DeviceFacts:
    channels = driver_channels(device.driver)
    counters = {
        ch: CounterRules(
            max_power_w=rating_w,
            rollover_wh=register_wrap_wh(device.driver, ch),
            exchanges=tuple(ex for cfg in device.exchanges if (ex := cfg.exchange(ch)) is not None),
        )
        for ch in sorted(channels & COUNTER_CHANNELS)
    }
    return DeviceFacts(device.name, channels, rating_w, counters)


def device_facts(site: Site) -> dict[str, DeviceFacts]:
    """Every device of the site by name, and every meter on a SunSpec inverter's unit id
    that a member names (``<device>:meter``: a SunSpec device's channels, the device's
    recorded exchanges)."""
    ratings = _ratings(site)
    facts = {d.name: _facts(d, ratings.get(d.name)) for d in site.devices}
    devices = {d.name: d for d in site.devices}
    for m in site.members:
        part = meter_part_of(m.meter)
        if part is not None and part[0] in devices:
            as_meter = devices[part[0]].model_copy(update={"name": m.meter})
            facts[m.meter] = _facts(as_meter, ratings.get(m.meter))
    return facts


__all__ = [
    "HOUSE_CONNECTION_W",
    "DeviceFacts",
    "default_grid_connection_w",
    "device_facts",
    "register_wrap_wh",
]
