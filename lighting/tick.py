"""The decision tick: program, class, presence and override → level, ramp and reason chain.

Precedence, applied in this order for every luminaire at the tick's instant:

1. **Program** – the level ``P`` of the step in force in the segment's resolved night
   (0 % before the first step: off by day).
2. **Class** – traffic adaptation may lower the segment's class; ``P`` is scaled by the
   lower class's level relative to the design class (all luminaires evenly).
3. **Floor** – a lit level never goes below the lowest permitted class's level or the
   driver's minimum, and never above 100 %.
4. **Presence** – while a corridor hold lasts, a lit luminaire goes up to its boost level
   (never down); after the hold it ramps back over the rule's ramp-down time.
5. **Override** – an operator override sets the level outright (luminaire > segment > all).

The segment level (steps 1–3) is computed once per segment and shared by its luminaires;
only luminaires with a hold or an override get their own reason chain, which keeps a tick for
10,000 luminaires well inside its time budget.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from kernel.commands import Command, CommandKind
from lighting.classes import Classing, class_factors, class_levels, floor_pct
from lighting.errors import LightingInputError
from lighting.overrides import ActiveOverrides, Override, active_overrides
from lighting.presence import PresenceHold, prune_holds
from lighting.program import ResolvedNight, step_at
from lighting.site import LightingIndex, Segment
from lighting.sun import zone
from lighting.traffic import TrafficSample, TrafficState, adapt


class LuminaireDecision(NamedTuple):
    """Target ``level_pct`` reached over ``ramp_s``; ``base_pct`` is the level before presence
    and override; ``reasons`` reads left to right as in the operator view.

    A named tuple rather than a frozen dataclass: a tick makes one per luminaire, and this
    is the cheapest immutable record to build 10,000 times."""

    luminaire_id: str
    segment_id: str
    level_pct: float
    ramp_s: float
    reasons: tuple[str, ...]
    base_pct: float
    overridden: bool = False

    @property
    def reason_text(self) -> str:
        return " → ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class SegmentDecision:
    """The shared part of a segment's decision (program, class and floor)."""

    segment_id: str
    program: str
    step: str | None
    program_pct: float
    lighting_class: str
    level_pct: float
    ramp_s: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick's output and the state to feed into the next one."""

    at: datetime
    decisions: dict[str, LuminaireDecision]
    segments: dict[str, SegmentDecision]
    traffic: dict[str, TrafficState]
    holds: dict[str, PresenceHold]
    #: segments whose luminaires all took the shared decision (no hold, no override)
    plain: frozenset[str] = frozenset()


def pct(value: float) -> str:
    """A level for a reason text: at most one decimal."""
    return f"{round(value, 1):g} %"


def _clock(instant: datetime, tz: ZoneInfo) -> str:
    return instant.astimezone(tz).strftime("%H:%M:%S")


def decide_segment(
    segment: Segment,
    night: ResolvedNight | None,
    traffic: TrafficState | None,
    sample: TrafficSample | None,
    now: datetime,
) -> tuple[SegmentDecision, TrafficState | None]:
    """Steps 1–3 of the precedence for one segment, and its next traffic state."""
    sid = segment.segment_id
    if night is None or not night.start <= now < night.end:
        raise LightingInputError(
            f"nights[{sid!r}]", f"no resolved night covers {now.isoformat()}; resolve it first"
        )
    step = step_at(night, now)
    program_pct = step.level_pct if step is not None else 0.0
    if step is None:
        reasons = [f"program {night.program!r}: off by day (before its first step)"]
        ramp_s, changed_at = 0.0, night.start
    else:
        reasons = [f"program {night.program!r} step {step.step_name!r} {pct(program_pct)}"]
        ramp_s, changed_at = step.ramp_s, step.at
    new_traffic: TrafficState | None = None
    if segment.traffic is not None:
        new_traffic = adapt(
            segment.traffic,
            traffic or TrafficState(),
            sample,
            now,
            len(segment.classing.lower_classes),
        )
        # The class ramp applies when the class changed after the step in force (not when
        # this is the segment's first tick, which merely starts the state).
        known = traffic is not None and traffic.since is not None
        if known and new_traffic.since is not None and new_traffic.since > changed_at:
            ramp_s = segment.class_ramp_s
    class_steps = new_traffic.steps if new_traffic is not None else 0
    level = _class_and_floor(segment.classing, program_pct, new_traffic, reasons)
    decision = SegmentDecision(
        sid,
        night.program,
        step.step_name if step is not None else None,
        program_pct,
        segment.classing.chain[class_steps],
        level,
        ramp_s,
        tuple(reasons),
    )
    return decision, new_traffic


