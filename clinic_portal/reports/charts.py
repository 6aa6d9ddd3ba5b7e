"""Server-built SVG charts: time-in-ranges bar, AGP and daily glucose profiles.

The same markup goes into the page and the PDF report, so the charts carry their colours as SVG
presentation attributes (``fill``, ``stroke``), never inline ``style`` (the Content-Security-Policy
forbids it); CSS classes are hooks for the stylesheet (``static/css/portal.css``). Every chart is
``role="img"`` with an ``aria-label`` and a ``<title>``. The y axis is mg/dL internally, clamped at
350 mg/dL (19.4 mmol/L) as in Tidepool's AGP (shared/reference/metrics.md §3.2); tick labels are in
the patient's unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from markupsafe import Markup, escape

from clinic_portal.records import MGDL_PER_MMOLL

GLUCOSE_TOP = 350.0  # mg/dL, the y-axis ceiling; higher values are drawn at the top
AGP_MIN_DAYS = 5  # an AGP hour needs readings from this many days (metrics.md §3.4 suggestion)
TRACE_GAP = 900  # s: a daily trace breaks where readings are more than 15 min apart

# The consensus range colours (portal.css --very-low ... --very-high).
BAND_FILL = {
    "very-low": "#8b1a1a",
    "low": "#c2410c",
    "in-range": "#3c9a5f",
    "high": "#e0a526",
    "very-high": "#b7791f",
}
_BAND_TEXT = {"high": "#1d2430"}  # dark text on the light band; white elsewhere
_AGP_OUTER = "#c6d7ec"  # 5-95 %
_AGP_INNER = "#7fa3cf"  # 25-75 %
_AGP_MEDIAN = "#0b3d91"
_TARGET_FILL = "#e4f2e8"
_TARGET_LINE = "#3c9a5f"
_GRID = "#d9dee7"
_INK = "#5b6576"
_MMOL_TICKS = {54: "3.0", 63: "3.5", 70: "3.9", 140: "7.8", 180: "10.0", 250: "13.9", 350: "19.4"}


class Band(Protocol):
    """A time-in-ranges band (``summary.RangeBand``)."""

    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def range_text(self) -> str: ...
    @property
    def percent(self) -> float | None: ...


class Profile(Protocol):
    """The AGP series the chart draws (``api.AgpProfile``)."""

    @property
    def hourly(self) -> npt.NDArray[np.float64]: ...
    @property
    def days(self) -> npt.NDArray[np.int32]: ...


def _svg(parts: list[str]) -> Markup:
    # Every text interpolated into ``parts`` went through ``escape``; numbers are formatted here.
    return Markup("".join(parts))  # noqa: S704


def _f(x: float) -> str:
    return f"{x:.1f}"


def tick_label(mgdl: float, unit: str) -> str:
    """An axis value in ``unit`` (mmol/L with the consensus spellings, e.g. 70 -> 3.9)."""
    if unit == "mmol/L":
        return _MMOL_TICKS.get(round(mgdl), f"{mgdl / MGDL_PER_MMOLL:.1f}")
    return f"{mgdl:.0f}"


def _open(width: int, height: int, css: str, label: str) -> str:
    text = escape(label)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'class="chart {css}" role="img" aria-label="{text}"><title>{text}</title>'
    )


def tir_bar(bands: Sequence[Band]) -> Markup:
    """A horizontal stacked bar of the five ranges (lowest on the left), % of readings.

    ``bands`` come very high first (``summary.range_bands``); a band without data (None) makes
    the bar say so.
    """
    width, height = 600, 34
    parts = [
        _open(
            width,
            height,
            "tir-bar",
            "Time in ranges: "
            + ", ".join(
                f"{b.name} {b.range_text} {b.percent:.0f} %" if b.percent is not None else b.name
                for b in bands
            ),
        )
    ]
    if any(b.percent is None for b in bands):
        parts.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="{_GRID}"/>')
        parts.append(
            f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="14" '
            f'fill="{_INK}">No CGM data in this period</text></svg>'
        )
        return _svg(parts)
    total = sum(b.percent or 0.0 for b in bands) or 1.0
    x = 0.0
    for band in reversed(bands):
        w = width * (band.percent or 0.0) / total
        if w <= 0:
            continue
        fill = BAND_FILL[band.key]
        parts.append(
            f'<rect class="band-{band.key}" x="{_f(x)}" y="0" width="{_f(w)}" '
            f'height="{height}" fill="{fill}"/>'
        )
        if w >= 42:
            parts.append(
                f'<text x="{_f(x + w / 2)}" y="22" text-anchor="middle" font-size="13" '
                f'fill="{_BAND_TEXT.get(band.key, "#ffffff")}">{band.percent:.0f} %</text>'
            )
        x += w
    parts.append("</svg>")
    return _svg(parts)


def _y(value: float, top: float, height: float) -> float:
    v = min(max(value, 0.0), GLUCOSE_TOP)
    return top + height * (1.0 - v / GLUCOSE_TOP)


def _ticks(target_low: int, target_high: int) -> list[int]:
    """The target bounds, then 54/250/350 where they do not crowd a tick already placed
    (pregnancy's 63 and the consensus 54 are 9 mg/dL apart, which overprints the labels)."""
    ticks = [target_low, target_high]
    for tick in (54, 250, 350):
        if all(abs(tick - t) >= 15 for t in ticks):
            ticks.append(tick)
    return sorted(ticks)


def _axes(
    *,
    left: float,
    top: float,
    width: float,
    height: float,
    unit: str,
    target_low: int,
    target_high: int,
    hours: bool,
) -> list[str]:
    y_lo, y_hi = _y(target_low, top, height), _y(target_high, top, height)
    out = [
        f'<rect class="target-band" x="{_f(left)}" y="{_f(y_hi)}" width="{_f(width)}" '
        f'height="{_f(y_lo - y_hi)}" fill="{_TARGET_FILL}"/>'
    ]
    for tick in _ticks(target_low, target_high):
        y = _y(tick, top, height)
        target = tick in (target_low, target_high)
        stroke = _TARGET_LINE if target else _GRID
        out.append(
            f'<line x1="{_f(left)}" x2="{_f(left + width)}" y1="{_f(y)}" y2="{_f(y)}" '
            f'stroke="{stroke}" stroke-width="1"/>'
        )
        out.append(
            f'<text class="tick" x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" '
            f'font-size="11" fill="{_INK}">{tick_label(tick, unit)}</text>'
        )
    out.append(
        f'<text class="unit" x="4" y="{_f(top - 10)}" font-size="11" '
        f'fill="{_INK}">{escape(unit)}</text>'
    )
    if hours:
        for hour in range(0, 25, 3):
            x = left + width * hour / 24
            out.append(
                f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(top)}" y2="{_f(top + height)}" '
                f'stroke="{_GRID}" stroke-width="1"/>'
            )
            out.append(
                f'<text class="tick" x="{_f(x)}" y="{_f(top + height + 16)}" '
                f'text-anchor="middle" font-size="11" fill="{_INK}">{hour:02d}:00</text>'
            )
    return out


