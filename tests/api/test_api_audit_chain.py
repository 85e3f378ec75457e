"""The audit chain's head, exported and checked, through the API and ``waldstadt audit``
(SQLite and PostgreSQL): an edited record, a chain recomputed without the key and a truncated
tail are each detected; the same chain with another key does not verify."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest
import typer
from typer.testing import CliRunner

from app.commands.audit import register
from store import Store
from store.audit import AuditEntry, ChainHead, unkeyed_hash
from tests.api.conftest import AUDIT, AUDIT_KEY, SECRET, bearer
from tests.store.test_store_audit import entry, rehash, tamper

pytestmark = pytest.mark.usefixtures("accounts")


def cli(store_url: str, *args: str, key: str = AUDIT_KEY) -> tuple[int, str]:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """test root"""

    register(app)
    env = {
        "WALDSTADT_DATABASE_URL": store_url,
        "WALDSTADT_SECRET_KEY": SECRET,
        "WALDSTADT_AUDIT_KEY": key,
    }
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


async def chain(store: Store, n: int) -> list[AuditEntry]:
    entries = [entry(i) for i in range(n)]
    for e in entries:
        await store.audit.append(e, AUDIT)
    return entries


async def test_the_api_exports_the_head_and_checks_against_it(
    client: httpx.AsyncClient, store: Store
) -> None:
    await chain(store, 5)
    aldo = bearer("aldo")
    head = (await client.get("/api/v1/audit/head", headers=aldo)).json()
    records = await store.audit.records()
    assert (head["count"], head["head_hash"]) == (5, records[-1].hash)
    assert head["head"] == f"5:{records[-1].hash}"
    assert head["key_id"] == AUDIT.key_id
    params = {"count": head["count"], "head_hash": head["head_hash"]}
    ok = (await client.get("/api/v1/audit/verify", params=params, headers=aldo)).json()
    assert (ok["ok"], ok["checked"], ok["unkeyed"]) == (True, 5, 0)
    await tamper(store, ("DELETE FROM audit_log WHERE id > :id", {"id": records[2].id}))
    plain = (await client.get("/api/v1/audit/verify", headers=aldo)).json()
    assert plain["ok"]  # three records still link up ...
    cut = (await client.get("/api/v1/audit/verify", params=params, headers=aldo)).json()
    assert not cut["ok"]  # ... but the exported head had five
    assert cut["reason"].startswith("truncated: 3 records")
    half = await client.get("/api/v1/audit/verify", params={"count": 5}, headers=aldo)
    assert half.status_code == 422


async def test_the_head_of_a_broken_chain_is_not_exported(
    client: httpx.AsyncClient, store: Store
) -> None:
    await chain(store, 3)
    records = await store.audit.records()
    await tamper(store, ("UPDATE audit_log SET result = 'refused' WHERE id = :id",
                         {"id": records[1].id}))  # fmt: skip
    r = await client.get("/api/v1/audit/head", headers=bearer("olga"))
    assert r.status_code == 409
    assert "edited" in r.json()["detail"]


def test_waldstadt_audit_head_and_verify_find_each_attack(store_url: str) -> None:
    asyncio.run(_fill(store_url, 6))
    code, out = cli(store_url, "audit", "head")
    assert code == 0, out
    head = ChainHead.parse(out.strip())
    assert head.count == 6
    code, out = cli(store_url, "audit", "verify", "--head", str(head))
    assert (code, out.strip()) == (0, f"ok: 6 records verify against {head}")
    # the same chain under another key does not verify
    code, out = cli(store_url, "audit", "verify", key="another-audit-key-0123456789abcdef")
    assert code == 1
    assert "keyed with another key" in out
    # an edit, recomputed with plain SHA-256 from there on: detected without the head
    asyncio.run(_recompute_from(store_url, 3))
    code, out = cli(store_url, "audit", "verify")
    assert code == 1
    assert "recomputed without the key" in out
    code, out = cli(store_url, "audit", "head")
    assert code == 1


def test_waldstadt_audit_verify_finds_a_truncated_tail(store_url: str) -> None:
    asyncio.run(_fill(store_url, 6))
    code, out = cli(store_url, "audit", "head")
    head = ChainHead.parse(out.strip())
    asyncio.run(_truncate(store_url, keep=4))
    assert cli(store_url, "audit", "verify")[0] == 0  # alone, a shorter chain verifies
    code, out = cli(store_url, "audit", "verify", "--head", str(head))
    assert code == 1
    assert "truncated: 4 records" in out
    code, out = cli(store_url, "audit", "verify", "--head", "6:nothex")
    assert code == 2


async def _fill(url: str, n: int) -> None:
    async with Store(url) as store:
        await chain(store, n)


async def _truncate(url: str, keep: int) -> None:
    async with Store(url) as store:
        records = await store.audit.records()
        await tamper(store, ("DELETE FROM audit_log WHERE id > :id", {"id": records[keep - 1].id}))


async def _recompute_from(url: str, start: int) -> None:
    async with Store(url) as store:
        records = await store.audit.records()
        edited = [
            *records[:start],
            *(replace(r, entry=replace(r.entry, actor="mallory")) for r in records[start:]),
        ]
        await tamper(store, *rehash(edited, start, unkeyed_hash))  # fmt: skip
