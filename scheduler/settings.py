"""Process settings from the environment (``WALDSTADT_*``), separate from the site file.

The site file describes the world (devices, members, streets); these settings describe the
process: where the database and the broker are, the time zone, and secrets. Placeholder
secrets are refused unless the process runs the demo, and so are secrets too short to resist
guessing: ``secret_key`` (signs web tokens) 16 characters, ``audit_key`` (keys the audit
chain; required outside the demo and distinct from ``secret_key``) and ``metrics_token`` 32,
``broker_password`` and ``influx_token`` 12. The demo is only ``waldstadt demo``:
``waldstadt run`` refuses ``WALDSTADT_MODE=demo``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kernel.errors import ConfigError

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "demo"})
#: Each secret setting and the fewest characters it may have outside the demo.
SECRET_MIN_LENGTHS: dict[str, int] = {
    "secret_key": 16,
    "audit_key": 32,
    "metrics_token": 32,
    "broker_password": 12,
    "influx_token": 12,
}


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
    #: ``mqtts://`` only: the CA that signed the broker's certificate (none: the system's CAs),
    #: and the client's own certificate and key when the broker asks for one
    broker_ca_file: str | None = None
    broker_cert_file: str | None = None
    broker_key_file: str | None = None
    timezone: str = "Europe/Berlin"
    secret_key: SecretStr = SecretStr("changeme")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    influx_url: str | None = None
    influx_token: SecretStr | None = None
    influx_org: str = "waldstadt"
    influx_bucket: str = "waldstadt"
    reading_retention_days: int = Field(default=90, ge=1)
    audit_key: SecretStr | None = Field(
        default=None, description="HMAC key of the audit chain; required outside the demo"
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token of /metrics; without one it answers loopback only"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks (10.0.0.0/8) of reverse proxies "
        "whose X-Forwarded-For and X-Forwarded-Proto are believed; none by default",
    )
    hsts_max_age_s: int = Field(
        default=31_536_000, ge=0, description="HSTS max-age sent on https responses; 0: none"
    )
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

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"not an address or network: {item!r}") from exc
        return value

    @field_validator("broker_ca_file", "broker_cert_file", "broker_key_file")
    @classmethod
    def _readable_file(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError(f"no such file: {value!r}")
        return value

    @model_validator(mode="after")
    def _tls_files_only_with_mqtts(self) -> Settings:
        """TLS files with a plain ``mqtt://`` URL would be silently unused: refused, naming
        the variable; a key without its certificate likewise."""
        plain = self.broker_url is None or urlsplit(self.broker_url).scheme != "mqtts"
        for name in ("broker_ca_file", "broker_cert_file", "broker_key_file"):
            if plain and getattr(self, name) is not None:
                raise ValueError(f"{name}: only for an mqtts:// WALDSTADT_BROKER_URL (TLS)")
        if self.broker_key_file is not None and self.broker_cert_file is None:
            raise ValueError("broker_key_file: needs WALDSTADT_BROKER_CERT_FILE too")
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets_outside_the_demo(self) -> Settings:
        if self.mode == "demo":
            return self
        for name, min_length in SECRET_MIN_LENGTHS.items():
            secret: SecretStr | None = getattr(self, name)
            if secret is None:
                continue
            value = secret.get_secret_value()
            if value.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"{name}: a placeholder secret is refused outside the demo")
            if len(value) < min_length:
                raise ValueError(f"{name}: must be at least {min_length} characters")
        if self.audit_key is None:
            raise ValueError("audit_key: required outside the demo (the audit chain's HMAC key)")
        if self.audit_key.get_secret_value() == self.secret_key.get_secret_value():
            raise ValueError("audit_key: must differ from secret_key")
        return self

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """:attr:`trusted_proxies` parsed (an address is a network of one)."""
        parts = (part.strip() for part in self.trusted_proxies.split(","))
        return tuple(ip_network(part, strict=False) for part in parts if part)

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
