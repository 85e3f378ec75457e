"""The web app speaks HTTP only: no SQL of its own (sqlalchemy stays in the store), no private
names of other packages, and the running service only through the typed interface
:class:`api.runtime.Runtime` (never ``getattr``/``hasattr`` on the runtime or its site)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_FILES = sorted((ROOT / "api").rglob("*.py"))


def problems(source: str, package: str = "api") -> list[str]:
    """What in ``source`` (a module of ``package``) breaks the rules of the module docstring."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "sqlalchemy"
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            top = node.module.split(".")[0]
            if top == "sqlalchemy":
                found.append(f"line {node.lineno}: from {node.module} import …")
            private = [a.name for a in node.names if a.name.startswith("_")]
            if top != package and private:
                found.append(f"line {node.lineno}: from {node.module} import {private}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and node.args
        ):
            target = ast.unparse(node.args[0])
            if "runtime" in target or "site" in target:
                found.append(f"line {node.lineno}: {node.func.id}({target}, …)")
    return found


@pytest.mark.parametrize("path", API_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_api_module_keeps_to_http(path: Path) -> None:
    assert problems(path.read_text()) == [], path.relative_to(ROOT)


def test_the_rules_catch_what_they_forbid() -> None:
    bad = (
        "from sqlalchemy import text\n"
        "import sqlalchemy.ext.asyncio\n"
        "from store.balances import _stored, public\n"
        "from api.errors import _own_private\n"
        "site = getattr(state.runtime, 'site', None)\n"
        "ok = hasattr(site, 'lighting')\n"
        "path = getattr(route, 'path', None)\n"
    )
    assert [p.split(":")[0] for p in problems(bad)] == [
        "line 1",
        "line 2",
        "line 3",
        "line 5",
        "line 6",
    ]
