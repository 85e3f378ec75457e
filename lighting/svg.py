"""A small SVG renderer: level over a night, energy per night over a year (no plotting
library, no files).

The result is an SVG document as a string; the API serves it or the CLI writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from lighting.preview import NightEnergy
from lighting.sun import zone

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


def render_levels_svg(
    series: Sequence[tuple[str, Sequence[tuple[datetime, float]]]],
    timezone: str = "Europe/Berlin",
    title: str = "",
    width: int = 800,
    height: int = 320,
) -> str:
    """Plot one or more level curves (label, [(UTC instant, level %)]) over a shared time axis,
    labelled in local time of ``timezone``; the y axis runs from 0 to 100 %."""
    t0, t1 = _time_span(series)
    left, right, top, bottom = 50, 20, 30 if title else 12, 40
    axes = _LevelAxes(left, top, width - left - right, height - top - bottom, t0, t1)
    out = _open_svg(width, height, title, left)
    out.extend(_level_grid(axes))
    out.extend(_hour_grid(axes, zone(timezone)))
    out.append(
        f'<rect x="{left}" y="{top}" width="{axes.plot_w}" height="{axes.plot_h}" fill="none" '
        'stroke="#444"/>'
    )
    for i, (label, curve) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{axes.x(t):.1f},{axes.y(v):.1f}" for t, v in curve)
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
            f"<title>{escape(label)}</title></polyline>"
        )
        out.append(
            f'<text x="{left + 8 + 150 * i}" y="{height - 6}" fill="{colour}">'
            f"{escape(label)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _open_svg(width: int, height: int, title: str, left: int) -> list[str]:
    """The document's first lines: the root element, a white background and the title
    (when there is one) at ``left`` px."""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    if title:
        out.append(f'<text x="{left}" y="18" font-size="13">{escape(title)}</text>')
    return out


def _time_span(
    series: Sequence[tuple[str, Sequence[tuple[datetime, float]]]],
) -> tuple[datetime, datetime]:
    """First and last instant of all curves; an hour from the first when they coincide (an
    arbitrary hour when there are no points), so the time axis never has zero length."""
    points = [p for _, curve in series for p in curve]
    if not points:
        t0 = datetime(2000, 1, 1, tzinfo=UTC)
        return t0, t0 + timedelta(hours=1)
    t0 = min(p[0] for p in points)
    t1 = max(p[0] for p in points)
    return t0, t1 if t1 > t0 else t0 + timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _LevelAxes:
    """The plot area of a levels chart in px, from instant ``t0`` to ``t1`` and 0 to 100 %."""

    left: int
    top: int
    plot_w: int
    plot_h: int
    t0: datetime
    t1: datetime

    @property
    def span_s(self) -> float:
        return (self.t1 - self.t0).total_seconds()

    def x(self, t: datetime) -> float:
        return self.left + self.plot_w * (t - self.t0).total_seconds() / self.span_s

    def y(self, level: float) -> float:
        return self.top + self.plot_h * (1.0 - max(0.0, min(100.0, level)) / 100.0)


def _level_grid(axes: _LevelAxes) -> list[str]:
    """Horizontal lines and labels at 0, 25, 50, 75 and 100 %."""
    out = []
    for level in (0, 25, 50, 75, 100):
        yy = axes.y(level)
        out.append(
            f'<line x1="{axes.left}" y1="{yy:.1f}" x2="{axes.left + axes.plot_w}" y2="{yy:.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(f'<text x="{axes.left - 6}" y="{yy + 4:.1f}" text-anchor="end">{level} %</text>')
    return out


def _hour_grid(axes: _LevelAxes, tz: ZoneInfo) -> list[str]:
    """Vertical lines labelled in local time of ``tz``, every hour or every few hours so that
    about 12 show."""
    out = []
    top, bottom = axes.top, axes.top + axes.plot_h
    # Whole UTC hours are whole local hours in the zones we serve; stepping in UTC keeps the
    # DST nights right (wall-clock arithmetic would step into the gap).
    tick = axes.t0.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    step_h = max(1, round(axes.span_s / 3600 / 12))
    while tick <= axes.t1:
        local = tick.astimezone(tz)
        if local.hour % step_h == 0:
            xx = axes.x(tick)
            out.append(
                f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{bottom}" stroke="#eee"/>'
            )
            out.append(
                f'<text x="{xx:.1f}" y="{bottom + 16}" text-anchor="middle">'
                f"{local.strftime('%H:%M')}</text>"
            )
        tick += timedelta(hours=1)
    return out


def render_year_svg(
    rows: Sequence[NightEnergy], title: str = "", width: int = 900, height: int = 320
) -> str:
    """Energy per night (kWh) over a year: the program's line against full light's."""
    left, right, top, bottom = 60, 20, 30 if title else 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak_kwh = max((max(r.baseline_wh, r.energy_wh) for r in rows), default=0) / 1000.0 or 1.0
    n = max(1, len(rows) - 1)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(kwh: float) -> float:
        return top + plot_h * (1.0 - kwh / peak_kwh)

    out = _open_svg(width, height, title, left)
    for k in range(5):
        kwh = peak_kwh * k / 4
        out.append(
            f'<line x1="{left}" y1="{y(kwh):.1f}" x2="{left + plot_w}" y2="{y(kwh):.1f}" '
            'stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(kwh) + 4:.1f}" text-anchor="end">{kwh:.3g} kWh</text>'
        )
    for i, row in enumerate(rows):
        if row.night.day == 1:
            out.append(
                f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"{row.night.strftime('%m/%Y')}</text>"
            )
    for label, colour, values in (
        ("full light dusk to dawn", COLOURS[1], [r.baseline_wh for r in rows]),
        ("program", COLOURS[0], [r.energy_wh for r in rows]),
    ):
        path = " ".join(f"{x(i):.1f},{y(v / 1000.0):.1f}" for i, v in enumerate(values))
        out.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}">'
            f"<title>{escape(label)}</title></polyline>"
        )
    out.append(f'<text x="{left + 8}" y="{height - 6}" fill="{COLOURS[0]}">program</text>')
    out.append(
        f'<text x="{left + 120}" y="{height - 6}" fill="{COLOURS[1]}">'
        "full light dusk to dawn</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"
