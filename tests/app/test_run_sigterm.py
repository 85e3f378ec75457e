"""``waldstadt run`` stops on SIGTERM (what systemd and container runtimes send): one log line
naming the signal, a clean shutdown through the service's own exit path, exit code 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "site.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_sigterm_logs_one_line_and_stops_cleanly(mqtt_broker: Any, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WALDSTADT_")},
        "WALDSTADT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}",
        "WALDSTADT_BROKER_URL": f"mqtt://{mqtt_broker.host}:{mqtt_broker.port}",
        "WALDSTADT_BROKER_CLIENT_ID": f"sigterm-{port}",
        "WALDSTADT_SECRET_KEY": "s" * 32,
        "WALDSTADT_AUDIT_KEY": "a" * 32,
        "WALDSTADT_HTTP_PORT": str(port),
        "WALDSTADT_LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "run", "--site", str(EXAMPLE)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("waldstadt run did not answer /health within 60 s")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    messages = [json.loads(line).get("msg", "") for line in err.decode().splitlines()
                if line.startswith("{")]  # fmt: skip
    about = [m for m in messages if "SIGTERM" in m]
    assert about == ["SIGTERM received: stopping the service"], messages[-20:]
    assert proc.returncode == 0, err.decode()[-2000:]
    assert out.decode().strip().endswith("stopped")
    assert "Traceback" not in err.decode()
