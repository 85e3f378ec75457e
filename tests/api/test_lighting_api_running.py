"""The lighting API with the lighting running: a luminaire's level and its reason chain come
from the running decisions, and an edit is applied to the running lighting at once; without
it the reason route says so."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.runtime import LightingControl
from kernel.clock import ManualClock
from lighting.config import LightingConfig
from scheduler.health import Readiness
from scheduler.lighting import LightingRuntime as RunningLighting
from scheduler.lighting import LightingServiceConfig
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.site import Site, site_from_data
from store import Store
from store.lighting_config import effective_lighting, lighting_hash
from tests.api.conftest import FAST_HASHER, bearer, settings_for
from tests.api.lighting_helpers import LIGHT, audit_of, document, seed, steps
from tests.scheduler.lighting.harness import running_service

pytestmark = pytest.mark.usefixtures("accounts")


async def test_reason_without_a_running_service_says_so(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.get(f"{LIGHT}/luminaires/l1/reason", headers=bearer("lena"))
    assert r.status_code == 404
    assert "no lighting service runs" in r.json()["detail"]
    r = await client.get(f"{LIGHT}/luminaires/l9/reason", headers=bearer("lena"))
    assert r.json()["detail"] == "no luminaire 'l9'"


@dataclass
class LightingRuntime:
    """A runtime like ``app.service.Service`` for the lighting routes: its clock, its site
    (``site.lighting``) and the real lighting running in its cycle on the broker."""

    clock: ManualClock
    site: Site | None
    lighting: LightingControl | None = None
    metrics: Metrics = field(default_factory=Metrics)

    async def readiness(self) -> Readiness:
        return Readiness(())

    def live(self) -> LiveView:
        return LiveView(None)


@contextlib.asynccontextmanager
async def running_lighting(
    broker: Any, unique: str, clock: ManualClock, config: LightingConfig
) -> AsyncIterator[RunningLighting]:
    assert config.site is not None
    service_config = LightingServiceConfig(prefix=f"{unique}/lights")
    async with running_service(
        broker, f"{unique}-api-lighting", clock, config.site, service_config
    ) as lighting:
        yield lighting


async def test_a_running_service_explains_levels_and_takes_edits(
    store: Store, store_url: str, mqtt_broker: Any, unique: str
) -> None:
    clock = ManualClock(datetime(2026, 11, 25, 22, 30, tzinfo=UTC))  # 23:30 in Iserlohn
    info = {"name": "Iserlohn", "latitude": 51.37, "longitude": 7.70}
    site = site_from_data({"site": info, "lighting": document()})
    site_file = site.lighting
    assert site_file is not None
    runtime = LightingRuntime(clock, site)
    app: FastAPI = create_app(settings_for(store_url), runtime=runtime, store=store)
    app.state.waldstadt.hasher = FAST_HASHER
    transport = httpx.ASGITransport(app=app)
    async with (
        running_lighting(mqtt_broker, unique, clock, site_file) as service,
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        runtime.lighting = service
        lena = bearer("lena")
        config = (await client.get(f"{LIGHT}/config", headers=lena)).json()
        assert (config["source"], config["version"]) == ("site file", None)

        r = await client.get(f"{LIGHT}/luminaires/l2/reason", headers=bearer("olga"))
        assert r.status_code == 200, r.text
        reason = r.json()
        decision = service.decisions["l2"]
        assert reason["reasons"] == list(decision.reasons)
        assert reason["level_pct"] == decision.level_pct
        assert "program 'Wohnstraße' step 'evening' 70 %" in reason["reason_text"]
        seg = (await client.get(f"{LIGHT}/segments/s1", headers=lena)).json()
        assert seg["live"]["step"] == "evening"
        lum = (await client.get(f"{LIGHT}/luminaires/l2", headers=lena)).json()
        assert lum["level_pct"] == decision.level_pct

        r = await client.put(
            f"{LIGHT}/programs/Wohnstraße", json={"steps": steps(35)}, headers=lena
        )
        assert r.status_code == 200, r.text
        assert r.json()["applied"] is True
        assert "the lighting service runs it" in r.json()["detail"]
        assert "step 'evening' 35 %" in service.decisions["l2"].reason_text
        after = (await client.get(f"{LIGHT}/luminaires/l2/reason", headers=lena)).json()
        assert "step 'evening' 35 %" in after["reason_text"]
        assert after["level_pct"] != reason["level_pct"]

        # the stored version is based on the site file, so it applies at the next start
        stored = await store.lighting_config.latest()
        assert stored is not None
        assert stored.base_hash == lighting_hash(site_file)
        chosen = await effective_lighting(store.lighting_config, site_file)
        assert chosen is not None
        assert chosen.version == stored.version
        [update] = await audit_of(store, "lighting.program.update")
        assert update.result == "applied"
        assert date(2026, 11, 25) == clock.now().date()
