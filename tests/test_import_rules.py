"""The pure cores (vpp/, lighting/) take values and return values: no I/O, no clock, no asyncio.

Two checks: a static one over the source (direct imports and clock reads), and a dynamic one
that imports every core module in a fresh interpreter and looks at what got loaded.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORES = ("vpp", "lighting")

#: Top-level modules a core may not import directly.
FORBIDDEN_DIRECT = {
    "asyncio",
    "socket",
    "ssl",
    "http",
    "urllib",
    "requests",
    "selectors",
    "time",
    "aiomqtt",
    "paho",
    "pymodbus",
    "sqlalchemy",
    "alembic",
    "httpx",
    "fastapi",
    "uvicorn",
    "influxdb_client",
    "aiosqlite",
    "asyncpg",
    "apscheduler",
    "subprocess",
    "threading",
    "protocols",
    "scheduler",
    "api",
    "sims",
    "store",
    "app",
    "kernel.clock",
}
#: Modules that must not be loaded at all by importing every core module (transitively).
FORBIDDEN_LOADED = {
    "aiomqtt",
    "paho",
    "pymodbus",
    "sqlalchemy",
    "httpx",
    "fastapi",
    "uvicorn",
    "influxdb_client",
    "aiosqlite",
    "asyncpg",
    "apscheduler",
    "protocols",
    "scheduler",
    "api",
    "sims",
    "store",
    "app",
    "kernel.clock",
    "asyncio",
}
#: Calls that read the clock or touch files.
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("datetime", "today"),
    (None, "open"),
    (None, "input"),
    (None, "print"),
}


def _forbidden(module: str) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:n]) in FORBIDDEN_DIRECT for n in range(1, len(parts) + 1))


def core_files() -> list[Path]:
    return sorted(p for core in CORES for p in (ROOT / core).rglob("*.py"))


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_has_no_io_imports_or_clock_reads(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _forbidden(alias.name):
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _forbidden(node.module):
                problems.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                if (owner, func.attr) in FORBIDDEN_CALLS:
                    problems.append(f"line {node.lineno}: {owner}.{func.attr}()")
            elif isinstance(func, ast.Name) and (None, func.id) in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: {func.id}()")
    assert not problems, f"{path.relative_to(ROOT)} breaks the pure-core rule: {problems}"


def test_importing_every_core_module_loads_no_io_library() -> None:
    modules = [module_name(p) for p in core_files()]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    bad = sorted(
        {m for m in loaded if m.split(".")[0] in FORBIDDEN_LOADED or m in FORBIDDEN_LOADED}
    )
    assert not bad, f"the pure cores pulled in I/O modules: {bad}"


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    """The checker itself must be able to fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("import asyncio\nfrom datetime import datetime\nx = datetime.now()\n")
    tree = ast.parse(bad.read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import)]
    assert imports[0].names[0].name in FORBIDDEN_DIRECT
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    func = calls[0].func
    assert isinstance(func, ast.Attribute)
    assert isinstance(func.value, ast.Name)
    assert (func.value.id, func.attr) in FORBIDDEN_CALLS
