"""The web app reads the running service only through the typed interface
:class:`api.runtime.Runtime`: never ``getattr``/``hasattr`` on the runtime or its site.
(That ``api`` imports no sqlalchemy and no private name of another package is the project's
import rule: ``tests/test_import_rules.py``.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_FILES = sorted((ROOT / "api").rglob("*.py"))


def untyped_reads(source: str) -> list[str]:
    """The ``getattr``/``hasattr`` calls in ``source`` whose object names a runtime or a site."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if (
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
def test_api_module_reads_the_runtime_through_its_interface(path: Path) -> None:
    assert untyped_reads(path.read_text()) == [], path.relative_to(ROOT)


def test_the_rule_catches_what_it_forbids() -> None:
    bad = (
        "site = getattr(state.runtime, 'site', None)\n"
        "ok = hasattr(site, 'lighting')\n"
        "path = getattr(route, 'path', None)\n"
    )
    assert [p.split(":")[0] for p in untyped_reads(bad)] == ["line 1", "line 2"]
