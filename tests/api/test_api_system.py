"""/health, /ready and /metrics, with and without a runtime; errors as JSON; the lifespan."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from api.app import create_app
from scheduler.health import Check
from store import Store
from tests.api.conftest import TinyRuntime, settings_for
from tests.db_fixtures import create_pg_database, drop_pg_database, pg_url


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_ready_without_runtime_checks_the_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True


async def test_ready_without_an_open_store_is_degraded(store_url: str) -> None:
    app = create_app(settings_for(store_url))  # lifespan not run: no store
    async with client_for(app) as c:
        r = await c.get("/ready")
    assert r.status_code == 503
    assert r.json()["status"] == "degraded"
    assert r.json()["reasons"] == ["database: not open"]


async def test_ready_without_runtime_is_degraded_when_the_database_went_away() -> None:
    """The probe is a real query (Store.ping): a database dropped under an open store is 503."""
    name = await create_pg_database()
    url = pg_url(name)
    async with Store(url) as store:
        app = create_app(settings_for(url), store=store)
        async with client_for(app) as c:
            before = await c.get("/ready")
            await drop_pg_database(name)
            after = await c.get("/ready")
    assert before.status_code == 200
    assert after.status_code == 503
    [reason] = after.json()["reasons"]
    assert reason.startswith("database: unreachable: ")
    assert after.json()["checks"]["database"]["ok"] is False


async def test_ready_with_a_runtime_reports_its_reasons(store: Store, store_url: str) -> None:
    runtime = TinyRuntime(
        (Check("broker", False, "not connected"), Check("database", True, "reachable"))
    )
    app = create_app(settings_for(store_url), runtime=runtime, store=store)
    async with client_for(app) as c:
        degraded = await c.get("/ready")
        runtime.checks = (Check("broker", True, "connected"),)
        ok = await c.get("/ready")
    assert degraded.status_code == 503
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["reasons"] == ["broker: not connected"]
    assert ok.status_code == 200
    assert ok.json() == {
        "status": "ok",
        "reasons": [],
        "checks": {"broker": {"ok": True, "detail": "connected"}},
    }


async def test_metrics_render_the_runtime_registry_and_http_counters(
    store: Store, store_url: str
) -> None:
    runtime = TinyRuntime(())
    runtime.metrics.readings_ingested.inc(7)
    app = create_app(settings_for(store_url), runtime=runtime, store=store)
    async with client_for(app) as c:
        await c.get("/health")
        await c.get("/health")
        await c.get("/no/such/path")
        r = await c.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "waldstadt_readings_ingested_total 7.0" in text
    assert 'waldstadt_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
    assert (
        'waldstadt_http_requests_total{method="GET",route="(unmatched)",status="404"} 1.0' in text
    )


async def test_metrics_without_runtime_use_the_apps_own_registry(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert "waldstadt_cycle_seconds" in r.text


async def test_unknown_path_is_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not Found"}


async def test_openapi_and_docs_are_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/health" in schema["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_lifespan_opens_and_closes_its_own_store(store_url: str) -> None:
    app = create_app(settings_for(store_url))
    state = app.state.waldstadt
    async with app.router.lifespan_context(app), client_for(app) as c:
        assert state.store is not None
        r = await c.get("/ready")
        assert r.status_code == 200
    assert state.store is None


async def test_lifespan_leaves_a_given_store_open(store: Store, store_url: str) -> None:
    app = create_app(settings_for(store_url), store=store)
    async with app.router.lifespan_context(app):
        pass
    assert app.state.waldstadt.store is store
    assert store.engine is not None  # still open
