"""The patient page's glucose report: metrics against the preset's goals, the time-in-ranges
bar, the AGP and the daily profiles, as a view-model with server-built SVG charts (the same
charts go into the PDF reports)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from markupsafe import Markup
from sqlmodel import Session

from clinic_portal.analytics import api
from clinic_portal.analytics.loader import load_cgm
from clinic_portal.analytics.models import PatientMetricsSummary
from clinic_portal.analytics.summaries import ROSTER_PERIOD, fresh_summary
from clinic_portal.analytics.targets import TargetSpec, target_spec
from clinic_portal.patients.models import Patient
from clinic_portal.records import MGDL_PER_MMOLL
from clinic_portal.reports import charts

DAY = 86_400

# Consensus mmol/L spellings of the mg/dL thresholds (Battelino 2019 table; 154 mg/dL is the AGP
# mean goal, printed 8.6 mmol/L by Tidepool's AGPConstants.js).
_MMOL_LABELS = {54: "3.0", 63: "3.5", 70: "3.9", 140: "7.8", 154: "8.6", 180: "10.0", 250: "13.9"}


def glucose_label(mgdl: float, unit: str) -> str:
    """A threshold in ``unit``: integer mg/dL, or mmol/L with one decimal (consensus values)."""
    if unit == api.GlucoseUnit.MMOLL:
        key = round(mgdl)
        return _MMOL_LABELS.get(key, f"{mgdl / MGDL_PER_MMOLL:.1f}")
    return f"{mgdl:.0f}"


def _mmol_step(label: str, step: float) -> str:
    return f"{float(label) + step:.1f}"


@dataclass(frozen=True, slots=True)
class RangeBand:
    """One band of the time-in-ranges bar: css key, name, range text, % of readings."""

    key: str
    name: str
    range_text: str
    percent: float | None


@dataclass(frozen=True, slots=True)
class GoalRow:
    """One line of the metrics table: the value and the preset's goal (``met`` None: no goal)."""

    name: str
    value: float | None  # in ``unit`` (mg/dL values are converted for mmol/L patients)
    unit: str
    goal: str | None
    met: bool | None

    @property
    def value_text(self) -> str:
        """The value as the page prints it: "—" without data; small percentages with a
        decimal, since the < 1 % and < 4 % goals turn on it."""
        if self.value is None:
            return "—"
        if self.unit == api.GlucoseUnit.MMOLL:
            return f"{self.value:.1f} {self.unit}"
        if self.unit == api.GlucoseUnit.MGDL:
            return f"{self.value:.0f} {self.unit}"
        return f"{self.value:.1f} %" if self.value < 10 else f"{self.value:.0f} %"


@dataclass(frozen=True, slots=True)
class DayTrace:
    """One day of the daily-profile small multiples."""

    day: date
    svg: Markup
    n_readings: int
    mean: float | None  # mg/dL
    pct_in_range: float | None  # % 70-180 mg/dL


@dataclass(frozen=True, slots=True)
class GlucoseReport:
    """What the patient page shows about glucose (clinicians and admins only).

    ``metrics`` is mg/dL; ``unit`` is the patient's display unit.
    """

    summary: PatientMetricsSummary
    metrics: api.CgmMetrics
    unit: str
    first_day: date
    last_day: date
    bands: list[RangeBand]
    goals: list[GoalRow]
    tir_svg: Markup
    agp_svg: Markup | None
    agp_days: int
    daily: list[DayTrace]

    @property
    def has_data(self) -> bool:
        return self.metrics.n_readings > 0

    def label(self, mgdl: float) -> str:
        """A threshold in the patient's unit, e.g. ``label(70)`` is "3.9" for mmol/L."""
        return glucose_label(mgdl, self.unit)


