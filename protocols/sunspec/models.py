"""SunSpec model definitions, read from the JSON files that pysunspec2 ships.

Offsets are never typed by hand: each model's layout is computed from its definition (points
in order, each ``size`` registers; then its groups, each laid out the same way, repeated
``count`` times). Offsets count from the model's ``ID`` register, so ``W`` of model 103 is at
offset 14 as in the SunSpec tables.

Groups with a fixed count (``count`` absent or a number) are laid out completely; a group whose
count is given by a point (a repeating group whose length is only known from the device) ends
the static layout: points after it are not offered, the top-level points before it are.
Point names inside groups are qualified with the group path (``PFWInj.PF``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from kernel.errors import ConfigError
from protocols.modbus.codec import SIZE

#: Models this project decodes and maps to canonical readings.
SUPPORTED_MODELS: tuple[int, ...] = (
    1,
    101,
    102,
    103,
    111,
    112,
    113,
    120,
    122,
    123,
    201,
    202,
    203,
    204,
    701,
    704,
)


@dataclass(frozen=True, slots=True)
class PointDef:
    """One point: where it is (registers from the model's ID register), how to read it."""

    name: str
    offset: int
    type: str
    size: int
    sf: str | None = None  # name of the scale-factor point, if any
    units: str | None = None
    writable: bool = False


@dataclass(frozen=True, slots=True)
class ModelDef:
    """A model's static layout. ``length`` is the body length (the ``L`` register)."""

    id: int
    name: str
    points: tuple[PointDef, ...]
    length: int

    def point(self, name: str) -> PointDef:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(f"model {self.id} ({self.name}) has no point {name!r}")

    @property
    def by_name(self) -> dict[str, PointDef]:
        return {p.name: p for p in self.points}


def _json_for(model_id: int) -> dict[str, Any]:
    try:
        ref = resources.files("sunspec2") / "models" / "json" / f"model_{model_id}.json"
        text = ref.read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ConfigError(
            "model", f"SunSpec model {model_id} has no definition in pysunspec2"
        ) from exc
    data: dict[str, Any] = json.loads(text)
    return data


def _layout(
    group: dict[str, Any],
    prefix: str,
    offset: int,
    out: list[PointDef],
    sf_scope: dict[str, str],
) -> tuple[int, bool]:
    """Append the points of ``group`` at ``offset``; return the next offset and whether the
    layout is still static."""
    local_scope = dict(sf_scope)
    for p in group.get("points", []):
        local_scope[p["name"]] = prefix + p["name"]
    for p in group.get("points", []):
        size = int(p.get("size", 1))
        type_ = str(p["type"])
        if type_ in SIZE and SIZE[type_] != size:
            raise ConfigError(
                f"{prefix}{p['name']}", f"size {size} does not match type {type_}", "pysunspec2"
            )
        sf = p.get("sf")
        out.append(
            PointDef(
                name=prefix + p["name"],
                offset=offset,
                type=type_,
                size=size,
                sf=local_scope.get(sf, sf) if isinstance(sf, str) else None,
                units=p.get("units"),
                writable=p.get("access") == "RW",
            )
        )
        offset += size
    for sub in group.get("groups", []):
        count = sub.get("count", 1)
        if not isinstance(count, int):
            return offset, False
        for index in range(count):
            label = sub["name"] if count == 1 else f"{sub['name']}[{index}]"
            offset, static = _layout(sub, f"{prefix}{label}.", offset, out, local_scope)
            if not static:
                return offset, False
    return offset, True


@cache
def model_def(model_id: int) -> ModelDef:
    """Layout of SunSpec model ``model_id`` from the pysunspec2 definition (cached)."""
    data = _json_for(model_id)
    group = data["group"]
    points: list[PointDef] = []
    end, _static = _layout(group, "", 0, points, {})
    # the body length excludes ID and L
    return ModelDef(
        id=int(data["id"]), name=str(group["name"]), points=tuple(points), length=end - 2
    )