def _runs(valid: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, stop) index ranges of consecutive True values."""
    runs = []
    start = None
    for i, ok in enumerate(valid.tolist()):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, valid.size))
    return runs


def agp_series(
    profile: Profile, *, min_days: int = AGP_MIN_DAYS
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Hours (0-24) and the (5, 26) percentile curves the AGP chart draws, mg/dL.

    Points are the hourly 1-4-1-smoothed percentiles at hh:30 (Tidepool's series), plus 00:00
    and 24:00 as the mean of 23:30 and 00:30 so the curve wraps round midnight. An hour with
    readings from fewer than ``min_days`` days is NaN (a gap in the chart).
    """
    hourly = np.asarray(profile.hourly, dtype=np.float64)
    days = np.asarray(profile.days).reshape(24, -1).max(axis=1)
    curves = hourly.copy()
    curves[:, days < min_days] = np.nan
    edge = (curves[:, 23] + curves[:, 0]) / 2.0
    series = np.column_stack([edge, curves, edge])
    hours = np.concatenate(([0.0], np.arange(24) + 0.5, [24.0]))
    return hours, series


def agp_chart(
    profile: Profile,
    *,
    unit: str,
    target_low: int,
    target_high: int,
    n_days: int,
    min_days: int = AGP_MIN_DAYS,
) -> Markup:
    """The ambulatory glucose profile: 5-95 % and 25-75 % bands and the median over 24 h.

    Args:
        profile: ``api.AgpProfile`` (mg/dL).
        unit: axis labels, ``mg/dL`` or ``mmol/L``.
        target_low, target_high: the preset's target range, mg/dL (shaded band).
        n_days: days with data behind the chart (printed under it).
        min_days: hours with fewer days are left blank.
    """
    width, height = 720, 300
    left, top, right, bottom = 52.0, 28.0, 22.0, 44.0
    pw, ph = width - left - right, height - top - bottom
    hours, series = agp_series(profile, min_days=min_days)
    parts = [
        _open(
            width,
            height,
            "agp",
            f"Ambulatory glucose profile over {n_days} days: median, 25–75 % and 5–95 % "
            f"of readings by time of day, {unit}",
        )
    ]
    parts += _axes(
        left=left,
        top=top,
        width=pw,
        height=ph,
        unit=unit,
        target_low=target_low,
        target_high=target_high,
        hours=True,
    )
    xs = left + pw * hours / 24.0
    valid = np.all(np.isfinite(series), axis=0)

    def points(row: int, a: int, b: int, reverse: bool = False) -> str:
        idx = range(b - 1, a - 1, -1) if reverse else range(a, b)
        return " ".join(f"{_f(xs[i])},{_f(_y(series[row, i], top, ph))}" for i in idx)

    for a, b in _runs(valid):
        if b - a < 2:
            continue
        for upper, lower, fill, css in (
            (4, 0, _AGP_OUTER, "agp-outer"),
            (3, 1, _AGP_INNER, "agp-inner"),
        ):
            parts.append(
                f'<polygon class="{css}" fill="{fill}" points="{points(upper, a, b)} '
                f'{points(lower, a, b, reverse=True)}"/>'
            )
        parts.append(
            f'<polyline class="agp-median" fill="none" stroke="{_AGP_MEDIAN}" '
            f'stroke-width="2.5" stroke-linejoin="round" points="{points(2, a, b)}"/>'
        )
    if not valid.any():
        parts.append(
            f'<text x="{_f(left + pw / 2)}" y="{_f(top + ph / 2)}" text-anchor="middle" '
            f'font-size="14" fill="{_INK}">Not enough data for a profile</text>'
        )
    note = (
        f"{n_days} day{'' if n_days == 1 else 's'} of CGM data; "
        f"hours with data on fewer than {min_days} days left blank"
    )
    parts.append(
        f'<text class="note" x="{_f(left + pw)}" y="{height - 4}" text-anchor="end" '
        f'font-size="11" fill="{_INK}">{escape(note)}</text>'
    )
    parts.append("</svg>")
    return _svg(parts)


