"""``waldstadt users add|list|disable`` on a Typer app built here, and the demo accounts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
import typer
from typer.testing import CliRunner

from api.accounts import DEMO_USERS, ensure_demo_users
from api.app import create_app
from app.commands.users import register
from kernel.errors import ConfigError
from store import Store
from tests.api.conftest import AUDIT, AUDIT_KEY, FAST_HASHER, NOW, SECRET, settings_for

Invoke = Callable[..., tuple[int, str]]


@pytest.fixture
def invoke(store_url: str) -> Invoke:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test root"""

    register(app)
    runner = CliRunner()
    env = {
        "WALDSTADT_DATABASE_URL": store_url,
        "WALDSTADT_SECRET_KEY": SECRET,
        "WALDSTADT_AUDIT_KEY": AUDIT_KEY,
    }

    def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
        result = runner.invoke(app, list(args), input=stdin, env=env)
        return result.exit_code, result.output

    return run


def users_in(url: str) -> list[tuple[str, str, str | None, bool]]:
    async def read() -> list[tuple[str, str, str | None, bool]]:
        async with Store(url) as store:
            return [(u.username, u.role, u.member_id, u.disabled) for u in await store.users.all()]

    return asyncio.run(read())


def test_add_list_disable(invoke: Invoke, store_url: str) -> None:
    code, out = invoke(
        "users",
        "add",
        "anna",
        "--role",
        "member",
        "--member",
        "m01",
        "--password-stdin",
        stdin="a long password\n",
    )
    assert (code, out.strip()) == (0, "created anna (member) for member m01")
    code, out = invoke(
        "users", "add", "olga", "--role", "operator", stdin="gate-keeper-7731\ngate-keeper-7731\n"
    )
    assert code == 0, out
    assert users_in(store_url) == [
        ("anna", "member", "m01", False),
        ("olga", "operator", None, False),
    ]
    code, out = invoke("users", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["anna", "member", "m01", "active"]
    assert lines[2].split() == ["olga", "operator", "-", "active"]
    code, out = invoke("users", "disable", "olga")
    assert (code, out.strip()) == (0, "disabled olga")
    assert users_in(store_url)[1] == ("olga", "operator", None, True)
    assert audit_in(store_url) == [
        ("user.add", "user:anna", None, {"role": "member", "member_id": "m01"}),
        ("user.add", "user:olga", None, {"role": "operator", "member_id": None}),
        ("user.disable", "user:olga", {"disabled": False}, {"disabled": True}),
    ]


BAD_INPUT: list[tuple[list[str], str, str]] = [
    (["x", "--role", "member"], "long enough pw\n", "'member'"),
    (["x", "--role", "king"], "long enough pw\n", "'role'"),
    (["x", "--role", "auditor", "--member", "m1"], "long enough pw\n", "'member'"),
    (["bad name", "--role", "auditor"], "long enough pw\n", "'username'"),
    (["x", "--role", "auditor"], "short\n", "'password'"),
    (["x", "--role", "auditor"], "12345678\n", "'password'"),
    (["x", "--role", "auditor"], "password\n", "'password'"),
    (["x", "--role", "auditor"], "Password1234!\n", "'password'"),  # common + suffix
    (["x", "--role", "auditor"], "1qaz2wsx3edc\n", "'password'"),  # common, 12 long
    (["x", "--role", "auditor"], "abababababababab\n", "'password'"),
]


def test_add_refuses_bad_input_naming_the_field(invoke: Invoke, store_url: str) -> None:
    for args, stdin, names in BAD_INPUT:
        code, out = invoke("users", "add", *args, "--password-stdin", stdin=stdin)
        assert code == 2, args
        assert names in out, (args, out)
    assert users_in(store_url) == []


def test_taken_username_and_unknown_user_are_errors(invoke: Invoke) -> None:
    pw = "a long enough password\n"
    assert invoke("users", "add", "x", "--role", "auditor", "--password-stdin", stdin=pw)[0] == 0
    code, out = invoke("users", "add", "x", "--role", "auditor", "--password-stdin", stdin=pw)
    assert code == 2
    assert "already taken" in out
    code, out = invoke("users", "disable", "nobody")
    assert code == 2
    assert "no such user" in out


def audit_in(url: str) -> list[tuple[str, str, object, object]]:
    async def read() -> list[tuple[str, str, object, object]]:
        async with Store(url) as store:
            assert (await store.audit.verify(AUDIT)).ok
            return [
                (r.entry.action, r.entry.target, r.entry.old_value, r.entry.new_value)
                for r in await store.audit.records()
            ]

    return asyncio.run(read())


async def test_demo_users_log_in_with_their_printed_passwords(store: Store, store_url: str) -> None:
    logins = await ensure_demo_users(store, "h01", now=NOW, hasher=FAST_HASHER)
    assert [(u, r) for u, _, r in logins] == [(u, r.value) for u, _, r in DEMO_USERS]
    await store.users.set_disabled("member", True, now=NOW)
    again = await ensure_demo_users(store, "h01", now=NOW, hasher=FAST_HASHER)
    assert again == logins
    app = create_app(settings_for(store_url), store=store)
    app.state.waldstadt.hasher = FAST_HASHER
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for username, password, role in logins:
            r = await c.post(
                "/api/v1/auth/token", data={"username": username, "password": password}
            )
            assert r.status_code == 200, (username, r.text)
            me = await c.get(
                "/api/v1/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
            )
            assert me.json()["role"] == role
            assert me.json()["member_id"] == ("h01" if role == "member" else None)


async def test_demo_users_refuse_an_account_of_another_role(store: Store) -> None:
    await ensure_demo_users(store, "h01", now=NOW, hasher=FAST_HASHER)
    with pytest.raises(ConfigError, match="h01"):
        await ensure_demo_users(store, "h02", now=NOW, hasher=FAST_HASHER)


def test_passwd_enable_delete_end_the_sessions_and_are_audited(
    invoke: Invoke, store_url: str
) -> None:
    """A token of olga's dies with ``passwd``; the new password works, the old one no longer;
    ``disable`` then ``enable`` still leaves the old token dead; ``delete`` removes her."""
    first = "first long passphrase"
    assert invoke("users", "add", "olga", "--role", "operator", "--password-stdin",
                  stdin=first + "\n")[0] == 0  # fmt: skip

    async def token_and_me(password: str, token: str | None = None) -> tuple[int, str | None]:
        async with Store(store_url) as store:
            app = create_app(settings_for(store_url), store=store)
            app.state.waldstadt.hasher = FAST_HASHER
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                if token is not None:
                    me = await c.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
                    return me.status_code, token
                r = await c.post(
                    "/api/v1/auth/token", data={"username": "olga", "password": password}
                )
                return r.status_code, r.json().get("access_token")

    code, token = asyncio.run(token_and_me(first))
    assert code == 200
    assert token is not None
    assert asyncio.run(token_and_me(first, token))[0] == 200
    code, out = invoke("users", "passwd", "olga", "--password-stdin", stdin="a 2nd long secret\n")
    assert (code, out.strip()) == (0, "password of olga changed; its sessions are ended")
    assert asyncio.run(token_and_me(first, token))[0] == 401
    assert asyncio.run(token_and_me(first))[0] == 401
    code, token = asyncio.run(token_and_me("a 2nd long secret"))
    assert code == 200
    assert invoke("users", "passwd", "olga", "--password-stdin", stdin="password123\n")[0] == 2
    assert invoke("users", "passwd", "nobody", "--password-stdin", stdin="x\n")[0] == 2
    # interactive: asked twice without echo; a mismatch is asked again
    code, out = invoke("users", "passwd", "olga",
                       stdin="third long secret\nthird long secreT\nthird long secret\n"
                             "third long secret\n")  # fmt: skip
    assert code == 0, out
    assert "third long secret" not in out  # never echoed
    assert invoke("users", "disable", "olga")[0] == 0
    assert invoke("users", "enable", "olga")[0] == 0
    assert asyncio.run(token_and_me("third long secret", token))[0] == 401
    assert asyncio.run(token_and_me("third long secret"))[0] == 200
    assert invoke("users", "delete", "olga") == (0, "deleted olga\n")
    assert users_in(store_url) == []
    assert [a[0] for a in audit_in(store_url)] == [
        "user.add", "user.passwd", "user.passwd", "user.disable", "user.enable", "user.delete",
    ]  # fmt: skip
