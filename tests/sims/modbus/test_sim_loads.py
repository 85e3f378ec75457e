"""The simulated wallbox and storage heater over real sockets, read and commanded through the
production drivers (``protocols.modbus.factory.open_device``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from kernel.clock import ManualClock
from protocols.capabilities import AcceptsLoadPowerW, ReadsEnergyWh, ReadsPowerW
from protocols.modbus.connection import ModbusPool
from protocols.modbus.driver import TemplateDevice
from protocols.modbus.factory import open_device
from sims.modbus.fleet import ModbusFleet
from sims.modbus.loads import (
    CONNECTED,
    DRAWING,
    IDLE,
    EvChargerSim,
    EvParams,
    HeaterParams,
    StorageHeaterSim,
)

BERLIN = ZoneInfo("Europe/Berlin")
#: a winter afternoon, before the car comes home
AFTERNOON = datetime(2026, 11, 25, 15, 0, tzinfo=BERLIN)


@dataclass
class Rig:
    clock: ManualClock
    fleet: ModbusFleet
    pool: ModbusPool

    async def device(self, name: str) -> TemplateDevice:
        ep = self.fleet.endpoint(name)
        dev = await open_device(name, ep.kind, ep.host, ep.port, ep.unit_id, self.pool, self.clock)
        assert isinstance(dev, TemplateDevice)
        return dev


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock(AFTERNOON)
    fleet = ModbusFleet(clock)
    async with fleet, ModbusPool(timeout_s=2.0) as pool:
        yield Rig(clock, fleet, pool)


async def _values(dev: TemplateDevice) -> dict[str, float]:
    """Every channel, each one read (none unavailable)."""
    out = {}
    for r in await dev.read():
        assert r.value is not None, r.channel
        out[r.channel] = r.value
    return out


def _ev(rig: Rig, **kw: float) -> EvChargerSim:
    params = EvParams(
        max_w=kw.get("max_w", 11_000.0),
        min_w=kw.get("min_w", 4200.0),
        energy_need_wh=kw.get("need", 20_000.0),
        seed=3,
    )
    return rig.fleet.add_ev_charger("ev", params, gateway="gw")


async def _started(rig: Rig) -> None:
    for gw in rig.fleet.gateways.values():
        await gw.start()


async def test_the_car_arrives_charges_at_full_power_and_leaves(rig: Rig) -> None:
    sim = _ev(rig)
    await _started(rig)
    dev = await rig.device("ev")
    assert isinstance(dev, AcceptsLoadPowerW)
    assert not isinstance(dev, ReadsPowerW)  # a wallbox is not a grid meter
    assert not isinstance(dev, ReadsEnergyWh)
    v = await _values(dev)
    assert v["operating_state"] == IDLE
    assert v["load_power_w"] == 0
    session = sim.session_at(AFTERNOON + timedelta(hours=6))
    assert session is not None
    assert time(17, 15) <= session.start.astimezone(BERLIN).time() <= time(18, 45)
    assert time(6, 15) <= session.end.astimezone(BERLIN).time() <= time(7, 45)
    assert 0.6 * 20_000 <= session.need_wh <= 1.4 * 20_000

    rig.clock.set(session.start + timedelta(minutes=30))
    v = await _values(dev)
    assert v["operating_state"] == DRAWING
    assert v["load_power_w"] == 11_000  # uncommanded: full power
    assert v["session_energy_wh"] == round(11_000 * 0.5)
    assert v["max_load_power_w"] == 11_000
    assert v["min_load_power_w"] == 4200
    lifetime_before = v["load_energy_wh"]

    # the need is met long before the morning: the car stops drawing, state "connected"
    rig.clock.set(session.start + timedelta(hours=5))
    v = await _values(dev)
    assert v["operating_state"] == CONNECTED
    assert v["load_power_w"] == 0
    assert v["session_energy_wh"] == round(session.need_wh)
    assert v["load_energy_wh"] == pytest.approx(lifetime_before + session.need_wh - 5500, abs=1.0)

    # it leaves in the morning: nothing to do, the session counter starts afresh
    rig.clock.set(session.end + timedelta(minutes=1))
    v = await _values(dev)
    assert v["operating_state"] == IDLE
    assert v["session_energy_wh"] == 0


async def test_a_commanded_power_is_followed_and_reverts_to_full_power(rig: Rig) -> None:
    sim = _ev(rig, need=50_000)
    await _started(rig)
    dev = await rig.device("ev")
    assert isinstance(dev, AcceptsLoadPowerW)
    session = sim.session_at(AFTERNOON + timedelta(hours=6))
    assert session is not None
    rig.clock.set(session.start + timedelta(minutes=1))
    await dev.set_load_power_w(6000.0, 900, "cmd-1")
    e0 = (await _values(dev))["session_energy_wh"]
    rig.clock.advance(300)
    # the same command id again within half the revert time is not written again
    writes = len(sim.write_log)
    await dev.set_load_power_w(6000.0, 900, "cmd-1")
    assert len(sim.write_log) == writes
    rig.clock.advance(300)
    v = await _values(dev)
    assert v["load_power_w"] == 6000
    assert v["setpoint_w"] == 6000
    assert v["session_energy_wh"] == pytest.approx(e0 + 1000, abs=1)
    # nobody refreshes it: 900 s after the write it goes back to full power by itself
    rig.clock.advance(600)
    v = await _values(dev)
    assert sim.reverts == 1
    assert v["load_power_w"] == 11_000
    assert v["setpoint_w"] == 0
    # exact energy: 900 s at 6 kW, then 300 s at 11 kW
    assert v["session_energy_wh"] == pytest.approx(
        e0 + 6000 * 900 / 3600 + 11_000 * 300 / 3600, abs=1
    )
    # a refresh within the revert time keeps it: the controller repeats the command (same
    # id) after half the revert time, and that repeat is written, not taken for a duplicate
    await dev.set_load_power_w(5000.0, 900, "cmd-2")
    for _ in range(3):
        rig.clock.advance(600)
        writes = len(sim.write_log)
        await dev.set_load_power_w(5000.0, 900, "cmd-2")
        assert len(sim.write_log) > writes
    assert (await _values(dev))["load_power_w"] == 5000
    assert sim.reverts == 1


async def test_the_p14a_minimum_holds_unless_the_member_agreed_to_pauses(rig: Rig) -> None:
    controlled = _ev(rig)
    smart = rig.fleet.add_ev_charger(
        "ev-smart", EvParams(min_w=0.0, energy_need_wh=20_000.0, seed=3), gateway="gw"
    )
    await _started(rig)
    dev = await rig.device("ev")
    dev_smart = await rig.device("ev-smart")
    assert isinstance(dev, AcceptsLoadPowerW)
    assert isinstance(dev_smart, AcceptsLoadPowerW)
    session = controlled.session_at(AFTERNOON + timedelta(hours=6))
    assert session is not None
    assert smart.session_at(session.start) == session  # same seed, same car
    rig.clock.set(session.start + timedelta(minutes=5))
    await dev.set_load_power_w(1000.0, 900, "low")
    await dev_smart.set_load_power_w(0.0, 900, "pause")
    v = await _values(dev)
    s = await _values(dev_smart)
    assert v["setpoint_w"] == 1000  # what it was told …
    assert v["load_power_w"] == 4200  # … and what it keeps (§14a)
    assert s["load_power_w"] == 0
    assert s["operating_state"] == CONNECTED
    # above the maximum the driver clamps to the template's limit, the device to its own
    await dev.set_load_power_w(50_000.0, 900, "high")
    v = await _values(dev)
    assert v["setpoint_w"] == 22_000
    assert v["load_power_w"] == 11_000


async def test_the_storage_heater_charges_in_its_window_only(rig: Rig) -> None:
    sim = rig.fleet.add_storage_heater(
        "heater", HeaterParams(max_w=6000.0, energy_need_wh=20_000.0), gateway="gw"
    )
    await _started(rig)
    dev = await rig.device("heater")
    assert isinstance(dev, AcceptsLoadPowerW)
    v = await _values(dev)
    assert v["operating_state"] == IDLE
    assert v["load_power_w"] == 0
    window = datetime(2026, 11, 25, 22, 0, tzinfo=BERLIN)
    rig.clock.set(window - timedelta(minutes=1))
    assert (await _values(dev))["load_power_w"] == 0
    rig.clock.set(window + timedelta(minutes=30))
    v = await _values(dev)
    assert v["load_power_w"] == 6000  # default: full power in the window
    assert v["session_energy_wh"] == 3000
    assert v["charge_level_pct"] == pytest.approx(15.0)
    await dev.set_load_power_w(2000.0, 600, "h-1")
    rig.clock.advance(300)
    v = await _values(dev)
    assert v["load_power_w"] == 2000
    assert v["min_load_power_w"] == 0
    rig.clock.advance(600)  # not refreshed: back to full power after 600 s
    v = await _values(dev)
    assert sim.reverts == 1
    assert v["load_power_w"] == 6000
    assert v["session_energy_wh"] == pytest.approx(3000 + 2000 / 6 + 6000 / 12, abs=1)
    # full before the window ends: it stops, the core is at 100 %
    rig.clock.set(datetime(2026, 11, 26, 5, 0, tzinfo=BERLIN))
    v = await _values(dev)
    assert v["operating_state"] == CONNECTED
    assert v["load_power_w"] == 0
    assert v["session_energy_wh"] == 20_000
    assert v["charge_level_pct"] == pytest.approx(100.0)
    # after the window the core gives its heat off until the next one
    rig.clock.set(datetime(2026, 11, 26, 14, 0, tzinfo=BERLIN))
    v = await _values(dev)
    assert v["operating_state"] == IDLE
    assert v["load_power_w"] == 0
    assert v["charge_level_pct"] == pytest.approx(100.0 * 8 / 16, abs=0.1)


async def test_the_household_meter_counts_the_wallbox_and_the_heater(rig: Rig) -> None:
    """Grid meter = load + EV + heater − PV + battery: the settlement sees the new loads."""
    house = rig.fleet.add_household(
        "h1",
        gateway="gw",
        annual_kwh=4000,
        kwp=None,
        battery_wh=None,
        ev=EvParams(energy_need_wh=30_000.0, seed=1),
        heater=HeaterParams(max_w=5000.0, window_start=time(17, 0)),
        lat=51.37,
        lon=7.70,
    )
    await _started(rig)
    meter = await rig.device("h1-meter")
    ev = await rig.device("h1-ev")
    assert isinstance(meter, ReadsEnergyWh)
    assert isinstance(meter, ReadsPowerW)
    assert isinstance(ev, AcceptsLoadPowerW)
    ev_sim = rig.fleet.sim("h1-ev")
    heater_sim = rig.fleet.sim("h1-heater")
    assert isinstance(ev_sim, EvChargerSim)
    assert isinstance(heater_sim, StorageHeaterSim)
    session = ev_sim.session_at(AFTERNOON + timedelta(hours=5))
    assert session is not None
    rig.clock.set(session.start + timedelta(minutes=10))
    imp0 = (await meter.read_import_energy_wh()).value
    load_w = house.load.power_w(rig.clock.now())
    power = (await meter.read_power_w()).value
    assert power == pytest.approx(load_w + 11_000 + 5000, rel=1e-5)
    await ev.set_load_power_w(4200.0, 900, "ev-1")
    power = (await meter.read_power_w()).value
    assert power == pytest.approx(load_w + 4200 + 5000, rel=1e-5)
    # an hour later (polled every minute): the import counter holds the EV and the heater
    e_ev, e_heat = ev_sim.energy_wh, heater_sim.energy_wh
    for i in range(60):
        rig.clock.advance(60)
        if i % 10 == 9:
            await ev.set_load_power_w(4200.0, 900, f"ev-refresh-{i}")
        await meter.read()
    imp1 = (await meter.read_import_energy_wh()).value
    assert imp0 is not None
    assert imp1 is not None
    assert ev_sim.energy_wh - e_ev == pytest.approx(4200, abs=1)
    assert heater_sim.energy_wh - e_heat == pytest.approx(5000, abs=1)
    # the household's own load over that hour is one H25 quarter-hour value or a few
    assert imp1 - imp0 == pytest.approx(4200 + 5000 + load_w, rel=0.1)
    assert imp1 - imp0 > 4200 + 5000


def test_sessions_are_the_same_on_every_run() -> None:
    clock = ManualClock(datetime(2026, 11, 25, 12, tzinfo=UTC))
    a = EvChargerSim(clock, EvParams(seed=5))
    b = EvChargerSim(clock, EvParams(seed=5))
    c = EvChargerSim(clock, EvParams(seed=6))
    day = datetime(2026, 11, 25, 21, tzinfo=UTC)
    assert a.session_at(day) == b.session_at(day)
    assert a.session_at(day) != c.session_at(day)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_w": 5000.0, "max_w": 4000.0}, "min_w"),
        ({"energy_need_wh": -1.0}, "energy_need_wh"),
    ],
)
def test_bad_load_parameters_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EvParams(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=message):
        HeaterParams(**kwargs)  # type: ignore[arg-type]


def test_started_in_the_night_the_car_has_charged_since_it_arrived() -> None:
    dawn = datetime(2026, 11, 26, 5, 30, tzinfo=BERLIN)
    clock = ManualClock(dawn)
    ev = EvChargerSim(clock, EvParams(energy_need_wh=20_000.0, seed=3))
    heater = StorageHeaterSim(clock, HeaterParams(max_w=2000.0, energy_need_wh=30_000.0))
    session = ev.session_at(dawn)
    assert session is not None
    assert ev.session_wh == pytest.approx(session.need_wh)  # 11 kW since ~18:00: full
    assert ev.power_w == 0
    # 2 kW since 22:00 is 15 kWh of the 30 kWh: still charging, at full power
    assert heater.session_wh == pytest.approx(15_000.0)
    assert heater.power_w == 2000.0