def range_bands(
    m: api.CgmMetrics | PatientMetricsSummary, spec: TargetSpec, unit: str
) -> list[RangeBand]:
    """The five bands, very high first, with the preset's target range in the middle.

    The standard presets give the consensus ranges (<54, 54-69, 70-180, 181-250, >250 mg/dL);
    pregnancy gives <54, 54-62, 63-140, 141-250, >250 (Battelino 2019).
    """

    def pct(name: str) -> float | None:
        value = getattr(m, name)
        return None if value is None or value != value else float(value)

    lo, hi = spec.target_low, spec.target_high
    below54, above250 = pct("pct_below_54"), pct("pct_above_250")
    below, above = pct("pct_below_target"), pct("pct_above_target")
    low = None if below is None or below54 is None else max(below - below54, 0.0)
    high = None if above is None or above250 is None else max(above - above250, 0.0)
    if unit == api.GlucoseUnit.MMOLL:
        high_text = f"{_mmol_step(glucose_label(hi, unit), 0.1)}–{glucose_label(250, unit)}"
        low_text = f"{glucose_label(54, unit)}–{_mmol_step(glucose_label(lo, unit), -0.1)}"
    else:
        high_text, low_text = f"{hi + 1}–250", f"54–{lo - 1}"
    return [
        RangeBand("very-high", "Very high", f"> {glucose_label(250, unit)}", above250),
        RangeBand("high", "High", high_text, high),
        RangeBand(
            "in-range",
            "Target range",
            f"{glucose_label(lo, unit)}–{glucose_label(hi, unit)}",
            pct("pct_in_target"),
        ),
        RangeBand("low", "Low", low_text, low),
        RangeBand("very-low", "Very low", f"< {glucose_label(54, unit)}", below54),
    ]


_GOAL_NAMES = {
    "pct_in_target": "Time in range {lo}–{hi}",
    "pct_below_70": "Time below {t70}",
    "pct_below_54": "Time below {t54}",
    "pct_below_target": "Time below {lo}",
    "pct_above_180": "Time above {t180}",
    "pct_above_target": "Time above {hi}",
    "pct_above_250": "Time above {t250}",
    "mean": "Mean glucose",
    "gmi": "GMI",
    "cv": "Glucose variability (CV)",
}


def _in_unit(mgdl: float | None, unit: str) -> float | None:
    if mgdl is None:
        return None
    return mgdl / MGDL_PER_MMOLL if unit == api.GlucoseUnit.MMOLL else mgdl


def _goal_text(comparison: str, limit: float, suffix: str) -> str:
    # A limit just above a whole number with "<" is the consensus "≤ N" (targets.py: CV ≤ 36 %).
    if comparison == "<" and 0 < limit - math.floor(limit) < 0.01:
        return f"≤ {math.floor(limit):g}{suffix}"
    return f"{comparison} {limit:g}{suffix}"


def goal_rows(m: api.CgmMetrics, unit: str) -> list[GoalRow]:
    """Metric values against the goals of the patient's preset, with labels in ``unit``."""
    spec = m.target
    names = {
        "lo": glucose_label(spec.target_low, unit),
        "hi": glucose_label(spec.target_high, unit),
        "t54": glucose_label(54, unit),
        "t70": glucose_label(70, unit),
        "t180": glucose_label(180, unit),
        "t250": glucose_label(250, unit),
    }
    rows: list[GoalRow] = []
    for goal in spec.goals:
        value = float(getattr(m, goal.metric))
        number = None if value != value else value
        if goal.metric == "mean":
            text = f"{goal.comparison} {glucose_label(goal.limit, unit)} {unit}"
            rows.append(
                GoalRow(_GOAL_NAMES["mean"], _in_unit(number, unit), unit, text, goal.met(value))
            )
            continue
        name = _GOAL_NAMES.get(goal.metric, goal.metric).format(**names)
        if goal.metric.startswith("pct_"):
            name = f"{name} {unit}"
        rows.append(
            GoalRow(
                name, number, "%", _goal_text(goal.comparison, goal.limit, " %"), goal.met(value)
            )
        )
    shown = {goal.metric for goal in spec.goals}
    if "mean" not in shown:
        mean = None if m.mean != m.mean else m.mean
        rows.append(GoalRow(_GOAL_NAMES["mean"], _in_unit(mean, unit), unit, None, None))
    if "gmi" not in shown:
        gmi = None if m.gmi != m.gmi else m.gmi
        rows.append(GoalRow(_GOAL_NAMES["gmi"], gmi, "%", None, None))
    # Data sufficiency: > 70 % of possible readings over 14 days (Battelino 2019).
    rows.append(
        GoalRow("Time CGM active", m.active_percent, "%", "> 70 %", m.active_percent > 70.0)
    )
    return rows


