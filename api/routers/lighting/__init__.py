"""Street lighting for lighting engineers and operators, one router per resource.

==============================  ====================================================
module                          resource
==============================  ====================================================
:mod:`.config`                  the configuration in force, its replacement, versions
:mod:`.programs`                dimming programs
:mod:`.calendars`               calendars (which program on which night)
:mod:`.segments`                segments, their live decision, calendar assignment
:mod:`.luminaires`              luminaires, their level and its reason chain
:mod:`.previews`                a night's and a year's levels and energy
:mod:`.backtest`                replay of uploaded traffic
:mod:`.savings`                 energy and savings over a period
:mod:`.failures`                active luminaire alarms
==============================  ====================================================

Lighting engineers read and change; operators read; members and auditors get 403. Every
change goes through :mod:`.edits` (stored as a version, applied to the running lighting,
audited); :mod:`.shared` says which configuration applies, :mod:`.computing` what the
figures share.
"""

from fastapi import APIRouter

from api.routers.lighting import (
    backtest,
    calendars,
    config,
    failures,
    luminaires,
    previews,
    programs,
    savings,
    segments,
)

#: The routers in the order of the table above.
ROUTERS: tuple[APIRouter, ...] = (
    config.router,
    programs.router,
    calendars.router,
    segments.router,
    luminaires.router,
    previews.router,
    backtest.router,
    savings.router,
    failures.router,
)

__all__ = ["ROUTERS"]
