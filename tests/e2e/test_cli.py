"""``waldstadt run --site`` on the real command line app (``app.cli.app``): a bad site file and a
bad environment value give one clear error each (file, line, key and reason; the variable)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from app.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"
ENV = {
    "WALDSTADT_SECRET_KEY": "s" * 32,
    "WALDSTADT_AUDIT_KEY": "a" * 32,
    "WALDSTADT_BROKER_URL": "mqtt://127.0.0.1:1",
}


@pytest.fixture(autouse=True)
def _no_waldstadt_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("WALDSTADT_"):
            monkeypatch.delenv(var)


def one_line(result: Result) -> str:
    output: list[str] = result.output.strip().splitlines()
    assert result.exit_code == 1, result.output
    assert len(output) == 1, output
    return output[0]


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        ("unit_id: 1", "unit_id: 999", "devices.0.unit_id", "247"),
        ("meter: hh01-meter", "meter: hh99-meter", "members.0.meter", "hh99-meter"),
        ("annual_kwh:", "annual_kwhh:", "members.0.annual_kwhh", "unknown key"),
    ],
)
def test_a_bad_site_file_is_one_line_with_file_line_key_and_reason(
    tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert old in text, f"the example site no longer has {old!r}"
    bad = text.replace(old, new, 1)
    path = tmp_path / "site.yaml"
    path.write_text(bad, encoding="utf-8")
    line_no = 1 + bad[: bad.index(new)].count("\n")
    line = one_line(CliRunner().invoke(app, ["run", "--site", str(path)], env=ENV))
    assert line.startswith(f"{path}:{line_no}: {key}: "), line
    assert reason in line


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("WALDSTADT_DATABASE_URL", "mysql://localhost/waldstadt"),
        ("WALDSTADT_BROKER_URL", "http://127.0.0.1:1883"),
        ("WALDSTADT_READING_RETENTION_DAYS", "0"),
        ("WALDSTADT_TIMEZONE", "Mars/Olympus"),
        ("WALDSTADT_BROKR_URL", "mqtt://127.0.0.1:1883"),
    ],
)
def test_a_bad_environment_value_is_one_line_naming_the_variable(var: str, value: str) -> None:
    result = CliRunner().invoke(app, ["run", "--site", str(EXAMPLE)], env={**ENV, var: value})
    line = one_line(result)
    assert line.startswith(f"environment: {var}: "), line