def glucose_report(
    session: Session, patient: Patient, *, now: int | None = None, period_days: int = ROSTER_PERIOD
) -> GlucoseReport:
    """The patient page's glucose section over the cached window of ``period_days``.

    Refreshes the patient's summary first when it is stale, missing, older than a day or was
    computed for another target preset; then recomputes the full metrics (AGP, daily profiles,
    episodes) over exactly the cached window, so the page and the roster show the same numbers.
    """
    now = int(time.time()) if now is None else now
    row = fresh_summary(session, patient, now=now, period_days=period_days)
    data = load_cgm(session, [row.patient_id], row.window_start, row.window_end)
    metrics = api.cgm_metrics(
        data.values,
        data.times,
        data.utc_offsets,
        data.indptr,
        start=row.window_start,
        end=row.window_end,
        preset=row.preset,
    )[0]
    unit = str(patient.glucose_units)
    spec = target_spec(row.preset)
    zone = ZoneInfo(patient.time_zone)
    last_day = datetime.fromtimestamp(row.window_end - 1, zone).date()
    first_day = last_day - timedelta(days=period_days - 1)
    # "n days" under the AGP: days of wear (% of the window's 5-min slots with a reading x
    # period), so a full 14-day window says 14 although its readings touch 15 local dates.
    agp_days = round(metrics.active_percent * period_days / 100.0)
    return GlucoseReport(
        summary=row,
        metrics=metrics,
        unit=unit,
        first_day=first_day,
        last_day=last_day,
        bands=range_bands(metrics, spec, unit),
        goals=goal_rows(metrics, unit),
        tir_svg=charts.tir_bar(range_bands(metrics, spec, unit)),
        agp_svg=(
            charts.agp_chart(
                metrics.agp,
                unit=unit,
                target_low=spec.target_low,
                target_high=spec.target_high,
                n_days=agp_days,
            )
            if metrics.days_with_data >= charts.AGP_MIN_DAYS
            else None
        ),
        agp_days=agp_days,
        daily=_daily_traces(metrics, spec, unit, first_day, last_day),
    )


def _daily_traces(
    m: api.CgmMetrics, spec: TargetSpec, unit: str, first_day: date, last_day: date
) -> list[DayTrace]:
    epoch = date(1970, 1, 1)
    index = {int(d): i for i, d in enumerate(m.daily.days)}
    out = []
    day = first_day
    while day <= last_day:
        number = (day - epoch).days
        i = index.get(number)
        if i is None:
            local, values = np.empty(0, np.int64), np.empty(0)
            n, mean, tir = 0, None, None
        else:
            local, values = m.daily.trace(i)
            n = int(m.daily.n_readings[i])
            mean, tir = float(m.daily.mean[i]), float(m.daily.pct_70_180[i])
        svg = charts.daily_chart(
            local - number * DAY,
            np.asarray(values, dtype=np.float64),
            unit=unit,
            target_low=spec.target_low,
            target_high=spec.target_high,
            label=day.strftime("%a %d %b"),
        )
        out.append(DayTrace(day, svg, n, mean, tir))
        day += timedelta(days=1)
    return out
