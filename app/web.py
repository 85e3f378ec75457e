"""Serving the web app in the service's own event loop."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from fastapi import FastAPI


async def serve_web(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn in this event loop until cancelled (or uvicorn exits).

    uvicorn's own ``X-Forwarded-*`` handling is off (by default it believes them from
    127.0.0.1): the app believes them only from ``WALDSTADT_TRUSTED_PROXIES``
    (:class:`api.middleware.TrustedProxies`)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name=f"web {host}:{port}")
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise


__all__ = ["serve_web"]
