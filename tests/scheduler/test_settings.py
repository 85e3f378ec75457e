from __future__ import annotations

import pytest

from kernel.errors import ConfigError
from scheduler.settings import load_settings

GOOD_SECRET = "x" * 32
GOOD_AUDIT_KEY = "a" * 32


def test_defaults_in_demo_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALDSTADT_MODE", "demo")
    s = load_settings()
    assert s.database_url.startswith("sqlite+aiosqlite")
    assert s.timezone == "Europe/Berlin"
    assert s.broker_host_port is None


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALDSTADT_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("WALDSTADT_AUDIT_KEY", GOOD_AUDIT_KEY)
    monkeypatch.setenv("WALDSTADT_BROKER_URL", "mqtt://broker.local")
    monkeypatch.setenv("WALDSTADT_DATABASE_URL", "postgresql+asyncpg://u@db/waldstadt")
    s = load_settings()
    assert s.broker_host_port == ("broker.local", 1883)
    assert s.secret_key.get_secret_value() == GOOD_SECRET
    assert GOOD_SECRET not in repr(s)


@pytest.mark.parametrize(
    ("env", "name", "reason"),
    [
        ({}, "WALDSTADT_SECRET_KEY", "placeholder"),
        ({"WALDSTADT_SECRET_KEY": "short-but-real"}, "WALDSTADT_SECRET_KEY", "16 characters"),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_BROKER_PASSWORD": "changeme"},
            "WALDSTADT_BROKER_PASSWORD",
            "placeholder",
        ),
        ({"WALDSTADT_SECRET_KEY": GOOD_SECRET}, "WALDSTADT_AUDIT_KEY", "required"),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_AUDIT_KEY": GOOD_SECRET},
            "WALDSTADT_AUDIT_KEY",
            "differ from secret_key",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_AUDIT_KEY": "a" * 31},
            "WALDSTADT_AUDIT_KEY",
            "32 characters",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_INFLUX_TOKEN": "changeme"},
            "WALDSTADT_INFLUX_TOKEN",
            "placeholder",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_METRICS_TOKEN": "short"},
            "WALDSTADT_METRICS_TOKEN",
            "32 characters",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_TRUSTED_PROXIES": "10.0.0.1,proxy"},
            "WALDSTADT_TRUSTED_PROXIES",
            "not an address",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_TIMEZONE": "Europe/Iserlohn"},
            "WALDSTADT_TIMEZONE",
            "unknown time zone",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_DATABASE_URL": "mysql://x"},
            "WALDSTADT_DATABASE_URL",
            "unsupported scheme",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_HTTP_PORT": "99999"},
            "WALDSTADT_HTTP_PORT",
            "less than or equal",
        ),
        (
            {"WALDSTADT_SECRET_KEY": GOOD_SECRET, "WALDSTADT_BROKER_URL": "http://x"},
            "WALDSTADT_BROKER_URL",
            "mqtt://",
        ),
    ],
)
def test_bad_values_give_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], name: str, reason: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.field == name
    assert reason in info.value.reason


def test_unknown_setting_passed_in_code_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(mode="demo", databse_url="x")
    assert info.value.field == "WALDSTADT_DATABSE_URL"
    assert info.value.reason == "unknown setting"


def test_unknown_environment_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALDSTADT_MODE", "demo")
    monkeypatch.setenv("WALDSTADT_DATABSE_URL", "sqlite+aiosqlite:///typo.sqlite")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.field == "WALDSTADT_DATABSE_URL"
    assert info.value.reason == "unknown setting"
