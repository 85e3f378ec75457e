"""Register templates: a device's register map as YAML, validated by pydantic.

A new meter model is a YAML file in ``protocols/templates/``, not a module. Unknown keys are
errors (``extra="forbid"``) that name the key, the file and the line (a ``ConfigError``).

A template lists *channels* (canonical names with their unit suffix, ``power_w``,
``import_energy_wh`` …) and *setpoints* (writable registers)::

    name: eastron_sdm630
    defaults: {table: input, type: float32}
    channels:
      power_w: {address: 52}
      import_energy_wh: {address: 72, unit: kWh}     # kWh on the wire, Wh in the channel
    setpoints: {}

Each register says ``table`` (holding/input), ``address`` (0-based protocol address),
``type``, ``word_order``, the ``unit`` on the wire (``kWh`` for a ``…_wh`` channel: ×1000), a
constant ``scale`` or a ``scale_factor`` register (SunSpec style, value × 10^sf), ``sign``
(``inverted`` turns an export-positive device into the import-positive convention) and
``not_implemented`` raw values that mean "absent". Channel names carry their unit; a wire unit
that cannot become it (``kW`` for ``…_wh``) is a ``ConfigError``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kernel.config import load_yaml_file
from kernel.errors import ConfigError
from kernel.readings import CHANNEL_UNITS, unit_for
from protocols.modbus.codec import SIZE, RegisterType, WordOrder

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

Table = Literal["holding", "input"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Defaults(_Strict):
    """Values a register inherits when it does not say otherwise."""

    table: Table = "holding"
    type: RegisterType = "uint16"
    word_order: WordOrder = "big"
    #: ``sunspec``: the SunSpec "not implemented" value of each type reads as absent
    #: (int16 0x8000, uint16 0xFFFF, acc32 0 …); ``none``: only listed values (and NaN) do
    sentinels: Literal["sunspec", "none"] = "none"


class ScaleFactorRef(_Strict):
    """A register holding a power-of-ten exponent (int16, SunSpec ``sunssf``)."""

    address: int = Field(ge=0, le=0xFFFF)
    table: Table | None = None


#: Units a register may carry on the wire → (the channel's canonical unit, factor to it).
WIRE_UNITS: dict[str, tuple[str, float]] = {
    "W": ("W", 1.0),
    "kW": ("W", 1000.0),
    "Wh": ("Wh", 1.0),
    "kWh": ("Wh", 1000.0),
    "MWh": ("Wh", 1_000_000.0),
    "var": ("var", 1.0),
    "kvar": ("var", 1000.0),
    "VA": ("VA", 1.0),
    "kVA": ("VA", 1000.0),
    "V": ("V", 1.0),
    "A": ("A", 1.0),
    "mA": ("A", 0.001),
    "Hz": ("Hz", 1.0),
    "%": ("%", 1.0),
    "°C": ("°C", 1.0),
    "s": ("s", 1.0),
}


class Register(_Strict):
    """One value on the wire and how it becomes a channel value:
    ``value = raw × scale × unit factor (× 10^sf)``, negated for ``sign: inverted``."""

    address: int = Field(ge=0, le=0xFFFF)
    table: Table | None = None
    type: RegisterType | None = None
    word_order: WordOrder | None = None
    #: the unit on the wire (``kWh``); converted to the channel's unit (``…_wh`` → Wh)
    unit: str | None = None
    scale: float = 1.0
    scale_factor: ScaleFactorRef | None = None
    sign: Literal["normal", "inverted"] = "normal"
    not_implemented: tuple[int, ...] = ()

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str | None) -> str | None:
        if unit is not None and unit not in WIRE_UNITS:
            raise ValueError(f"unknown unit {unit!r}; known: {', '.join(WIRE_UNITS)}")
        return unit

    @property
    def factor(self) -> float:
        """raw → channel value, before a scale-factor register and the sign."""
        return self.scale * (WIRE_UNITS[self.unit][1] if self.unit else 1.0)


class RevertRegister(_Strict):
    """Where the revert time of a setpoint goes, in seconds."""

    address: int = Field(ge=0, le=0xFFFF)
    type: Literal["uint16", "uint32"] = "uint16"


class EnableRegister(_Strict):
    """A register set to ``on_value`` for the setpoint to act (``off_value`` releases it)."""

    address: int = Field(ge=0, le=0xFFFF)
    on_value: int = 1
    off_value: int = 0


class Setpoint(Register):
    """A writable holding register. Writes go: value, revert time, enable."""

    min: float | None = None
    max: float | None = None
    revert: RevertRegister | None = None
    enable: EnableRegister | None = None

    @model_validator(mode="after")
    def _holding_only(self) -> Setpoint:
        if self.table == "input":
            raise ValueError("setpoints are holding registers; input registers are read-only")
        if self.scale_factor is not None:
            raise ValueError("setpoints take a constant scale, not a scale_factor register")
        return self


class Template(_Strict):
    """A device's register map."""

    name: str
    description: str = ""
    manufacturer: str = ""
    defaults: Defaults = Defaults()
    #: registers a read may skip to merge two blocks into one request
    max_gap: int = Field(default=8, ge=0, le=124)
    channels: dict[str, Register]
    setpoints: dict[str, Setpoint] = {}

    @field_validator("channels", "setpoints")
    @classmethod
    def _names_carry_units(cls, regs: dict[str, Register]) -> dict[str, Register]:
        for name, reg in regs.items():
            canonical = unit_for(name)
            if not canonical and name not in CHANNEL_UNITS:
                raise ValueError(f"{name}: a channel name ends with its unit (_w, _wh, _v …)")
            if reg.unit is not None and WIRE_UNITS[reg.unit][0] != canonical:
                raise ValueError(f"{name}: unit {reg.unit} cannot become {canonical or 'none'}")
        return regs

    @model_validator(mode="after")
    def _has_channels(self) -> Template:
        if not self.channels:
            raise ValueError("a template needs at least one channel")
        return self


@cache
def _load(path: Path) -> Template:
    return load_yaml_file(Template, path)


def load_template(name_or_path: str | Path) -> Template:
    """Load a template by name (a file in ``protocols/templates/``) or by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = TEMPLATE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        known = ", ".join(template_names())
        raise ConfigError("template", f"no template {name_or_path!r} (known: {known})")
    return _load(path.resolve())


def template_names() -> list[str]:
    """Names of the shipped templates."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.yaml"))


def register_size(reg: Register, defaults: Defaults) -> int:
    return SIZE[reg.type or defaults.type]
