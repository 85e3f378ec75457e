"""Decode every listed model from a register image served over Modbus TCP."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from kernel.clock import ManualClock
from protocols.modbus.codec import NOT_IMPLEMENTED
from protocols.modbus.connection import ModbusConnection
from protocols.sunspec.device import SunSpecDevice
from protocols.sunspec.discovery import discover
from protocols.sunspec.models import SUPPORTED_MODELS, PointDef, model_def
from sims.modbus.server import GatewayServer
from sims.modbus.sunspec_image import Raw, SunSpecImage, SunSpecImageUnit

if TYPE_CHECKING:
    from conftest import Serve

_SF = -1


def _raw_for(p: PointDef, i: int) -> Raw | None:
    """A distinct, valid raw value for each point type."""
    if p.type == "string":
        return f"{p.name[:6]}{i}"
    if p.type == "sunssf":
        return _SF
    if p.type == "pad":
        return None
    if p.type in ("float32", "float64"):
        return 1.5 + i
    if p.type in NOT_IMPLEMENTED:
        return 100 + i
    return None


def _expected(p: PointDef, raw: Raw | None, has_sf: bool) -> object:
    if raw is None:
        return None
    if has_sf and p.sf:
        return pytest.approx(float(raw) * 10.0**_SF)  # type: ignore[arg-type]
    return raw


@pytest.mark.parametrize("model_id", SUPPORTED_MODELS)
async def test_decode_model_over_the_wire(model_id: int, serve_image: Serve) -> None:
    m = model_def(model_id)
    values: dict[str, Raw] = {}
    for i, p in enumerate(m.points):
        if p.name in ("ID", "L"):
            continue
        raw = _raw_for(p, i)
        if raw is not None:
            values[p.name] = raw
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    chain = [(1, {"Mn": "Test"}), (model_id, values)] if model_id != 1 else [(1, values)]
    async with serve_image(chain) as (_image, conn):
        smap = await discover(conn, 1, device_id="dev")
        dev = SunSpecDevice("dev", conn, 1, smap, clock)
        decoded = (await dev.read_models(smap.models))[model_id]
    sf_names = {p.name for p in m.points if p.type == "sunssf"}
    checked = 0
    for p in m.points:
        if p.name in ("ID", "L") or p.type == "pad" or p.name not in values:
            continue
        has_sf = bool(p.sf and p.sf in sf_names)
        assert decoded[p.name] == _expected(p, values[p.name], has_sf), p.name
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("model_id", [103, 113, 123, 203, 701, 704])
async def test_unimplemented_points_are_absent(model_id: int, serve_image: Serve) -> None:
    """A model with nothing implemented: every point reads as None, never as a number."""
    async with serve_image([(model_id, {})]) as (_image, conn):
        smap = await discover(conn, 1, device_id="dev")
        dev = SunSpecDevice("dev", conn, 1, smap, ManualClock(datetime(2026, 5, 1, tzinfo=UTC)))
        decoded = (await dev.read_models(smap.models))[model_id]
    assert decoded
    assert all(v is None for v in decoded.values()), {
        k: v for k, v in decoded.items() if v is not None
    }


@pytest.mark.parametrize(
    ("points", "expected_w"),
    [
        ({"W": 1234, "W_SF": 0}, 1234.0),
        ({"W": 1234, "W_SF": -1}, 123.4),
        ({"W": 1234, "W_SF": 2}, 123400.0),
        ({"W": 1234}, None),  # scale factor 0x8000: not implemented → absent
        ({"W_SF": 0}, None),  # int16 0x8000
        ({"W": 1234, "W_SF": 11}, None),  # outside −10..10: a broken register, not 1.2e14
    ],
)
async def test_scale_factors_apply_and_an_absent_one_makes_the_value_absent(
    points: dict[str, Raw], expected_w: float | None, serve_image: Serve
) -> None:
    async with serve_image([(103, points)], base=40000) as (_image, conn):
        smap = await discover(conn, 1, device_id="inv")
        dev = SunSpecDevice("inv", conn, 1, smap, ManualClock(datetime(2026, 5, 1, tzinfo=UTC)))
        w = (await dev.read_models(smap.models))[103]["W"]
    assert w == (pytest.approx(expected_w) if expected_w is not None else None)


async def test_a_model_longer_than_125_registers_is_read_in_split_blocks() -> None:
    """Model 701 is 155 registers: more than one Modbus read may return."""
    unit = SunSpecImageUnit(SunSpecImage(40000, [(701, {"W": 1234, "W_SF": 0})]))
    gw = GatewayServer({1: unit})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            smap = await discover(conn, 1, device_id="der")
            dev = SunSpecDevice("der", conn, 1, smap, ManualClock(datetime(2026, 5, 1, tzinfo=UTC)))
            unit.read_log.clear()
            decoded = (await dev.read_models(smap.models))[701]
            reads = list(unit.read_log)
    finally:
        await gw.stop()
    assert decoded["W"] == 1234
    assert [count for _, _, count in reads] == [125, 30]
    assert reads[0][1] + 125 == reads[1][1]
