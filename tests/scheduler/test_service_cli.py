"""``waldstadt run --site``: one clear error for a bad site file and for a bad environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from app.commands.service import register

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"
GOOD_ENV = {
    "WALDSTADT_SECRET_KEY": "s" * 32,
    "WALDSTADT_AUDIT_KEY": "a" * 32,
    "WALDSTADT_BROKER_URL": "mqtt://127.0.0.1:1",
}


def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Waldstadt (test app)."""

    register(app)
    return app


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("WALDSTADT_"):
            monkeypatch.delenv(var)


def test_a_bad_site_file_is_one_line_naming_file_line_key_and_reason(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    bad = text.replace("poll_interval_s:", "poll_intervall_s:", 1)
    if bad == text:  # the example has no dispatch section: add a misspelt one at the end
        bad = text + "dispatch:\n  poll_intervall_s: 30\n"
    path = tmp_path / "site.yaml"
    path.write_text(bad, encoding="utf-8")
    line = 1 + bad[: bad.index("poll_intervall_s")].count("\n")
    result = CliRunner().invoke(cli(), ["run", "--site", str(path)], env=GOOD_ENV)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"{path}:{line}: dispatch.poll_intervall_s: "), lines[0]


def test_a_missing_site_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    result = CliRunner().invoke(cli(), ["run", "--site", str(path)], env=GOOD_ENV)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(path) in lines[0]


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("WALDSTADT_HTTP_PORT", "99999", "WALDSTADT_HTTP_PORT: "),
        ("WALDSTADT_TIMEZONE", "Europe/Iserlohn", "WALDSTADT_TIMEZONE: unknown time zone"),
        ("WALDSTADT_DATABSE_URL", "sqlite+aiosqlite:///x.db", "WALDSTADT_DATABSE_URL: unknown"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_the_variable(
    var: str, value: str, expected: str
) -> None:
    result = CliRunner().invoke(
        cli(), ["run", "--site", str(EXAMPLE)], env={**GOOD_ENV, var: value}
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"environment: {expected}"), lines[0]


def test_a_placeholder_secret_is_refused_outside_the_demo() -> None:
    env = {"WALDSTADT_BROKER_URL": "mqtt://127.0.0.1:1", "WALDSTADT_SECRET_KEY": "changeme"}
    result = CliRunner().invoke(cli(), ["run", "--site", str(EXAMPLE)], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "environment: WALDSTADT_SECRET_KEY: a placeholder secret is refused outside the demo"
    )


def test_run_refuses_the_demo_mode() -> None:
    """The demo's public secrets never run real devices: only ``waldstadt demo`` is a demo."""
    env = {"WALDSTADT_MODE": "demo", "WALDSTADT_BROKER_URL": "mqtt://127.0.0.1:1"}
    result = CliRunner().invoke(cli(), ["run", "--site", str(EXAMPLE)], env=env)
    assert result.exit_code == 1
    assert result.output.strip() == (
        "environment: WALDSTADT_MODE: demo mode only through 'waldstadt demo'"
    )
