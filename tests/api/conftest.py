"""Fixtures of the API tests: an app on a real store (SQLite and PostgreSQL), its client.

The app gets the ``store`` fixture's opened Store, so no lifespan is needed; tests of the
lifespan itself run it explicitly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from scheduler.settings import Settings
from store import Store

SECRET = "test-secret-key-0123456789abcdef"


def settings_for(url: str) -> Settings:
    return Settings(mode="production", database_url=url, secret_key=SECRET)  # type: ignore[arg-type]


@pytest.fixture
def app(store: Store, store_url: str) -> FastAPI:
    return create_app(settings_for(store_url), store=store)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://waldstadt.test") as c:
        yield c
