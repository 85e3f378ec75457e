"""``waldstadt broker-config``: the files, their modes, passwords kept or rotated, never shown;
the password lines are what ``mosquitto_passwd`` writes and a real Mosquitto accepts them."""

from __future__ import annotations

import base64
import logging
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from app.commands.broker import read_credentials, write_broker_files
from app.demo.broker import MosquittoProcess, mosquitto_binary
from scheduler.brokers import mosquitto_password_line, site_broker_clients
from scheduler.site import load_site
from tests.e2e.mqtt_probe import Probe

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "site.yaml"
NOT_AUTHORIZED = 135


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["broker-config", *args])
    return result.exit_code, result.output


def site_with_luminaires(tmp_path: Path, count: int) -> Path:
    """The example site with the Waldweg's luminaires cut to ``count``."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["lighting"]["luminaires"] = data["lighting"]["luminaires"][:count]
    path = tmp_path / f"site-{count}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_writes_the_four_files_private_where_secret_and_never_prints_a_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "broker"
    caplog.set_level(logging.DEBUG)
    code, text = run("--site", str(EXAMPLE), "--out", str(out))
    assert code == 0, text
    assert mode(out) == 0o700
    assert mode(out / "credentials.yaml") == 0o600
    assert mode(out / "password_file") == 0o600
    assert mode(out / "acl_file") == 0o644
    passwords = read_credentials(out / "credentials.yaml")
    assert len(passwords) == 8  # controller, six luminaires, the ChirpStack server
    assert all(len(pw) >= 43 for pw in passwords.values())  # 256 bits, URL-safe base64
    assert len(set(passwords.values())) == len(passwords)
    for pw in passwords.values():
        assert pw not in text
        assert pw not in caplog.text
        assert pw not in (out / "password_file").read_text()
    assert "8 broker credentials: 1 controller, 6 node, 1 network server" in text
    assert "8 new, 0 kept" in text
    conf = (out / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert f"password_file {out.resolve() / 'password_file'}" in conf
    assert f"acl_file {out.resolve() / 'acl_file'}" in conf


def test_running_again_keeps_passwords_rotate_replaces_them(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    assert run("--site", str(site_with_luminaires(tmp_path, 4)), "--out", str(out))[0] == 0
    first = read_credentials(out / "credentials.yaml")
    code, text = run("--site", str(site_with_luminaires(tmp_path, 6)), "--out", str(out))
    assert code == 0, text
    assert "2 new, 6 kept" in text
    second = read_credentials(out / "credentials.yaml")
    assert {k: second[k] for k in first} == first
    assert set(second) - set(first) == {"waldweg-05", "waldweg-06"}
    code, text = run("--site", str(site_with_luminaires(tmp_path, 3)), "--out", str(out))
    assert "0 new, 5 kept" in text
    assert "waldweg-04" not in read_credentials(out / "credentials.yaml")
    assert "waldweg-04" not in (out / "password_file").read_text()
    code, text = run("--site", str(EXAMPLE), "--out", str(out), "--rotate")
    assert "8 new, 0 kept" in text
    rotated = read_credentials(out / "credentials.yaml")
    assert not set(rotated.values()) & set(second.values())


def test_a_credentials_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "broker"
    assert run("--site", str(EXAMPLE), "--out", str(out))[0] == 0
    (out / "credentials.yaml").chmod(0o644)
    before = (out / "credentials.yaml").read_text()
    code, text = run("--site", str(EXAMPLE), "--out", str(out))
    assert code == 1
    assert "readable by others (mode 0644)" in text
    assert "--rotate" in text
    assert (out / "credentials.yaml").read_text() == before
    assert run("--site", str(EXAMPLE), "--out", str(out), "--rotate")[0] == 0
    assert mode(out / "credentials.yaml") == 0o600


def test_a_bad_broker_section_names_the_file_and_key(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["broker"] = {"gateways": [{"username": "street", "segments": ["hauptstrasse"]}]}
    bad = tmp_path / "site.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, text = run("--site", str(bad), "--out", str(tmp_path / "out"))
    assert code == 1
    assert f"{bad}: broker.gateways.0.segments.0: no segment 'hauptstrasse'" in text
    assert not (tmp_path / "out").exists()


def test_a_password_line_is_the_line_mosquitto_passwd_writes(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        pytest.fail("mosquitto_passwd is needed (Debian: mosquitto; .ci/run installs it)")
    pwfile = tmp_path / "pw"
    password = "not-a-real-password-only-for-this-test"  # argv is visible: a test value only
    subprocess.run([tool, "-c", "-b", str(pwfile), "waldweg-01", password], check=True)
    line = pwfile.read_text().strip()
    _, _, rounds, salt_b64, _ = line.split(":", 1)[1].split("$")
    salt = base64.b64decode(salt_b64)
    assert mosquitto_password_line("waldweg-01", password, salt, int(rounds)) == line


@pytest.fixture
def broker_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="waldstadt-broker-config-"))  # mosquitto reaches /tmp
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_mosquitto_accepts_every_password_also_after_a_rerun(broker_dir: Path) -> None:
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is needed (.ci/run installs it)")
    clients = site_broker_clients(load_site(EXAMPLE))
    first = write_broker_files(clients, broker_dir, "site.yaml")
    lines_before = first.password_file.read_text()
    again = write_broker_files(clients, broker_dir, "site.yaml")  # new salts, same passwords
    assert again.passwords == first.passwords
    assert again.password_file.read_text() != lines_before
    with MosquittoProcess(again) as broker:
        for username, password in first.passwords.items():
            probe = Probe(broker.host, broker.port, username, password)
            assert probe.connect() == 0, username
            probe.close()
        other = next(iter(first.passwords.values()))
        probe = Probe(broker.host, broker.port, "waldweg-01", other)  # someone else's password
        assert probe.connect() == NOT_AUTHORIZED
        probe.close()
