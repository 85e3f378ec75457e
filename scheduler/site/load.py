"""Loading a site file: text or data → :class:`~scheduler.site.model.Site`, every problem one
:class:`~kernel.errors.ConfigError` with the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from kernel.config import Path_, parse_yaml, validate_data
from kernel.errors import ConfigError
from scheduler.site.model import Site, SiteReferenceError, _dotted


def _reference_error(exc: ConfigError) -> SiteReferenceError | None:
    cause = exc.__cause__
    if not isinstance(cause, ValidationError):
        return None
    for err in cause.errors():
        found = (err.get("ctx") or {}).get("error")
        if isinstance(found, SiteReferenceError):
            return found
    return None


def _validate(data: Any, name: str, lines: dict[Path_, int] | None) -> Site:
    try:
        return validate_data(Site, data, name, lines)
    except ConfigError as exc:
        ref = _reference_error(exc)
        if ref is None:
            raise
        probe = ref.path
        while probe and lines is not None and probe not in lines:
            probe = probe[:-1]
        line = (lines or {}).get(probe)
        where = f"{name}, line {line}" if line else name
        raise ConfigError(_dotted(ref.path), ref.reason, where) from exc


def load_site_text(text: str, name: str = "site.yaml") -> Site:
    """Parse and validate a site file's text; ``name`` is used in error messages."""
    data, lines = parse_yaml(text, name)
    return _validate(data, name, lines)


def load_site(path: Path | str) -> Site:
    """Load and validate a site file; any problem is one :class:`ConfigError`."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("<file>", f"cannot read {p}: {exc.strerror}", str(p)) from exc
    return load_site_text(text, p.name)


def site_from_data(data: dict[str, Any], name: str = "<site>") -> Site:
    """Validate a site given as data (a generated site, the demo's town)."""
    return _validate(data, name, None)
