"""Process settings from the environment (``WALDSTADT_*``), separate from the site file.

The site file describes the world (devices, members, streets); these settings describe the
process: where the database and the broker are, the time zone, and secrets. Placeholder
secrets are refused unless the process runs the demo.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.errors import ConfigError

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "demo"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WALDSTADT_", extra="forbid", frozen=True, env_nested_delimiter="__"
    )

    mode: Literal["demo", "production"] = "production"
    database_url: str = "sqlite+aiosqlite:///waldstadt.sqlite"
    broker_url: str | None = Field(
        default=None, description="mqtt://host:port; none in the demo starts an embedded broker"
    )
    broker_username: str | None = None
    broker_password: SecretStr | None = None
    broker_client_id: str = "waldstadt-controller"
    timezone: str = "Europe/Berlin"
    secret_key: SecretStr = SecretStr("changeme")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    influx_url: str | None = None
    influx_token: SecretStr | None = None
    influx_org: str = "waldstadt"
    influx_bucket: str = "waldstadt"
    reading_retention_days: int = Field(default=90, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
            raise ValueError(
                f"unsupported scheme {scheme!r}: use sqlite+aiosqlite:/// or postgresql+asyncpg://"
            )
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_the_demo(self) -> Settings:
        if self.mode == "demo":
            return self
        if self.secret_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("secret_key: a placeholder secret is refused outside the demo")
        if len(self.secret_key.get_secret_value()) < 16:
            raise ValueError("secret_key: must be at least 16 characters")
        if self.broker_password is not None and (
            self.broker_password.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError("broker_password: a placeholder secret is refused outside the demo")
        return self

    @property
    def broker_host_port(self) -> tuple[str, int] | None:
        if self.broker_url is None:
            return None
        parts = urlsplit(self.broker_url)
        default = 8883 if parts.scheme == "mqtts" else 1883
        return parts.hostname or "127.0.0.1", parts.port or default


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read settings from the environment; one :class:`ConfigError` naming the variable.

    A ``WALDSTADT_*`` variable that names no setting is an error too: a typo must not leave a
    production process on a default.
    """
    env = os.environ if environ is None else environ
    known = {f"WALDSTADT_{name.upper()}" for name in Settings.model_fields}
    for var in sorted(env):
        if var.startswith("WALDSTADT_") and var not in known and "__" not in var:
            raise ConfigError(var, "unknown setting", "environment")
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not loc and ":" in msg:
            loc, msg = (s.strip() for s in msg.split(":", 1))
        name = f"WALDSTADT_{loc.upper()}" if loc else "WALDSTADT_*"
        reason = "unknown setting" if err["type"] == "extra_forbidden" else msg
        raise ConfigError(name, reason, "environment") from exc
