"""Failure detection from node reports: each finding is an :class:`Alarm` with time and
luminaire.

Kinds (``docs/domain.md`` §4): lamp failure (no power at a level above 0 %), lamp on by day, power
too high or too low for the reported level, communication lost (no report within a
configurable time), and failures the node reports itself (D4i driver flags). Expected power
comes from the luminaire's rated power and driver curve (:mod:`lighting.energy`). Raising an
alarm once and clearing it is the runtime's job; :attr:`Alarm.key` identifies it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from lighting.energy import luminaire_power_w
from lighting.errors import LightingInputError
from lighting.site import Luminaire
from lighting.sun import NightAnchors


class FailureKind(enum.StrEnum):
    LAMP_FAILURE = "lamp_failure"
    ON_BY_DAY = "on_by_day"
    POWER_TOO_HIGH = "power_too_high"
    POWER_TOO_LOW = "power_too_low"
    COMMUNICATION_LOST = "communication_lost"
    NODE_REPORTED = "node_reported"


@dataclass(frozen=True, slots=True)
class NodeReport:
    """A node's state report: actual level in %, power in W, energy counter in Wh."""

    luminaire_id: str
    ts: datetime
    level_pct: float
    power_w: float
    energy_wh: float | None = None
    status: str = "ok"
    failures: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FailureThresholds:
    """When a report is a failure.

    * lamp failure: lit, but power ≤ standby + ``lamp_failure_fraction`` × rated power;
    * power too high/low: off the expected power by more than ``tolerance_fraction`` of it
      plus ``tolerance_w``;
    * on by day: lit or drawing lamp power more than ``day_margin_s`` after sunrise and
      before sunset (the margin leaves room for programs that start before sunset);
    * communication lost: no report for ``comm_timeout_s``.
    """

    lamp_failure_fraction: float = 0.03
    tolerance_fraction: float = 0.25
    tolerance_w: float = 2.0
    day_margin_s: float = 3600.0
    comm_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        for name in (
            "lamp_failure_fraction",
            "tolerance_fraction",
            "tolerance_w",
            "day_margin_s",
            "comm_timeout_s",
        ):
            if not getattr(self, name) >= 0:
                raise LightingInputError(f"failure_thresholds.{name}", "must not be negative")


@dataclass(frozen=True, slots=True)
class Alarm:
    luminaire_id: str
    kind: FailureKind
    at: datetime
    detail: str

    @property
    def key(self) -> tuple[str, str]:
        """Identity for raising once and clearing: luminaire and kind."""
        return (self.luminaire_id, self.kind.value)


def is_daytime(anchors: NightAnchors, instant: datetime, margin_s: float = 0.0) -> bool:
    """Whether ``instant`` (inside the night window of ``anchors``) is day: more than
    ``margin_s`` before sunset or after sunrise."""
    margin = timedelta(seconds=margin_s)
    return instant < anchors.sunset - margin or instant > anchors.sunrise + margin


def check_report(
    luminaire: Luminaire,
    report: NodeReport,
    anchors: NightAnchors,
    thresholds: FailureThresholds | None = None,
) -> tuple[Alarm, ...]:
    """Alarms found in one report; ``anchors`` is the night whose window holds ``report.ts``."""
    th = thresholds or FailureThresholds()
    lid = luminaire.luminaire_id
    at = report.ts
    if not anchors.start <= at < anchors.end:
        raise LightingInputError(
            f"report {lid!r}.ts",
            f"{at.isoformat()} is outside the night of {anchors.night.isoformat()} given",
        )
    alarms = [Alarm(lid, FailureKind.NODE_REPORTED, at, f) for f in report.failures]
    dark_w = luminaire.standby_power_w + th.lamp_failure_fraction * luminaire.rated_power_w
    lit = report.level_pct > 0.0
    if is_daytime(anchors, at, th.day_margin_s) and (lit or report.power_w > dark_w):
        alarms.append(
            Alarm(
                lid,
                FailureKind.ON_BY_DAY,
                at,
                f"level {report.level_pct:g} %, {report.power_w:g} W by day",
            )
        )
    expected = luminaire_power_w(luminaire, report.level_pct)
    slack = th.tolerance_fraction * expected + th.tolerance_w
    if lit and report.power_w <= dark_w:
        alarms.append(
            Alarm(
                lid,
                FailureKind.LAMP_FAILURE,
                at,
                f"{report.power_w:g} W at level {report.level_pct:g} % (expected {expected:.1f} W)",
            )
        )
    elif report.power_w > expected + slack:
        alarms.append(
            Alarm(
                lid,
                FailureKind.POWER_TOO_HIGH,
                at,
                f"{report.power_w:g} W at level {report.level_pct:g} % "
                f"(expected {expected:.1f} W ± {slack:.1f} W)",
            )
        )
    elif lit and report.power_w < expected - slack:
        alarms.append(
            Alarm(
                lid,
                FailureKind.POWER_TOO_LOW,
                at,
                f"{report.power_w:g} W at level {report.level_pct:g} % "
                f"(expected {expected:.1f} W ± {slack:.1f} W)",
            )
        )
    return tuple(alarms)


def check_communication(
    luminaire_ids: Iterable[str],
    last_report_at: Mapping[str, datetime],
    now: datetime,
    since: datetime,
    thresholds: FailureThresholds | None = None,
) -> tuple[Alarm, ...]:
    """A communication-lost alarm for every luminaire silent for more than the timeout.

    ``since`` is when watching began (controller start): a node that never reported counts
    as silent from then.
    """
    th = thresholds or FailureThresholds()
    limit = timedelta(seconds=th.comm_timeout_s)
    alarms: list[Alarm] = []
    for lid in luminaire_ids:
        last = last_report_at.get(lid)
        silent_since = last if last is not None else since
        if now - silent_since > limit:
            what = f"last report {last.isoformat()}" if last is not None else "no report yet"
            alarms.append(
                Alarm(
                    lid,
                    FailureKind.COMMUNICATION_LOST,
                    now,
                    f"{what}; silent for {(now - silent_since).total_seconds():.0f} s "
                    f"(limit {th.comm_timeout_s:g} s)",
                )
            )
    return tuple(alarms)
