"""EN 13201 lighting classes and a segment's levels per class.

A segment has a design class, the classes it may be lowered to (in order, one step at a time)
and the installation's level in % for each class. Those levels come from the segment's
lighting design; where the design does not give them, a class's level is proportional to its
maintained luminance (M classes, cd/m²) or illuminance (P and C classes, lx) relative to the
design class, which is at 100 % (``docs/domain.md`` §4).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from lighting.errors import LightingInputError, check_level_pct

#: Maintained average luminance (cd/m², M classes) or illuminance (lx, C and P classes).
CLASS_VALUES: dict[str, float] = {
    "M1": 2.0,
    "M2": 1.5,
    "M3": 1.0,
    "M4": 0.75,
    "M5": 0.5,
    "M6": 0.3,
    "C0": 50.0,
    "C1": 30.0,
    "C2": 20.0,
    "C3": 15.0,
    "C4": 10.0,
    "C5": 7.5,
    "P1": 15.0,
    "P2": 10.0,
    "P3": 7.5,
    "P4": 5.0,
    "P5": 3.0,
    "P6": 2.0,
}


@dataclass(frozen=True, slots=True)
class Classing:
    """Design class, permitted lower classes (highest first) and levels per class in %.

    ``class_levels_pct`` may name any of the classes; missing ones are proportional to the
    class value with the design class at ``design_level_pct``. ``driver_min_pct`` is the
    lowest level the driver can dim to while lit.
    """

    segment: str
    design_class: str
    lower_classes: tuple[str, ...] = ()
    class_levels_pct: Mapping[str, float] = field(default_factory=dict)
    design_level_pct: float = 100.0
    driver_min_pct: float = 1.0
    #: Computed once: per class step the factor on the program level, and the floor in %.
    factors: tuple[float, ...] = field(init=False, repr=False, compare=False)
    floor_level_pct: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"segment {self.segment!r}"
        chain = (self.design_class, *self.lower_classes)
        for i, name in enumerate(chain):
            if name not in CLASS_VALUES:
                field_name = "design_class" if i == 0 else f"lower_classes[{i - 1}]"
                raise LightingInputError(
                    f"{where}.{field_name}", f"unknown lighting class {name!r}"
                )
            if i and (name[0] != chain[0][0] or CLASS_VALUES[name] >= CLASS_VALUES[chain[i - 1]]):
                raise LightingInputError(
                    f"{where}.lower_classes[{i - 1}]",
                    f"{name!r} is not a lower class of the same family after {chain[i - 1]!r}",
                )
        for name, level in self.class_levels_pct.items():
            if name not in chain:
                raise LightingInputError(
                    f"{where}.class_levels_pct.{name}", "not the design class or a lower class"
                )
            check_level_pct(f"{where}.class_levels_pct.{name}", level)
        check_level_pct(f"{where}.design_level_pct", self.design_level_pct)
        check_level_pct(f"{where}.driver_min_pct", self.driver_min_pct)
        levels = class_levels(self)
        for upper, lower in itertools.pairwise(chain):
            if levels[lower] > levels[upper]:
                raise LightingInputError(
                    f"{where}.class_levels_pct.{lower}",
                    f"{levels[lower]} % is above the level of the higher class {upper}",
                )
        design = levels[self.design_class]
        factors = tuple(levels[n] / design if design > 0 else 1.0 for n in chain)
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "floor_level_pct", max(self.driver_min_pct, levels[chain[-1]]))

    @property
    def chain(self) -> tuple[str, ...]:
        """Design class first, then each permitted lower class."""
        return (self.design_class, *self.lower_classes)


def class_levels(classing: Classing) -> dict[str, float]:
    """Level in % per class of the chain, filled in proportionally where not given."""
    design_value = CLASS_VALUES[classing.design_class]
    design_level = classing.class_levels_pct.get(classing.design_class, classing.design_level_pct)
    return {
        name: classing.class_levels_pct.get(name, design_level * CLASS_VALUES[name] / design_value)
        for name in classing.chain
    }


def class_factors(classing: Classing) -> tuple[float, ...]:
    """Per class step (0 = design) the factor a program level is scaled by (design = 1)."""
    return classing.factors


def floor_pct(classing: Classing) -> float:
    """The lowest lit level: the lowest permitted class's level, never below the driver's
    minimum."""
    return classing.floor_level_pct
