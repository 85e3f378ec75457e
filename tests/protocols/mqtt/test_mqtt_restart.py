"""F4: the broker restarts in the middle of a stream of QoS 1 readings -- none is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from kernel.readings import Reading
from protocols.mqtt import (
    Backoff,
    Bus,
    BusConfig,
    HealthState,
    Inbound,
    TelemetryPayload,
    encode_telemetry,
    subscribe_telemetry,
    telemetry_topic,
)

T0 = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
N = 1000


async def eventually(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 -- polls state that several tasks change
            await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_broker_restart_mid_stream_loses_no_reading(
    restartable_broker: object, unique: str
) -> None:
    broker = restartable_broker
    backoff = Backoff(initial_s=0.05, cap_s=0.5)

    def cfg(client_id: str) -> BusConfig:
        return BusConfig(
            client_id=client_id,
            host=broker.host,  # type: ignore[attr-defined]
            port=broker.port,  # type: ignore[attr-defined]
            backoff=backoff,
        )

    seqs: list[int] = []
    sub_states: list[HealthState] = []
    queued_while_down: list[int] = []

    async def sink(readings: list[Reading], inbound: Inbound[TelemetryPayload]) -> None:
        for r in readings:
            assert r.value is not None
            seqs.append(int(r.value))

    async with Bus(cfg(f"ingest-{unique}")) as sub, Bus(cfg(f"meter-{unique}")) as pub:
        await subscribe_telemetry(sub, sink, prefix=unique)
        await sub.wait_connected()
        await pub.wait_connected()

        async def produce() -> None:
            for i in range(N):
                ts = T0 + timedelta(seconds=i)
                await pub.publish(
                    telemetry_topic("meter-1", unique), encode_telemetry(ts, {"seq_count": i})
                )
                if i % 5 == 0:
                    await asyncio.sleep(0.005)  # a stream, not a burst: ~1 s or more

        async def watch() -> None:
            while True:
                sub_states.append(sub.health.state)
                if pub.health.state is HealthState.DEGRADED:
                    queued_while_down.append(pub.health.outbox)
                await asyncio.sleep(0.01)

        async with asyncio.TaskGroup() as tg:
            producer = tg.create_task(produce(), name="producer")
            watcher = tg.create_task(watch(), name="health-watcher")
            await eventually(lambda: len(seqs) >= N // 3)
            await asyncio.to_thread(broker.stop)  # type: ignore[attr-defined]
            await eventually(lambda: pub.health.state is HealthState.DEGRADED, 30)
            await eventually(lambda: sub.health.state is HealthState.DEGRADED, 30)
            assert pub.health.reason
            await asyncio.sleep(0.3)  # the producer keeps going; the outbox holds it
            await asyncio.to_thread(broker.start)  # type: ignore[attr-defined]
            await producer
            await pub.flush(60)
            await eventually(lambda: set(seqs) >= set(range(N)), 60)
            watcher.cancel()

        assert sub.health.state is HealthState.CONNECTED
        assert sub.health.connects >= 2
        assert pub.health.connects >= 2
    assert set(seqs) == set(range(N))  # nothing lost; duplicates are allowed (at-least-once)
    assert len(seqs) - N < N // 2
    assert HealthState.DEGRADED in sub_states
    assert max(queued_while_down) > 0  # the publisher kept readings while the broker was away
