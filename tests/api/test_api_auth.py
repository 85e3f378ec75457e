"""Logging in, bearer tokens (missing, bad, expired, of a disabled account), rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI

from api.auth import TOKEN_TTL, Principal, Role, TokenSigner
from api.limits import RateLimit, RateLimiter
from kernel.errors import AuthError
from store import Store
from tests.api.conftest import FAST_HASHER, NOW, PASSWORD, bearer, login, session_of

pytestmark = pytest.mark.usefixtures("accounts")


async def test_login_returns_a_token_that_identifies_the_member(
    client: httpx.AsyncClient,
) -> None:
    token = await login(client, "anna")
    r = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == {"username": "anna", "role": "member", "member_id": "m01"}


@pytest.mark.parametrize(
    ("username", "password"), [("anna", "wrong password"), ("nobody", PASSWORD)]
)
async def test_bad_credentials_are_401(
    client: httpx.AsyncClient, username: str, password: str
) -> None:
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 401
    assert r.json() == {"detail": "wrong username or password"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


async def test_login_form_without_username_is_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/api/v1/auth/token", data={"password": PASSWORD})
    assert r.status_code == 422
    assert r.json() == {"detail": [{"field": "body.username", "reason": "Field required"}]}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "not authenticated"),
        ({"Authorization": "Bearer nonsense"}, "malformed token"),
        ({"Authorization": "Basic YW5uYTp4"}, "not authenticated"),
    ],
)
async def test_missing_or_malformed_token_is_401(
    client: httpx.AsyncClient, headers: dict[str, str], reason: str
) -> None:
    r = await client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["detail"].startswith(reason)


async def test_token_signed_with_another_key_is_401(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/me", headers=bearer("anna", secret="another-key-0123456789"))
    assert r.status_code == 401
    assert r.json() == {"detail": "bad token signature"}


async def test_edited_token_payload_is_401(client: httpx.AsyncClient) -> None:
    token = bearer("anna")["Authorization"].removeprefix("Bearer ")
    version, _payload, sig = token.split(".")
    forged = TokenSigner("x" * 20).issue(
        Principal("anna", Role.OPERATOR, None), session_id=session_of("anna"), now=datetime.now(UTC)
    )
    forged_payload = forged.access_token.split(".")[1]
    r = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {version}.{forged_payload}.{sig}"}
    )
    assert r.status_code == 401
    assert r.json() == {"detail": "bad token signature"}


async def test_expired_token_is_401(client: httpx.AsyncClient) -> None:
    issued_long_ago = datetime.now(UTC) - TOKEN_TTL - timedelta(seconds=1)
    r = await client.get("/api/v1/me", headers=bearer("anna", now=issued_long_ago))
    assert r.status_code == 401
    assert r.json() == {"detail": "token expired"}
    still_valid = datetime.now(UTC) - TOKEN_TTL + timedelta(minutes=1)
    assert (await client.get("/api/v1/me", headers=bearer("anna", now=still_valid))).is_success


async def test_disabling_an_account_stops_its_tokens_and_logins(
    client: httpx.AsyncClient, store: Store
) -> None:
    headers = bearer("ben")
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    await store.users.set_disabled("ben", True, now=NOW)
    r = await client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401
    r = await client.post("/api/v1/auth/token", data={"username": "ben", "password": PASSWORD})
    assert r.status_code == 401
    assert r.json() == {"detail": "account disabled"}


async def test_login_attempts_are_rate_limited_per_address(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    app.state.waldstadt.login_limiter = RateLimiter(RateLimit(capacity=3, refill_per_s=0.01))
    codes = []
    for name in ("anna", "ben", "olga", "lena"):  # any usernames: the address is limited
        r = await client.post("/api/v1/auth/token", data={"username": name, "password": "bad"})
        codes.append(r.status_code)
    assert codes == [401, 401, 401, 429]
    assert int(r.headers["Retry-After"]) >= 1
    # another address still has its own attempts
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://waldstadt.test") as other:
        await login(other, "ben")


async def test_api_calls_are_rate_limited_per_account(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    app.state.waldstadt.api_limiter = RateLimiter(RateLimit(capacity=5, refill_per_s=0.01))
    anna, ben = bearer("anna"), bearer("ben")
    codes = [(await client.get("/api/v1/me", headers=anna)).status_code for _ in range(6)]
    assert codes == [200] * 5 + [429]
    assert (await client.get("/api/v1/me", headers=ben)).status_code == 200


def test_token_bucket_refills_over_time() -> None:
    limiter = RateLimiter(RateLimit(capacity=2, refill_per_s=1))
    assert [limiter.take("k", 0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert limiter.take("k", 1.0) == 0.0
    assert limiter.take("k", 1.0) > 0


def test_signer_rejects_garbage_and_round_trips() -> None:
    signer = TokenSigner("k" * 20)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    issued = signer.issue(Principal("x", Role.AUDITOR), session_id="s1", now=now)
    claims = signer.verify(issued.access_token, now=now)
    assert claims.principal == Principal("x", Role.AUDITOR)
    assert (claims.session_id, claims.credentials_version, claims.kind) == ("s1", 0, "api")
    assert claims.expires_at == issued.expires_at == now + TOKEN_TTL
    for bad in ("", "v2..", "v1.a.b", "v2.!!.x"):
        with pytest.raises(AuthError):
            signer.verify(bad, now=now)


async def test_a_device_account_cannot_use_the_web_api(
    client: httpx.AsyncClient, store: Store
) -> None:
    await store.users.create("meter-7", FAST_HASHER.hash(PASSWORD), "device", now=NOW)
    r = await client.post("/api/v1/auth/token", data={"username": "meter-7", "password": PASSWORD})
    assert r.status_code == 401
    assert r.json() == {"detail": "role 'device' cannot use the web API"}
