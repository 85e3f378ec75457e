"""Decoded SunSpec models → canonical channels.

Sign conventions (see ``kernel.readings``):

* meters (201–204): ``power_w`` positive = import at the meter's point (SunSpec meter
  convention), ``import_energy_wh``/``export_energy_wh`` from TotWhImp/TotWhExp;
* inverters (101–103, 111–113, 701): ``power_w`` is the AC output, positive = producing;
  the lifetime energy counter is ``pv_energy_wh``;
* ``power_limit_pct`` is the active limit in % of WMax (100 when no limit is enabled);
* ``operating_state`` is the SunSpec state enum as a number (model 103 ``St``: 1 off,
  2 sleeping, 3 starting, 4 MPPT, 5 throttled, 6 shutting down, 7 fault, 8 standby; model 701
  ``InvSt``).

An inverter and its meter may share one unit id (SolarEdge units chain the meter's common
model and a 201–204 model behind the inverter's): both map ``W`` to ``power_w``, so the meter
is a part of its own, never mixed into the inverter's channels. Its readings carry the device
id :func:`meter_part_id` (``<device>:meter``; a second meter ``<device>:meter2`` …), which a
site file names as a member's grid meter.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocols.sunspec.decode import Value

INVERTER_MODELS = (101, 102, 103, 111, 112, 113)
METER_MODELS = (201, 202, 203, 204)
DER_MEASURE_MODEL = 701
CONTROL_MODELS = (123, 704)

_INVERTER = {
    "W": "power_w",
    "WH": "pv_energy_wh",
    "Hz": "frequency_hz",
    "VAr": "reactive_power_var",
    "PhVphA": "voltage_l1_v",
    "PhVphB": "voltage_l2_v",
    "PhVphC": "voltage_l3_v",
    "AphA": "current_l1_a",
    "AphB": "current_l2_a",
    "AphC": "current_l3_a",
    "St": "operating_state",
}
_METER = {
    "W": "power_w",
    "TotWhImp": "import_energy_wh",
    "TotWhExp": "export_energy_wh",
    "Hz": "frequency_hz",
    "VAR": "reactive_power_var",
    "PhVphA": "voltage_l1_v",
    "PhVphB": "voltage_l2_v",
    "PhVphC": "voltage_l3_v",
    "AphA": "current_l1_a",
    "AphB": "current_l2_a",
    "AphC": "current_l3_a",
    "WphA": "power_l1_w",
    "WphB": "power_l2_w",
    "WphC": "power_l3_w",
}
_DER_701 = {
    "W": "power_w",
    "TotWhInj": "pv_energy_wh",
    "Hz": "frequency_hz",
    "Var": "reactive_power_var",
    "VL1": "voltage_l1_v",
    "VL2": "voltage_l2_v",
    "VL3": "voltage_l3_v",
    "AL1": "current_l1_a",
    "AL2": "current_l2_a",
    "AL3": "current_l3_a",
    "InvSt": "operating_state",
}
_NAMEPLATE = {"WRtg": "rated_power_w"}

#: What follows the device id in the id of a meter that shares an inverter's unit id.
METER_PART = "meter"


def meter_part_id(device_id: str, index: int = 0) -> str:
    """The device id of the ``index``-th (from 0) meter on an inverter's unit id."""
    return f"{device_id}:{METER_PART}" + (str(index + 1) if index else "")


def meter_part_of(part_id: str) -> tuple[str, int] | None:
    """``(device id, meter index)`` of a meter part's id; ``None`` for any other id."""
    device_id, sep, part = part_id.partition(":")
    if not sep or not part.startswith(METER_PART):
        return None
    number = part[len(METER_PART) :]
    if number == "":
        return device_id, 0
    if number.isdigit() and int(number) >= 2 and not number.startswith("0"):
        return device_id, int(number) - 1
    return None


def has_meter_parts(model_ids: tuple[int, ...]) -> bool:
    """Whether a chain's meter models are parts of their own (an inverter leads the chain)."""
    meters = any(m in METER_MODELS for m in model_ids)
    return meters and any(m in INVERTER_MODELS or m == DER_MEASURE_MODEL for m in model_ids)


def _numeric(value: Value) -> float | None:
    if value is None or isinstance(value, str):
        return None
    return float(value)


def _apply(
    table: Mapping[str, str], values: Mapping[str, Value], out: dict[str, float | None]
) -> None:
    for point, channel in table.items():
        if point in values or channel not in out:
            out[channel] = _numeric(values.get(point))


def _limit_pct(model_id: int, values: Mapping[str, Value]) -> float | None:
    enabled_point, pct_point = (
        ("WMaxLim_Ena", "WMaxLimPct") if model_id == 123 else ("WMaxLimPctEna", "WMaxLimPct")
    )
    enabled = values.get(enabled_point)
    if enabled is None:
        return None
    if enabled != 1:
        return 100.0
    return _numeric(values.get(pct_point))


def canonical(models: Mapping[int, Mapping[str, Value]]) -> dict[str, float | None]:
    """Canonical channel values (``None`` = absent) from decoded models by model id."""
    out: dict[str, float | None] = {}
    for model_id, values in models.items():
        if model_id in INVERTER_MODELS:
            _apply(_INVERTER, values, out)
        elif model_id in METER_MODELS:
            _apply(_METER, values, out)
        elif model_id == DER_MEASURE_MODEL:
            _apply(_DER_701, values, out)
        elif model_id == 120:
            _apply(_NAMEPLATE, values, out)
        elif model_id in CONTROL_MODELS:
            out["power_limit_pct"] = _limit_pct(model_id, values)
    return out


def channels_for(model_ids: tuple[int, ...]) -> tuple[str, ...]:
    """The channels :func:`canonical` yields for a device with these models."""
    seen: dict[str, None] = {}
    for model_id in model_ids:
        if model_id in INVERTER_MODELS:
            seen.update(dict.fromkeys(_INVERTER.values()))
        elif model_id in METER_MODELS:
            seen.update(dict.fromkeys(_METER.values()))
        elif model_id == DER_MEASURE_MODEL:
            seen.update(dict.fromkeys(_DER_701.values()))
        elif model_id == 120:
            seen.update(dict.fromkeys(_NAMEPLATE.values()))
        elif model_id in CONTROL_MODELS:
            seen["power_limit_pct"] = None
    return tuple(seen)


_CONTROL_POINTS = {
    123: frozenset({"WMaxLim_Ena", "WMaxLimPct", "WMaxLimPct_SF"}),
    704: frozenset({"WMaxLimPctEna", "WMaxLimPct", "WMaxLimPct_SF"}),
}


def points_used(model_id: int) -> frozenset[str] | None:
    """The points :func:`canonical` looks at in this model (``None``: the model is not
    mapped). A poll decodes only these; scale factors are found through the points."""
    if model_id in INVERTER_MODELS:
        return frozenset(_INVERTER)
    if model_id in METER_MODELS:
        return frozenset(_METER)
    if model_id == DER_MEASURE_MODEL:
        return frozenset(_DER_701)
    if model_id == 120:
        return frozenset(_NAMEPLATE)
    return _CONTROL_POINTS.get(model_id)
