"""``waldstadt broker-config --site site.yaml --out DIR``: the broker's credentials and ACL.

Writes into ``DIR``:

* ``password_file`` — Mosquitto 2's format (PBKDF2-SHA512, what ``mosquitto_passwd`` writes),
  mode 0600: give it to the broker's user (``chown mosquitto: password_file``);
* ``acl_file`` — each device publishes only its own topics and reads only its own commands;
  only the controller publishes commands (:mod:`scheduler.brokers`);
* ``mosquitto.conf`` — the settings that use them (no anonymous clients);
* ``credentials.yaml`` — every username's password in clear, mode 0600, written once: hand
  each device its own line, the service gets the controller's (``WALDSTADT_BROKER_PASSWORD``).

Passwords are 256-bit random (:mod:`secrets`) and never printed. Running it again keeps every
existing password (a new device gets a new one, a removed one loses its line) unless
``--rotate``. The hashes are computed here rather than by ``mosquitto_passwd``: its ``-b``
puts the password on a command line every local user can read, and this way broker-config
needs no Mosquitto on the machine it runs on; the tests check the lines against
``mosquitto_passwd`` and a real Mosquitto.
"""

from __future__ import annotations

import collections
import contextlib
import os
import secrets
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
import yaml

from kernel.errors import ConfigError
from scheduler.brokers import (
    MOSQUITTO_SALT_BYTES,
    BrokerClient,
    Role,
    mosquitto_acl,
    mosquitto_conf,
    mosquitto_password_line,
)

PASSWORD_FILE = "password_file"
ACL_FILE = "acl_file"
CONF_FILE = "mosquitto.conf"
CREDENTIALS_FILE = "credentials.yaml"
#: Bytes of randomness per password (``secrets.token_urlsafe``: 43 characters).
PASSWORD_BYTES = 32


@dataclass(frozen=True)
class BrokerFiles:
    """What :func:`write_broker_files` wrote: where, for whom, how many passwords are new."""

    out: Path
    clients: Sequence[BrokerClient]
    new: int
    kept: int
    passwords: Mapping[str, str] = field(repr=False)

    @property
    def password_file(self) -> Path:
        return self.out / PASSWORD_FILE

    @property
    def acl_file(self) -> Path:
        return self.out / ACL_FILE

    @property
    def conf_file(self) -> Path:
        return self.out / CONF_FILE

    @property
    def credentials_file(self) -> Path:
        return self.out / CREDENTIALS_FILE


def write_broker_files(
    clients: Sequence[BrokerClient],
    out: Path,
    source: str,
    *,
    rotate: bool = False,
    broker_dir: str | None = None,
) -> BrokerFiles:
    """Write the four files for ``clients`` into ``out`` (created with mode 0700 if missing).

    ``broker_dir`` is where the broker will read ``password_file`` and ``acl_file`` (the paths
    in ``mosquitto.conf``; default: ``out`` itself). Existing passwords are kept unless
    ``rotate``; a credentials file readable by others is refused (its passwords may have
    leaked: rotate them)."""
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    old = {} if rotate else read_credentials(out / CREDENTIALS_FILE)
    passwords: dict[str, str] = {}
    for client in clients:
        passwords[client.username] = old.get(client.username) or secrets.token_urlsafe(
            PASSWORD_BYTES
        )
    kept = sum(1 for name, pw in passwords.items() if old.get(name) == pw)
    _write(out / CREDENTIALS_FILE, _credentials_text(passwords, source), 0o600)
    lines = [
        mosquitto_password_line(name, pw, secrets.token_bytes(MOSQUITTO_SALT_BYTES))
        for name, pw in passwords.items()
    ]
    _write(out / PASSWORD_FILE, "\n".join(lines) + "\n", 0o600)
    _write(out / ACL_FILE, mosquitto_acl(clients, source), 0o644)
    where = Path(broker_dir) if broker_dir else out.resolve()
    conf = mosquitto_conf(str(where / PASSWORD_FILE), str(where / ACL_FILE), source)
    _write(out / CONF_FILE, conf, 0o644)
    return BrokerFiles(out, clients, len(passwords) - kept, kept, passwords)


def read_credentials(path: Path) -> dict[str, str]:
    """The passwords of an earlier run (none when the file does not exist)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            str(path),
            f"readable by others (mode {stat.S_IMODE(st.st_mode):04o}): its passwords may have "
            "leaked; run broker-config with --rotate to replace them all",
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()
    ):
        raise ConfigError(str(path), "not a mapping of username to password: fix it or --rotate")
    return data


def _credentials_text(passwords: Mapping[str, str], source: str) -> str:
    head = (
        f"# Broker passwords generated by `waldstadt broker-config` from {source}.\n"
        "# Secret (mode 0600). Give each device its own line only; the service uses the\n"
        "# controller's as WALDSTADT_BROKER_PASSWORD. Re-running keeps them unless --rotate.\n"
    )
    return head + yaml.safe_dump(dict(passwords), sort_keys=False, default_flow_style=False)


def _write(path: Path, text: str, mode: int) -> None:
    """Replace ``path`` atomically by a file that has ``mode`` from its first byte on."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow it
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            fd = -1
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def summary(files: BrokerFiles) -> list[str]:
    """What to tell the operator (no password, ever)."""
    roles = collections.Counter(c.role for c in files.clients)
    order: tuple[Role, ...] = ("controller", "gateway", "node", "telemetry", "network_server")
    counts = ", ".join(f"{roles[r]} {r.replace('_', ' ')}" for r in order if roles[r])
    return [
        f"{len(files.clients)} broker credentials: {counts}",
        f"wrote {files.password_file}, {files.acl_file}, {files.conf_file}",
        f"passwords in {files.credentials_file} (mode 0600): {files.new} new, {files.kept} kept",
    ]


def register(app: typer.Typer) -> None:
    """Add ``broker-config`` to ``app``."""

    @app.command("broker-config")
    def broker_config_command(
        site: Annotated[Path, typer.Option(help="the site file (YAML)")],
        out: Annotated[Path, typer.Option(help="directory for the generated files")],
        rotate: Annotated[
            bool, typer.Option("--rotate", help="replace every password, not only new ones")
        ] = False,
        broker_dir: Annotated[
            str | None,
            typer.Option(help="where the broker reads the files (default: --out)"),
        ] = None,
    ) -> None:
        """Mosquitto password file, ACL and settings for every client the site file knows."""
        from app.commands.site import format_config_error
        from scheduler.brokers import site_broker_clients
        from scheduler.site import load_site

        try:
            clients = site_broker_clients(load_site(site))
        except ConfigError as exc:
            typer.echo(format_config_error(exc, site), err=True)
            raise typer.Exit(1) from exc
        try:
            files = write_broker_files(
                clients, out, site.name, rotate=rotate, broker_dir=broker_dir
            )
        except ConfigError as exc:
            typer.echo(f"{exc.field}: {exc.reason}", err=True)
            raise typer.Exit(1) from exc
        except OSError as exc:
            typer.echo(f"cannot write {out}: {exc}", err=True)
            raise typer.Exit(1) from exc
        for line in summary(files):
            typer.echo(line)


__all__ = [
    "ACL_FILE",
    "CONF_FILE",
    "CREDENTIALS_FILE",
    "PASSWORD_FILE",
    "BrokerFiles",
    "read_credentials",
    "register",
    "summary",
    "write_broker_files",
]
