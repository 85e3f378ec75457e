"""The process's broker connection from its settings: ``mqtts://`` builds a verifying TLS
context, ``mqtt://`` never carries TLS files, and every refusal names the variable."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from kernel.errors import ConfigError
from scheduler.broker_connection import broker_tls, bus_config
from scheduler.settings import Settings, load_settings
from tests.e2e.tls_pki import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):
        if var.startswith("WALDSTADT_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("WALDSTADT_MODE", "demo")  # the secret rules are not the subject here


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(f"WALDSTADT_{name.upper()}", value)
    return load_settings()


def test_mqtts_verifies_the_broker_against_the_ca_and_shows_the_client_certificate(
    monkeypatch: pytest.MonkeyPatch, pki: Pki
) -> None:
    s = settings(
        monkeypatch,
        broker_url="mqtts://127.0.0.1",
        broker_ca_file=str(pki.ca),
        broker_cert_file=str(pki.client_cert),
        broker_key_file=str(pki.client_key),
        broker_username="waldstadt-controller",
        broker_password="p" * 43,
    )
    config = bus_config(s)
    assert (config.host, config.port) == ("127.0.0.1", 8883)
    assert (config.username, config.password) == ("waldstadt-controller", "p" * 43)
    tls = config.tls
    assert tls is not None
    assert tls.verify_mode is ssl.CERT_REQUIRED
    assert tls.check_hostname
    assert tls.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert len(tls.get_ca_certs()) == 1  # only the site's CA, not the system's


def test_mqtts_without_a_ca_file_verifies_against_the_system_cas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tls = broker_tls(settings(monkeypatch, broker_url="mqtts://broker.example:8883"))
    assert tls is not None
    assert tls.verify_mode is ssl.CERT_REQUIRED
    assert tls.check_hostname


def test_plain_mqtt_has_no_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    assert bus_config(settings(monkeypatch, broker_url="mqtt://127.0.0.1")).tls is None


@pytest.mark.parametrize(
    ("env", "variable", "reason"),
    [
        ({"broker_url": "mqtt://127.0.0.1", "broker_ca_file": "{ca}"},
         "WALDSTADT_BROKER_CA_FILE", "only for an mqtts://"),
        ({"broker_url": "mqtt://127.0.0.1", "broker_cert_file": "{cert}",
          "broker_key_file": "{key}"}, "WALDSTADT_BROKER_CERT_FILE", "only for an mqtts://"),
        ({"broker_ca_file": "{ca}"}, "WALDSTADT_BROKER_CA_FILE", "only for an mqtts://"),
        ({"broker_url": "mqtts://127.0.0.1", "broker_key_file": "{key}"},
         "WALDSTADT_BROKER_KEY_FILE", "needs WALDSTADT_BROKER_CERT_FILE"),
        ({"broker_url": "mqtts://127.0.0.1", "broker_ca_file": "/nonexistent/ca.pem"},
         "WALDSTADT_BROKER_CA_FILE", "no such file"),
    ],
)  # fmt: skip
def test_settings_refuse_tls_files_that_would_be_ignored_or_are_missing(
    monkeypatch: pytest.MonkeyPatch, pki: Pki, env: dict[str, str], variable: str, reason: str
) -> None:
    paths = {"ca": pki.ca, "cert": pki.client_cert, "key": pki.client_key}
    with pytest.raises(ConfigError) as err:
        settings(monkeypatch, **{k: v.format(**paths) for k, v in env.items()})
    assert err.value.field == variable
    assert reason in err.value.reason


def test_a_file_that_is_not_a_certificate_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, pki: Pki, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    s = settings(monkeypatch, broker_url="mqtts://127.0.0.1", broker_ca_file=str(junk))
    with pytest.raises(ConfigError) as err:
        bus_config(s)
    assert err.value.field == "WALDSTADT_BROKER_CA_FILE"
    s = settings(
        monkeypatch,
        broker_ca_file=str(pki.ca),
        broker_cert_file=str(pki.client_cert),
        broker_key_file=str(pki.server_key),  # the wrong key
    )
    with pytest.raises(ConfigError) as err:
        bus_config(s)
    assert err.value.field == "WALDSTADT_BROKER_CERT_FILE"
    assert "WALDSTADT_BROKER_KEY_FILE" in err.value.reason