def _class_and_floor(
    classing: Classing,
    program_pct: float,
    traffic: TrafficState | None,
    reasons: list[str],
) -> float:
    """Steps 2–3: the program level (%) scaled to the class that ``traffic`` holds, raised to
    the floor and capped at 100 % while lit; the reasons for each change go onto ``reasons``."""
    class_steps = traffic.steps if traffic is not None else 0
    chain = classing.chain
    level = program_pct * class_factors(classing)[class_steps]
    if program_pct <= 0.0:
        return level
    if class_steps > 0:
        assert traffic is not None
        reasons.append(f"class lowered to {chain[class_steps]} by {traffic.cause} → {pct(level)}")
    elif traffic is not None and traffic.fallback:
        reasons.append(f"class {chain[0]}: {traffic.cause}")
    floor = floor_pct(classing)
    if level < floor:
        level = floor
        lowest = chain[-1]
        reasons.append(
            f"raised to floor {pct(floor)} (lowest permitted class {lowest} "
            f"{pct(class_levels(classing)[lowest])}, driver minimum "
            f"{pct(classing.driver_min_pct)})"
        )
    return min(level, 100.0)


def decide_tick(
    index: LightingIndex,
    nights: Mapping[str, ResolvedNight],
    traffic: Mapping[str, TrafficState],
    samples: Mapping[str, TrafficSample],
    holds: Mapping[str, PresenceHold],
    overrides: Iterable[Override] | ActiveOverrides,
    now: datetime,
    previous: Tick | None = None,
) -> Tick:
    """Decide every luminaire's level at ``now`` (UTC).

    ``nights`` maps each segment to its resolved night covering ``now`` (see
    :func:`lighting.schedule.nights_covering`); ``traffic`` is the previous tick's
    states, ``samples`` the latest sensor sample per segment (old ones are harmless),
    ``holds`` the presence holds (from :func:`lighting.presence.apply_detection`).
    ``previous`` (the last tick over the same index) lets a segment whose shared decision
    did not change keep its luminaires' decisions instead of building them again.
    """
    active = (
        overrides if isinstance(overrides, ActiveOverrides) else active_overrides(overrides, now)
    )
    live_holds = prune_holds(holds, now) if holds else {}
    # Segments where some luminaire needs its own chain; all others take the shared decision.
    special = {
        index.luminaires[lid].segment_id
        for lid in (*live_holds, *active.by_luminaire)
        if lid in index.luminaires
    }
    special.update(active.by_segment)
    decisions: dict[str, LuminaireDecision] = {}
    seg_decisions: dict[str, SegmentDecision] = {}
    new_traffic: dict[str, TrafficState] = {}
    plain: set[str] = set()
    for sid, segment in index.segments.items():
        seg, state = decide_segment(
            segment, nights.get(sid), traffic.get(sid), samples.get(sid), now
        )
        seg_decisions[sid] = seg
        if state is not None:
            new_traffic[sid] = state
        if sid not in special and active.everything is None:
            plain.add(sid)
            _plain_decisions(index, seg, previous, decisions)
        else:
            _own_decisions(index, segment, seg, live_holds, active, now, decisions)
    return Tick(now, decisions, seg_decisions, new_traffic, live_holds, frozenset(plain))


def _plain_decisions(
    index: LightingIndex,
    seg: SegmentDecision,
    previous: Tick | None,
    out: dict[str, LuminaireDecision],
) -> None:
    """Every luminaire of the segment takes the shared decision (the previous tick's objects
    when the shared decision is the same)."""
    sid = seg.segment_id
    lums = index.by_segment[sid]
    if previous is not None and sid in previous.plain and previous.segments.get(sid) == seg:
        prev = previous.decisions
        out.update({lum.luminaire_id: prev[lum.luminaire_id] for lum in lums})
        return
    level, ramp_s, reasons = seg.level_pct, seg.ramp_s, seg.reasons
    out.update(
        {
            lum.luminaire_id: LuminaireDecision(
                lum.luminaire_id, sid, level, ramp_s, reasons, level
            )
            for lum in lums
        }
    )


def _own_decisions(
    index: LightingIndex,
    segment: Segment,
    seg: SegmentDecision,
    holds: Mapping[str, PresenceHold],
    active: ActiveOverrides,
    now: datetime,
    out: dict[str, LuminaireDecision],
) -> None:
    """Steps 4 and 5 of the precedence for the luminaires of a segment with a hold or an
    override: each gets its own reason chain."""
    sid = seg.segment_id
    level, ramp_s, reasons = seg.level_pct, seg.ramp_s, seg.reasons
    any_override = bool(active.everything or active.by_segment or active.by_luminaire)
    tz = zone(segment.timezone)
    for lum in index.by_segment[sid]:
        lid = lum.luminaire_id
        hold = holds.get(lid) if holds else None
        ov = active.for_luminaire(lid, sid) if any_override else None
        if hold is None and ov is None:
            out[lid] = LuminaireDecision(lid, sid, level, ramp_s, reasons, level)
            continue
        lum_level, lum_ramp, lum_reasons = level, ramp_s, reasons
        if hold is not None and level > 0.0:
            lum_level, lum_ramp, lum_reasons = _with_hold(hold, level, ramp_s, reasons, now, tz)
        if ov is not None:
            ov_level = ov.level_pct
            if 0.0 < ov_level < segment.classing.driver_min_pct:
                ov_level = segment.classing.driver_min_pct
            lum_level, lum_ramp = ov_level, ov.ramp_s
            lum_reasons = (
                *lum_reasons,
                f"override {ov.override_id!r} ({ov.scope.value}) {pct(ov_level)} until "
                f"{ov.expires_at.astimezone(tz).strftime('%Y-%m-%d %H:%M')}",
            )
        out[lid] = LuminaireDecision(
            lid, sid, lum_level, lum_ramp, lum_reasons, level, ov is not None
        )


