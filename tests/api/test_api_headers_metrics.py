"""Security headers on every kind of response, and who may read ``/metrics``."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.middleware import API_CSP, DOCS_CSP, forwarded_client
from store import Store
from tests.api.conftest import FAST_HASHER, TinyRuntime, settings_for

METRICS_TOKEN = "metrics-token-0123456789abcdef-0123"


def client_at(app: FastAPI, host: str, scheme: str = "http") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 4711))
    return httpx.AsyncClient(transport=transport, base_url=f"{scheme}://waldstadt.test")


@pytest.mark.parametrize(
    ("path", "csp"),
    [
        ("/health", API_CSP),
        ("/api/v1/me", API_CSP),  # a 401
        ("/docs", DOCS_CSP),
        ("/login", "default-src 'self'; script-src 'self'"),  # the pages' own
        ("/no-such-page", API_CSP),
    ],
)
async def test_every_response_carries_the_security_headers(
    app: FastAPI, path: str, csp: str
) -> None:
    async with client_at(app, "127.0.0.1") as c:
        r = await c.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["content-security-policy"].startswith(csp)
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "strict-transport-security" not in r.headers  # plain http


async def test_hsts_on_https_only_and_configurable(store: Store, store_url: str) -> None:
    on = create_app(settings_for(store_url), store=store)
    async with client_at(on, "127.0.0.1", "https") as c:
        assert (await c.get("/health")).headers["strict-transport-security"] == "max-age=31536000"
    off = create_app(settings_for(store_url, hsts_max_age_s=0), store=store)
    async with client_at(off, "127.0.0.1", "https") as c:
        assert "strict-transport-security" not in (await c.get("/health")).headers


async def test_metrics_without_a_token_answer_loopback_only(app: FastAPI) -> None:
    for host in ("127.0.0.1", "::1"):
        async with client_at(app, host) as c:
            r = await c.get("/metrics")
            assert r.status_code == 200, host
            assert "waldstadt_http_requests_total" in r.text
    async with client_at(app, "192.0.2.44") as c:
        r = await c.get("/metrics")
    assert r.status_code == 403
    assert "WALDSTADT_METRICS_TOKEN" in r.json()["detail"]


async def test_metrics_with_a_token_want_it_from_everyone(store: Store, store_url: str) -> None:
    app = create_app(
        settings_for(store_url, metrics_token=METRICS_TOKEN), store=store, runtime=TinyRuntime()
    )
    app.state.waldstadt.hasher = FAST_HASHER
    for host in ("127.0.0.1", "192.0.2.44"):
        async with client_at(app, host) as c:
            assert (await c.get("/metrics")).status_code == 401
            wrong = {"Authorization": "Bearer " + "x" * len(METRICS_TOKEN)}
            assert (await c.get("/metrics", headers=wrong)).status_code == 401
            right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
            r = await c.get("/metrics", headers=right)
            assert r.status_code == 200
            assert "waldstadt_cycle_seconds" in r.text


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (["203.0.113.9"], "203.0.113.9"),
        (["198.51.100.1, 203.0.113.9"], "203.0.113.9"),  # the left one is the client's claim
        (["198.51.100.1, 203.0.113.9, 10.8.1.1"], "203.0.113.9"),  # 10.8/16 are proxies too
        (["198.51.100.1", "203.0.113.9"], "203.0.113.9"),  # two headers count as one list
        (["10.8.1.2, 10.8.1.1"], "10.8.1.2"),  # all proxies: the left-most
        ([], "10.9.0.2"),  # no header: the peer itself
    ],
)
def test_the_client_behind_trusted_proxies(header: list[str], client: str) -> None:
    from ipaddress import ip_network

    nets = (ip_network("10.9.0.2"), ip_network("10.8.0.0/16"))
    assert forwarded_client("10.9.0.2", header, nets) == client
