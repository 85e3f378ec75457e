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


# -- the layers: each package imports only those below it --------------------------------------

#: What each package may import of the project (itself included).
LAYERS: dict[str, set[str]] = {
    "kernel": {"kernel"},
    "vpp": {"kernel", "vpp"},
    "lighting": {"kernel", "lighting"},
    "protocols": {"kernel", "vpp", "lighting", "protocols"},
    "sims": {"kernel", "vpp", "lighting", "protocols", "sims"},
    "store": {"kernel", "vpp", "lighting", "protocols", "store"},
    "scheduler": {"kernel", "vpp", "lighting", "protocols", "store", "scheduler"},
    "api": {"kernel", "vpp", "lighting", "protocols", "store", "scheduler", "api"},
    "app": {"kernel", "vpp", "lighting", "protocols", "store", "scheduler", "api", "sims", "app"},
}
#: Third-party modules a package must not import (the API speaks HTTP, the store holds SQL).
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "api": {"sqlalchemy", "asyncpg", "aiosqlite", "paho", "aiomqtt", "pymodbus"},
    "scheduler": {"sqlalchemy", "fastapi", "uvicorn"},
    "kernel": {"sqlalchemy", "fastapi", "paho", "aiomqtt", "pymodbus"},
}


def package_files() -> list[Path]:
    return sorted(
        p
        for pkg in LAYERS
        for p in (ROOT / pkg).rglob("*.py")
        if "migrations" not in p.relative_to(ROOT).parts
    )


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every absolute import, also inside functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
    return out


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_package_imports_only_the_layers_below_it(path: Path) -> None:
    pkg = path.relative_to(ROOT).parts[0]
    allowed = LAYERS[pkg]
    banned = FORBIDDEN_LIBRARIES.get(pkg, set())
    problems = []
    for line, module, names in _imports(path):
        top = module.split(".")[0]
        if top in LAYERS and top not in allowed:
            problems.append(f"line {line}: {pkg} imports {module} (a layer above it)")
        if top in banned:
            problems.append(f"line {line}: {pkg} imports {module}")
        if top in LAYERS and top != pkg:
            private = [n for n in names if n.startswith("_")]
            if private:
                problems.append(f"line {line}: private name(s) {private} of {module}")
    assert not problems, f"{path.relative_to(ROOT)}: {problems}"


def test_the_layer_rule_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from app.service import Service\nfrom store.commands import _stored\n")
    found = _imports(bad)
    assert (found[0][1], found[0][2]) == ("app.service", ["Service"])
    assert "app" not in LAYERS["sims"]
    assert found[1][2] == ["_stored"]
