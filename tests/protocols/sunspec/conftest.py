"""Serve SunSpec images from real pymodbus servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from protocols.modbus.connection import ModbusConnection
from sims.modbus.server import GatewayServer
from sims.modbus.sunspec_image import Raw, SunSpecImage, SunSpecImageUnit

Serve = Callable[..., AbstractAsyncContextManager[tuple[SunSpecImage, ModbusConnection]]]


@asynccontextmanager
async def _serve_image(
    models: Sequence[tuple[int, Mapping[str, Raw]]], base: int = 40000
) -> AsyncIterator[tuple[SunSpecImage, ModbusConnection]]:
    image = SunSpecImage(base, models)
    gw = GatewayServer({1: SunSpecImageUnit(image)})
    await gw.start()
    try:
        async with ModbusConnection(gw.host, gw.port, timeout_s=2.0) as conn:
            yield image, conn
    finally:
        await gw.stop()


@pytest.fixture
def serve_image() -> Serve:
    """``async with serve_image([(1, {...}), (103, {...})], base=40000) as (image, conn)``."""
    return _serve_image