def _with_hold(
    hold: PresenceHold,
    level: float,
    ramp_s: float,
    reasons: tuple[str, ...],
    now: datetime,
    tz: ZoneInfo,
) -> tuple[float, float, tuple[str, ...]]:
    """A lit luminaire under a presence hold: boosted while it lasts, then ramping down."""
    if now < hold.until:
        if hold.boost_pct > level:
            return (
                hold.boost_pct,
                hold.ramp_up_s,
                (*reasons, f"presence boost {pct(hold.boost_pct)} until {_clock(hold.until, tz)}"),
            )
    elif now < hold.until + timedelta(seconds=hold.ramp_down_s):
        return (
            level,
            hold.ramp_down_s,
            (
                *reasons,
                f"presence hold ended {_clock(hold.until, tz)}, ramping down "
                f"over {hold.ramp_down_s:g} s",
            ),
        )
    return level, ramp_s, reasons


TICK_SOURCE = "lighting"


def level_commands(
    decisions: Mapping[str, LuminaireDecision],
    in_force: Mapping[str, Command],
    at: datetime,
    life_s: float,
    renew_within_s: float = 0.0,
) -> tuple[Command, ...]:
    """The commands that bring the nodes to ``decisions`` (decided at ``at``).

    ``in_force`` holds each luminaire's command in force (the writer's). A luminaire whose
    command in force has the decided level gets no command unless it is due for renewal;
    then the same level is sent again as a new command, so a node never mistakes a long
    program step for a lost controller (its controller timeout must exceed ``life_s``).

    Renewal (``renew_within_s`` > 0) is staggered (:func:`renewal_phase`); a command that
    expires within ``renew_within_s`` is renewed whatever its phase. Every command lives
    ``life_s`` seconds; its id is derived from luminaire, instant and level, so the same
    decision issued twice is the same command."""
    stamp = at.strftime("%Y%m%dT%H%M%S")
    expires = at + timedelta(seconds=life_s)
    renew_by = at + timedelta(seconds=renew_within_s)
    period = life_s - renew_within_s
    stagger = renew_within_s > 0 and period > 0
    at_s = at.timestamp()
    ages: dict[datetime | None, float] = {}  # age in s by decision instant (few distinct)
    reasons: dict[tuple[str, ...], str] = {}  # the reason text by chain (shared by segments)
    out: list[Command] = []
    for lid, dec in decisions.items():
        held = in_force.get(lid)
        if held is not None and held.value == dec.level_pct and held.expires_at > renew_by:
            if not stagger:
                continue
            age = ages.get(held.decided_at)
            if age is None:
                decided = held.decided_at
                age = ages[decided] = -1.0 if decided is None else (at - decided).total_seconds()
            # the luminaire's last renewal instant lies ``since`` s before ``at``
            since = (at_s - renewal_phase(lid) * period) % period
            if age <= since:
                continue
        reason = reasons.get(dec.reasons)
        if reason is None:
            reason = reasons[dec.reasons] = dec.reason_text
        out.append(
            Command.of(
                f"tick-{lid}-{stamp}-{dec.level_pct:.1f}",
                lid,
                CommandKind.DIM_LEVEL_PCT,
                dec.level_pct,
                expires,
                TICK_SOURCE,
                0,
                dec.ramp_s,
                reason,
                at,
            )
        )
    return tuple(out)


@functools.lru_cache(maxsize=200_000)
def renewal_phase(luminaire_id: str) -> float:
    """Where in each renewal period a luminaire's renewal falls, as a fraction in [0, 1):
    a hash of its id (CRC-32, the same in every process and run), so the luminaires of a
    street are spread over the period like all others.

    Every luminaire has its own renewal instants, one every ``period = life_s −
    renew_within_s``, at this phase; :func:`level_commands` renews a command decided before
    the luminaire's last renewal instant. So the luminaires commanded together (at dusk, at a
    program step) are renewed over the next period, a share ``tick ÷ period`` per tick,
    instead of all 10,000 in one tick every few minutes (a burst that held the tick at
    30–45 ms and put 10,000 messages on the broker at once)."""
    return zlib.crc32(luminaire_id.encode()) / 2**32
