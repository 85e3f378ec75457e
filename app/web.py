"""Serving the web app in the service's own event loop."""

from __future__ import annotations

import asyncio
import contextlib

import uvicorn
from fastapi import FastAPI


async def serve_web(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` with uvicorn in this event loop until cancelled (or uvicorn exits)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
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
