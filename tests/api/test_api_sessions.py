"""Tokens die when they should (SQLite and PostgreSQL): a logout, a password change, disabling
and deleting an account (also when an account of the same name is created again) each end
the API tokens and the page sessions issued before; a page session is never an API token."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from api.accounts import add_user, change_password
from api.auth import Role
from store import Store
from tests.api.conftest import FAST_HASHER, NOW, PASSWORD, login

pytestmark = pytest.mark.usefixtures("accounts")

NEW_PASSWORD = "another long passphrase"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def page_session(app: FastAPI, username: str, password: str = PASSWORD) -> httpx.Cookies:
    """Log in through the login page; the cookies of that browser."""
    import re

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://waldstadt.test") as c:
        page = await c.get("/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf is not None
        r = await c.post(
            "/login", data={"username": username, "password": password, "csrf": csrf.group(1)}
        )
        assert r.status_code == 303, r.text
        return c.cookies


async def page_status(app: FastAPI, cookies: httpx.Cookies) -> int:
    """200 if the cookies still open the operator page, 303 (to the login) if not."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://waldstadt.test", cookies=cookies
    ) as c:
        return (await c.get("/audit")).status_code


async def test_logout_ends_only_its_own_token(client: httpx.AsyncClient) -> None:
    first, second = await login(client, "olga"), await login(client, "olga")
    r = await client.post("/api/v1/auth/logout", headers=auth(first))
    assert r.status_code == 204
    refused = await client.get("/api/v1/me", headers=auth(first))
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("session ended (logged out")
    assert (await client.post("/api/v1/auth/logout", headers=auth(first))).status_code == 401
    assert (await client.get("/api/v1/me", headers=auth(second))).status_code == 200


async def change(store: Store, how: str) -> None:
    """The credentials change named ``how`` of olga's account."""
    if how == "password change":
        await change_password(store, "olga", NEW_PASSWORD, now=NOW, hasher=FAST_HASHER)
    elif how == "disable":
        await store.users.set_disabled("olga", True, now=NOW)
    elif how == "disable and enable again":
        await store.users.set_disabled("olga", True, now=NOW)
        await store.users.set_disabled("olga", False, now=NOW)
    elif how == "delete and re-create":
        await store.users.delete("olga")
        await add_user(store, "olga", PASSWORD, Role.OPERATOR, now=NOW, hasher=FAST_HASHER)
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("password change", "session ended (logged out or credentials changed)"),
        ("disable", "session ended (logged out or credentials changed)"),
        ("disable and enable again", "session ended (logged out or credentials changed)"),
        ("delete and re-create", "session ended (the account was removed)"),
    ],
)
async def test_a_credentials_change_ends_every_token_and_page_session(
    app: FastAPI, client: httpx.AsyncClient, store: Store, how: str, reason: str
) -> None:
    tokens = [await login(client, "olga") for _ in range(2)]
    cookies = await page_session(app, "olga")
    assert await page_status(app, cookies) == 200
    await change(store, how)
    for token in tokens:
        r = await client.get("/api/v1/me", headers=auth(token))
        assert r.status_code == 401, how
        assert r.json()["detail"].startswith(reason), r.json()
    assert await page_status(app, cookies) == 303
    if how != "disable":  # the account logs in anew (with its current password)
        password = NEW_PASSWORD if how == "password change" else PASSWORD
        fresh = await login(client, "olga", password)
        assert (await client.get("/api/v1/me", headers=auth(fresh))).status_code == 200


async def test_an_erased_member_s_tokens_die_and_a_new_account_of_the_name_gets_none(
    client: httpx.AsyncClient, store: Store
) -> None:
    token = await login(client, "anna")
    assert await store.users.delete_member_accounts("m01") == ["anna"]
    await add_user(store, "anna", PASSWORD, Role.MEMBER, now=NOW, member_id="m01",
                   hasher=FAST_HASHER)  # fmt: skip
    assert (await client.get("/api/v1/me", headers=auth(token))).status_code == 401


async def test_the_page_session_is_not_an_api_token_nor_the_other_way_round(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    cookies = await page_session(app, "olga")
    session = cookies["waldstadt_session"]
    r = await client.get("/api/v1/me", headers=auth(session))
    assert r.status_code == 401
    assert r.json()["detail"] == "a page session token is not valid here"
    api_token = await login(client, "olga")
    jar = httpx.Cookies()
    jar.set("waldstadt_session", api_token, domain="waldstadt.test")
    assert await page_status(app, jar) == 303


async def test_a_token_signed_with_the_public_demo_secret_is_refused(
    client: httpx.AsyncClient,
) -> None:
    """The attack of issue 13 (a forged ten-year operator token) against a real key."""
    from api.auth import Principal, TokenSigner

    forged = TokenSigner("changeme").issue(
        Principal("olga", Role.OPERATOR), session_id="x", now=datetime.now(UTC)
    )
    r = await client.get("/api/v1/me", headers=auth(forged.access_token))
    assert (r.status_code, r.json()["detail"]) == (401, "bad token signature")
