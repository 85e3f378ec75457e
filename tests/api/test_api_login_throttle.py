"""Logins under attack (SQLite and PostgreSQL): the per-account lockout, the per-address and
the global limits, ``X-Forwarded-For`` only from trusted proxies, and a full hashing pool.

The app's ``auth_clock`` is a :class:`ManualClock`, so locks and token buckets move only when
the test moves the clock. Each test prints its figures (attempts, refused) for the report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI

from api.app import create_app
from api.auth import Lockout
from api.limits import RateLimit, RateLimiter
from api.passwords import HashPool
from kernel.clock import ManualClock
from store import Store
from tests.api.conftest import FAST_HASHER, NOW, PASSWORD, settings_for

pytestmark = pytest.mark.usefixtures("accounts")

TOKEN = "/api/v1/auth/token"
PROXY = "10.9.0.2"


def figures(name: str, attempts: int, refused: int) -> None:
    print(f"\n{name}: attempts {attempts}, refused (429) {refused}")


@pytest.fixture
def clock(app: FastAPI) -> ManualClock:
    manual = ManualClock(NOW)
    app.state.waldstadt.auth_clock = manual
    return manual


def attempt(
    client: httpx.AsyncClient, username: str, password: str, **headers: str
) -> Awaitable[httpx.Response]:
    return client.post(TOKEN, data={"username": username, "password": password}, headers=headers)


async def test_an_account_locks_exponentially_and_refuses_even_its_right_password(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock, store: Store
) -> None:
    app.state.waldstadt.login_limiter = RateLimiter(RateLimit(1000, 1000))  # the lock alone
    codes = [(await attempt(client, "anna", "wrong")).status_code for _ in range(6)]
    assert codes == [401] * 6  # the 6th failure locks: the next attempt waits
    right = await attempt(client, "anna", PASSWORD)
    assert right.status_code == 429
    assert right.json()["detail"].startswith("account locked after 6 failed logins")
    assert int(right.headers["Retry-After"]) == 30  # 5 free failures, then 30 s
    clock.advance(29)
    assert (await attempt(client, "anna", PASSWORD)).status_code == 429
    clock.advance(1)
    wrong = await attempt(client, "anna", "wrong again")  # the 7th failure: doubled
    assert wrong.status_code == 401
    locked = await attempt(client, "anna", PASSWORD)
    assert (locked.status_code, int(locked.headers["Retry-After"])) == (429, 60)
    clock.advance(60)
    assert (await attempt(client, "anna", PASSWORD)).status_code == 200
    assert await store.users.login_lock("anna") is None  # a success clears the count
    # other accounts were never affected
    assert (await attempt(client, "ben", PASSWORD)).status_code == 200


def test_the_lockout_doubles_and_is_capped() -> None:
    lock = Lockout()
    assert [lock.lock_for(n).total_seconds() for n in range(1, 10)] == [
        0, 0, 0, 0, 0, 30, 60, 120, 240,
    ]  # fmt: skip
    assert lock.lock_for(10_000) == timedelta(hours=1)


async def test_rotating_x_forwarded_for_is_ignored_without_trusted_proxies(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    codes = [
        (
            await attempt(client, f"u{i}", "wrong", **{"X-Forwarded-For": f"198.51.100.{i}"})
        ).status_code
        for i in range(30)
    ]
    refused = codes.count(429)
    figures("XFF rotation, no trusted proxy", len(codes), refused)
    assert codes == [401] * 10 + [429] * 20  # 10 per address; the clock stands still


async def test_spraying_usernames_from_one_address_is_throttled(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    codes = [(await attempt(client, f"user{i:02d}", "Winter2026!")).status_code for i in range(60)]
    figures("username spraying, one address", len(codes), codes.count(429))
    assert codes == [401] * 10 + [429] * 50
    clock.advance(6)  # one attempt every 6 s afterwards
    assert (await attempt(client, "user99", "x")).status_code == 401
    assert (await attempt(client, "user98", "x")).status_code == 429


@pytest.fixture
def proxied(store: Store, store_url: str) -> FastAPI:
    """The app behind a reverse proxy at :data:`PROXY` that it trusts."""
    app = create_app(settings_for(store_url, trusted_proxies=f"{PROXY},10.8.0.0/16"), store=store)
    app.state.waldstadt.hasher = FAST_HASHER
    app.state.waldstadt.auth_clock = ManualClock(NOW)
    return app


def via_proxy(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(PROXY, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://waldstadt.test")


async def test_behind_a_trusted_proxy_the_real_client_is_limited_not_the_spoofed_one(
    proxied: FastAPI,
) -> None:
    async with via_proxy(proxied) as c:
        # the client claims a new address each time; the proxy appends the real one
        codes = [
            (await attempt(c, f"user{i}", "wrong",
                           **{"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.9, 10.8.1.1"}))
            .status_code
            for i in range(12)
        ]  # fmt: skip
        assert codes.count(429) == 2  # one real client: 10 attempts
        other = await attempt(c, "ben", PASSWORD, **{"X-Forwarded-For": "203.0.113.10"})
        assert other.status_code == 200  # another real client has its own attempts


async def test_spraying_from_many_addresses_meets_the_global_limit(proxied: FastAPI) -> None:
    proxied.state.waldstadt.login_global_limiter = RateLimiter(RateLimit(40, 5))
    async with via_proxy(proxied) as c:
        codes = [
            (await attempt(c, f"user{i:02d}", "Winter2026!",
                           **{"X-Forwarded-For": f"203.0.113.{i}"})).status_code
            for i in range(60)
        ]  # fmt: skip
    figures("username spraying, 60 addresses", len(codes), codes.count(429))
    assert codes == [401] * 40 + [429] * 20


async def test_x_forwarded_proto_of_a_trusted_proxy_makes_the_cookie_secure(
    proxied: FastAPI, client: httpx.AsyncClient
) -> None:
    async with via_proxy(proxied) as c:
        page = await c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in page.headers["set-cookie"]
        assert page.headers["strict-transport-security"] == "max-age=31536000"
    plain = await client.get("/login", headers={"X-Forwarded-Proto": "https"})  # untrusted
    assert "Secure" not in plain.headers["set-cookie"]
    assert "strict-transport-security" not in plain.headers


async def test_a_login_storm_beyond_the_hashing_pool_gets_429_not_a_stall(
    app: FastAPI, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    state = app.state.waldstadt
    state.login_limiter = RateLimiter(RateLimit(1000, 1000))
    slow = PasswordHasher(time_cost=2, memory_cost=32 * 1024, parallelism=1)  # ~50 ms a check
    state.hash_pool = HashPool(slow, concurrency=1, max_waiting=4)
    results = await asyncio.gather(
        *(attempt(client, f"storm{i}", "not the password") for i in range(20))
    )
    codes = [r.status_code for r in results]
    figures("login storm, pool of 1 with 4 waiting", len(codes), codes.count(429))
    assert codes.count(401) + codes.count(429) == 20
    assert codes.count(429) >= 10  # beyond 1 running + 4 waiting: refused at once
    busy = next(r for r in results if r.status_code == 429)
    assert busy.json()["detail"] == "too many logins at the moment"
    assert int(busy.headers["Retry-After"]) >= 1
