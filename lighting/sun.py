"""Sun anchors of one night, computed with ``astral`` for a segment's coordinates.

A *night* is named by the local date of its evening and runs from local noon of that date to
local noon of the next day. All instants are aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from astral import Observer
from astral import sun as astral_sun

from lighting.errors import LightingInputError


@dataclass(frozen=True, slots=True)
class Place:
    """Where a segment is: degrees north/east and the IANA zone its clock times are written in."""

    name: str
    latitude_deg: float | None
    longitude_deg: float | None
    timezone: str = "Europe/Berlin"

    def __post_init__(self) -> None:
        if self.latitude_deg is None or self.longitude_deg is None:
            missing = "latitude_deg" if self.latitude_deg is None else "longitude_deg"
            raise LightingInputError(
                f"segment {self.name!r}.{missing}", "missing: sun anchors need coordinates"
            )
        if not -90.0 <= self.latitude_deg <= 90.0:
            raise LightingInputError(
                f"segment {self.name!r}.latitude_deg", f"{self.latitude_deg} is not in [-90, 90]"
            )
        if not -180.0 <= self.longitude_deg <= 180.0:
            raise LightingInputError(
                f"segment {self.name!r}.longitude_deg",
                f"{self.longitude_deg} is not in [-180, 180]",
            )
        zone(self.timezone, f"segment {self.name!r}.timezone")


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The ``ZoneInfo`` for ``name``; an unknown zone is an input error naming ``field``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise LightingInputError(field, f"unknown time zone {name!r}") from exc


@dataclass(frozen=True, slots=True)
class NightAnchors:
    """The sun anchors of one night (UTC) and the night's window (local noon to noon)."""

    night: date
    start: datetime
    end: datetime
    sunset: datetime
    civil_dusk: datetime
    solar_midnight: datetime
    civil_dawn: datetime
    sunrise: datetime

    @property
    def dark_s(self) -> float:
        """Seconds from sunset to sunrise: the dusk-to-dawn span that full light would burn."""
        return (self.sunrise - self.sunset).total_seconds()


def night_window(night: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Local noon of ``night`` to local noon of the next day, as UTC instants."""
    start = datetime.combine(night, time(12), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(night + timedelta(days=1), time(12), tzinfo=tz).astimezone(UTC)
    return start, end


def night_of(instant: datetime, tz: ZoneInfo) -> date:
    """The night (its evening's local date) that ``instant`` belongs to."""
    local = instant.astimezone(tz)
    return local.date() if local.hour >= 12 else local.date() - timedelta(days=1)


def night_anchors(place: Place, night: date) -> NightAnchors:
    """Sunset, civil dusk, solar midnight, civil dawn and sunrise of ``night`` at ``place``.

    Raises :class:`LightingInputError` where the sun does not set or rise that night
    (polar day or night), since no program anchored to the sun can run there.
    """
    tz = zone(place.timezone)
    assert place.latitude_deg is not None
    assert place.longitude_deg is not None
    observer = Observer(place.latitude_deg, place.longitude_deg)
    start, end = night_window(night, tz)
    following = night + timedelta(days=1)
    try:
        sunset = astral_sun.sunset(observer, night, tzinfo=tz).astimezone(UTC)
        dusk = astral_sun.dusk(observer, night, tzinfo=tz).astimezone(UTC)
        dawn = astral_sun.dawn(observer, following, tzinfo=tz).astimezone(UTC)
        sunrise = astral_sun.sunrise(observer, following, tzinfo=tz).astimezone(UTC)
        midnights = [
            astral_sun.midnight(observer, night + timedelta(days=k), tzinfo=tz).astimezone(UTC)
            for k in (0, 1, 2)
        ]
    except ValueError as exc:
        raise LightingInputError(
            f"segment {place.name!r}.latitude_deg",
            f"no sunset or sunrise on the night of {night.isoformat()}: {exc}",
        ) from exc
    solar_midnight = next(m for m in midnights if start <= m < end)
    return NightAnchors(night, start, end, sunset, dusk, solar_midnight, dawn, sunrise)
