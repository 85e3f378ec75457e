"""Errors of the lighting core.

The core cannot import ``protocols.errors`` (pure-core rule), so it raises its own
:class:`LightingInputError`, a ``ValueError`` that names the offending field and the reason.
The runtime translates it into ``protocols.errors.ConfigError(field, reason)`` where site
files are loaded: ``raise ConfigError(exc.field, exc.reason, where) from exc``.
"""

from __future__ import annotations


class LightingInputError(ValueError):
    """Bad input to the lighting core; ``field`` is a readable path such as
    ``program 'Wohnstraße'.steps[2].level_pct``."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def check_level_pct(field: str, value: float) -> None:
    """Refuse a level outside [0, 100] % (or not a number) and name the field."""
    if not 0.0 <= value <= 100.0:
        raise LightingInputError(field, f"level {value!r} % is outside [0, 100]")