def daily_chart(
    seconds_of_day: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    unit: str,
    target_low: int,
    target_high: int,
    label: str,
) -> Markup:
    """One day's CGM trace (midnight to midnight, local time) for the small multiples.

    Args:
        seconds_of_day: local time of each reading, s after local midnight (0-86399), ascending.
        values: glucose, mg/dL.
        unit: tick labels' unit.
        target_low, target_high: the preset's target range, mg/dL.
        label: the day as shown to the reader (used in the accessible name).
    """
    width, height = 240, 96
    left, top, right, bottom = 30.0, 6.0, 4.0, 16.0
    pw, ph = width - left - right, height - top - bottom
    t = np.asarray(seconds_of_day, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    parts = [_open(width, height, "daily", f"Glucose on {label}, {t.size} readings, {unit}")]
    y_lo, y_hi = _y(target_low, top, ph), _y(target_high, top, ph)
    parts.append(
        f'<rect class="target-band" x="{_f(left)}" y="{_f(y_hi)}" width="{_f(pw)}" '
        f'height="{_f(y_lo - y_hi)}" fill="{_TARGET_FILL}"/>'
    )
    for tick in (target_low, target_high):
        y = _y(tick, top, ph)
        parts.append(
            f'<text class="tick" x="{_f(left - 3)}" y="{_f(y + 3)}" text-anchor="end" '
            f'font-size="9" fill="{_INK}">{tick_label(tick, unit)}</text>'
        )
    for hour in (6, 12, 18):
        x = left + pw * hour / 24
        parts.append(
            f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(top)}" y2="{_f(top + ph)}" '
            f'stroke="{_GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="tick" x="{_f(x)}" y="{height - 4}" text-anchor="middle" '
            f'font-size="9" fill="{_INK}">{hour:02d}</text>'
        )
    parts.append(
        f'<rect x="{_f(left)}" y="{_f(top)}" width="{_f(pw)}" height="{_f(ph)}" '
        f'fill="none" stroke="{_GRID}"/>'
    )
    if t.size == 0:
        parts.append(
            f'<text x="{_f(left + pw / 2)}" y="{_f(top + ph / 2 + 4)}" text-anchor="middle" '
            f'font-size="11" fill="{_INK}">no data</text>'
        )
    else:
        xs = left + pw * np.clip(t, 0, 86_400) / 86_400
        ys = top + ph * (1.0 - np.clip(v, 0.0, GLUCOSE_TOP) / GLUCOSE_TOP)
        breaks = np.flatnonzero(np.diff(t) > TRACE_GAP) + 1
        for a, b in zip(
            np.concatenate(([0], breaks)).tolist(),
            np.concatenate((breaks, [t.size])).tolist(),
            strict=True,
        ):
            if b - a == 1:
                parts.append(
                    f'<circle class="trace" cx="{_f(xs[a])}" cy="{_f(ys[a])}" r="1.2" '
                    f'fill="{_AGP_MEDIAN}"/>'
                )
                continue
            pts = " ".join(f"{_f(x)},{_f(y)}" for x, y in zip(xs[a:b], ys[a:b], strict=True))
            parts.append(
                f'<polyline class="trace" fill="none" stroke="{_AGP_MEDIAN}" '
                f'stroke-width="1.2" stroke-linejoin="round" points="{pts}"/>'
            )
    parts.append("</svg>")
    return _svg(parts)
