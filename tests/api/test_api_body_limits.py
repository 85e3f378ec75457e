"""Request bodies beyond their route's limit are refused before anything reads them: with a
``Content-Length`` before a single byte, without one (chunked) as soon as the limit is
passed; before authentication, so an anonymous 200 MB body costs nothing. Checked in
process (bytes handed to the app counted) and against a real uvicorn over a socket."""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Message

from api.app import BODY_LIMITS
from tests.api.conftest import bearer, serve_app

pytestmark = pytest.mark.usefixtures("accounts")

MIB = 1024 * 1024
HUGE = 200 * MIB
OVERRIDES = "/api/v1/commands/overrides"


class Body:
    """A request body handed out 1 MiB at a time, counting what the app pulled."""

    def __init__(self, total_bytes: int) -> None:
        self.total = total_bytes
        self.pulled = 0
        self.chunk = b"[" + b"0," * (MIB // 2 - 1) + b"0"

    async def receive(self) -> Message:
        if self.pulled >= self.total:
            return {"type": "http.disconnect"}
        size = min(len(self.chunk), self.total - self.pulled)
        self.pulled += size
        return {"type": "http.request", "body": self.chunk[:size],
                "more_body": self.pulled < self.total}  # fmt: skip


async def call(
    app: FastAPI, path: str, body: Body, *, declare: bool, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request straight through the ASGI interface (no client buffering anything)."""
    raw = [(b"content-type", b"application/json"), (b"host", b"waldstadt.test")]
    if declare:
        raw.append((b"content-length", str(body.total).encode()))
    for k, v in (headers or {}).items():
        raw.append((k.lower().encode(), v.encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": raw, "client": ("127.0.0.1", 5555), "server": ("waldstadt.test", 80),
        "root_path": "",
    }  # fmt: skip
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, body.receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, out


@pytest.mark.parametrize("token", [False, True], ids=["anonymous", "operator"])
async def test_a_declared_200_mb_body_is_refused_before_one_byte_is_read(
    app: FastAPI, token: bool
) -> None:
    body = Body(HUGE)
    headers = bearer("olga") if token else None
    status, _, out = await call(app, OVERRIDES, body, declare=True, headers=headers)
    assert status == 413
    assert json.loads(out) == {"detail": f"request body larger than {MIB} bytes"}
    assert body.pulled == 0
    print(f"\n200 MB declared ({'operator' if token else 'anonymous'}): bytes read 0, 413")


@pytest.mark.parametrize("token", [False, True], ids=["anonymous", "operator"])
async def test_a_chunked_200_mb_body_is_refused_once_past_the_limit(
    app: FastAPI, token: bool
) -> None:
    body = Body(HUGE)
    headers = bearer("olga") if token else None
    status, _, out = await call(app, OVERRIDES, body, declare=False, headers=headers)
    assert status == 413
    assert json.loads(out)["detail"] == f"request body larger than {MIB} bytes"
    assert body.pulled <= MIB + len(body.chunk)  # the limit plus the chunk that passed it
    print(f"\n200 MB chunked: bytes read {body.pulled} of {HUGE}, 413")


async def test_each_route_has_its_own_limit(app: FastAPI) -> None:
    assert BODY_LIMITS.for_path("/api/v1/auth/token") == 16 * 1024
    backtest = BODY_LIMITS.for_path("/api/v1/lighting/backtest")
    assert backtest > 20 * MIB  # the traffic CSV may be 20 MB
    status, _, _ = await call(app, "/api/v1/auth/token", Body(64 * 1024), declare=True)
    assert status == 413  # a login form is small
    status, _, _ = await call(
        app, "/api/v1/lighting/backtest", Body(5 * MIB), declare=True, headers=bearer("lena")
    )
    assert status != 413  # 5 MB is within the backtest's own limit (not a CSV: 4xx of its own)
    status, _, _ = await call(app, OVERRIDES, Body(5 * MIB), declare=True)
    assert status == 413


async def test_a_body_within_the_limit_still_reaches_the_route(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        OVERRIDES,
        json={"target": "x", "kind": "battery_power_w", "value": 0, "expires_in_s": 60,
              "reason": "y" * 2000},
        headers=bearer("olga"),
    )  # fmt: skip
    assert r.status_code not in (413, 401)


async def test_a_real_server_answers_413_before_the_body_is_sent(app: FastAPI) -> None:
    """Over TCP: the headers of a 200 MB upload, then nothing; the 413 comes back at once."""
    async with serve_app(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST {OVERRIDES} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {HUGE}\r\n\r\n"
        )
        writer.write(head.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.startswith(b"HTTP/1.1 413"), status_line
        writer.close()
        await writer.wait_closed()


async def test_a_real_server_stops_a_chunked_upload_at_the_limit(app: FastAPI) -> None:
    """Over TCP, chunked: the server answers 413 and closes; it was sent a little more than
    the limit (socket buffers), not 200 MB."""
    async with serve_app(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {OVERRIDES} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"0," * (32 * 1024)
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        sent = 0
        answer = b""
        with contextlib.suppress(ConnectionError):
            while sent < HUGE:
                writer.write(frame)
                await writer.drain()
                sent += len(chunk)
                with contextlib.suppress(TimeoutError):
                    answer = await asyncio.wait_for(reader.read(200), 0.001)
                if answer:
                    break
        if not answer:
            answer = await asyncio.wait_for(reader.read(200), 10)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    print(f"\nreal server, chunked: {sent} bytes sent of {HUGE} when it answered")
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert sent < 16 * MIB
