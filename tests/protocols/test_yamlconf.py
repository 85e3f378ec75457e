from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from kernel.config import load_yaml_file, load_yaml_text
from kernel.errors import ConfigError


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    port: int = 502


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    devices: list[Device] = []


GOOD = """\
name: Iserlohn
devices:
  - name: inv-1
    port: 1502
  - name: meter-1
"""


def test_valid_file_loads() -> None:
    site = load_yaml_text(Site, GOOD, "site.yaml")
    assert [d.name for d in site.devices] == ["inv-1", "meter-1"]
    assert site.devices[1].port == 502


def test_unknown_key_names_key_file_and_line() -> None:
    text = GOOD + "  - name: bat-1\n    prot: 7\n"
    with pytest.raises(ConfigError) as info:
        load_yaml_text(Site, text, "site.yaml")
    err = info.value
    assert err.field == "devices.2.prot"
    assert err.reason.startswith("unknown key")
    assert err.where == "site.yaml, line 7"


def test_wrong_type_names_field_and_line() -> None:
    text = "name: x\ndevices:\n  - name: a\n    port: fivehundred\n"
    with pytest.raises(ConfigError) as info:
        load_yaml_text(Site, text, "s.yaml")
    assert info.value.field == "devices.0.port"
    assert info.value.where == "s.yaml, line 4"
    assert "integer" in info.value.reason


def test_missing_key_and_bad_yaml() -> None:
    with pytest.raises(ConfigError, match="name: required key is missing"):
        load_yaml_text(Site, "devices: []\n", "s.yaml")
    with pytest.raises(ConfigError, match=r"not valid YAML") as info:
        load_yaml_text(Site, "name: [unclosed\n", "s.yaml")
    assert info.value.where is not None
    assert "line" in info.value.where


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml_file(Site, tmp_path / "absent.yaml")
    p = tmp_path / "site.yaml"
    p.write_text(GOOD)
    assert load_yaml_file(Site, p).name == "Iserlohn"
