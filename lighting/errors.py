"""Errors of the lighting core: a :class:`kernel.errors.InputError` that names the field.

Where site files are loaded the runtime adds the file and line:
``raise ConfigError(exc.field, exc.reason, where) from exc``.
"""

from __future__ import annotations

from kernel.errors import InputError


class LightingInputError(InputError):
    """Bad input to the lighting core; ``field`` is a readable path such as
    ``program 'Wohnstraße'.steps[2].level_pct``."""


def check_level_pct(field: str, value: float) -> None:
    """Refuse a level outside [0, 100] % (or not a number) and name the field."""
    if not 0.0 <= value <= 100.0:
        raise LightingInputError(field, f"level {value!r} % is outside [0, 100]")
