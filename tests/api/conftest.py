"""Fixtures of the API tests: an app on a real store (SQLite and PostgreSQL), its client, and
accounts of every role.

The app gets the ``store`` fixture's opened Store, so no lifespan is needed; tests of the
lifespan itself run it explicitly. Passwords are hashed with argon2id at a low cost (the
production default takes ~130 ms per hash); the code path is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI

from api.accounts import add_user
from api.app import create_app
from api.auth import Principal, Role, TokenSigner
from api.runtime import LightingControl
from kernel.clock import ManualClock
from scheduler.health import Check, Readiness
from scheduler.live import LiveView
from scheduler.observability import Metrics
from scheduler.settings import Settings
from scheduler.site import Site
from store import Store
from store.audit import AuditKey
from store.engine import write_tx
from store.schema import user_sessions

SECRET = "test-secret-key-0123456789abcdef"
AUDIT_KEY = "test-audit-key-0123456789abcdef-0123"
#: The key the apps of these tests chain the audit log with.
AUDIT = AuditKey.from_text(AUDIT_KEY)
PASSWORD = "correct horse battery"
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

#: username → (role, member id); "anna" and "ben" are members of the same community.
ACCOUNTS: dict[str, tuple[Role, str | None]] = {
    "olga": (Role.OPERATOR, None),
    "anna": (Role.MEMBER, "m01"),
    "ben": (Role.MEMBER, "m02"),
    "lena": (Role.LIGHTING_ENGINEER, None),
    "aldo": (Role.AUDITOR, None),
}
ROLE_USER: dict[Role, str] = {
    Role.OPERATOR: "olga",
    Role.MEMBER: "anna",
    Role.LIGHTING_ENGINEER: "lena",
    Role.AUDITOR: "aldo",
}


@dataclass
class TinyRuntime:
    """The smallest thing that satisfies :class:`api.runtime.Runtime` (a real clock, real
    metrics, readiness from the checks given; no site, no lighting, no cycle)."""

    checks: tuple[Check, ...] = ()
    clock: ManualClock = field(default_factory=lambda: ManualClock(NOW))
    metrics: Metrics = field(default_factory=Metrics)

    site: Site | None = None
    lighting: LightingControl | None = None

    async def readiness(self) -> Readiness:
        return Readiness(self.checks)

    def live(self) -> LiveView:
        return LiveView(None)


def settings_for(url: str, **extra: Any) -> Settings:
    return Settings(
        mode="production",
        database_url=url,
        secret_key=SECRET,  # type: ignore[arg-type]
        audit_key=AUDIT_KEY,  # type: ignore[arg-type]
        **extra,
    )


def session_of(username: str) -> str:
    """The session that :func:`bearer`'s tokens of ``username`` name (made by ``accounts``)."""
    return f"test-session-{username}"


@pytest.fixture
def app(store: Store, store_url: str) -> FastAPI:
    app = create_app(settings_for(store_url), store=store)
    app.state.waldstadt.hasher = FAST_HASHER
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://waldstadt.test") as c:
        yield c


@pytest.fixture
async def accounts(store: Store) -> dict[str, tuple[Role, str | None]]:
    """The accounts of :data:`ACCOUNTS`, each with one open API session (a day long) that
    :func:`bearer` names, as a login would have made it."""
    now = datetime.now(UTC)
    for username, (role, member_id) in ACCOUNTS.items():
        await add_user(
            store, username, PASSWORD, role, now=NOW, member_id=member_id, hasher=FAST_HASHER
        )
        async with write_tx(store.engine, "test session") as conn:
            await conn.execute(
                user_sessions.insert().values(
                    session_id=session_of(username),
                    username=username,
                    kind="api",
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                    revoked_at=None,
                )
            )
    return ACCOUNTS


def bearer(username: str, *, now: datetime | None = None, secret: str = SECRET) -> dict[str, str]:
    """An Authorization header for an account of :data:`ACCOUNTS`, signed like a login's and
    naming the account's session of the ``accounts`` fixture."""
    role, member_id = ACCOUNTS[username]
    issued = TokenSigner(secret).issue(
        Principal(username, role, member_id),
        session_id=session_of(username),
        now=now or datetime.now(UTC),
    )
    return {"Authorization": f"Bearer {issued.access_token}"}


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve_app(app: FastAPI) -> AsyncIterator[int]:
    """``app`` on a real uvicorn (the one ``waldstadt run`` uses) on a free port."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                       proxy_headers=False)
    )  # fmt: skip
    task = asyncio.create_task(server.serve(), name="test uvicorn")
    try:
        for _ in range(1000):  # uvicorn says when it listens by a flag only
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await task
