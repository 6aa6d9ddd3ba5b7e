"""The patient-metrics summary cache: each patient's latest CGM metrics for roster and triage.

One row per (patient, period) in ``patient_metrics_summary``, for the periods in
:data:`SUMMARY_PERIODS` (14 and 90 days). The window of a row is the ``period_days`` × 24 h
ending at ``window_end``: the refresh time rounded up to the next 5-min boundary, so "last 14
days" means the 14 days before the summary was computed, as on the roster.

Staleness (docs/analytics-integration.md):

* the ingest service sends ``records_ingested`` after storing a batch; :func:`mark_stale` (the
  receiver) only flags the patient's rows, in the same transaction, with one upsert;
* pages that show metrics refresh the rows they need when stale, missing or older than
  :data:`FRESH_SECONDS` (:func:`glucose_report`, :func:`roster_summaries`), so a clinician sees
  the new upload's numbers on the next page load;
* the scheduler refreshes every stale row every few minutes and every row nightly
  (``analytics/tasks.py``).

A refresh reads each row's ``data_version`` before loading readings and clears ``stale`` only
if no ingest bumped the version meanwhile, so a refresh racing an upload never hides it.

The computation is batched: one ordered query per batch of patients (``loader.load_cgm``) and
one ``api.compute_cohort`` call per (target preset, period) in the batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from markupsafe import Markup
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import JSON, Column, Field, Session, SQLModel, col, select

from clinic_portal.analytics import api, charts
from clinic_portal.analytics.loader import CgmArrays, load_cgm
from clinic_portal.analytics.targets import TargetSpec, target_spec
from clinic_portal.patients.models import Patient
from clinic_portal.records import MGDL_PER_MMOLL
from clinic_portal.upload_station.ingest import records_ingested
from clinic_portal.upload_station.models import CgmReadingRow

SUMMARY_PERIODS: tuple[int, ...] = (14, 90)
ROSTER_PERIOD = 14  # days: the consensus report period (Battelino 2019)
REFRESH_BATCH = 100  # patients per query: 90 days x 100 patients is ~2.6 M readings, ~80 MB
FRESH_SECONDS = 86_400  # a page recomputes a row whose window ended longer ago than this
SLOT = 300  # s: windows end on a 5-min boundary, the wear grid of the kernels
DAY = 86_400


class PatientMetricsSummary(SQLModel, table=True):
    """Cached CGM metrics of one patient over the ``period_days`` before ``window_end``.

    Glucose values are mg/dL, percentages are % of readings (0-100); a metric without data is
    NULL. ``extra`` holds the metrics the roster does not sort by (LBGI, HBGI, MAGE, hyper and
    extended episodes, GRI components).
    """

    __tablename__ = "patient_metrics_summary"
    __table_args__ = (sa.Index("ix_patient_metrics_summary_stale", "stale"),)

    patient_id: int = Field(foreign_key="patient.id", primary_key=True, ondelete="CASCADE")
    period_days: int = Field(primary_key=True)
    window_start: int = Field(sa_type=sa.BigInteger)  # epoch s UTC, inclusive
    window_end: int = Field(sa_type=sa.BigInteger)  # epoch s UTC, exclusive
    computed_at: datetime | None = None
    stale: bool = True
    # Bumped by every ingest; a refresh clears ``stale`` only if it saw the current version.
    data_version: int = 0
    preset: str = Field(max_length=24)
    target_low: int  # mg/dL, the preset's target range (inclusive)
    target_high: int
    n_readings: int = 0
    mean: float | None = None
    sd: float | None = None
    cv: float | None = None
    gmi: float | None = None
    gmi_sufficient: bool = False
    pct_below_54: float | None = None
    pct_54_69: float | None = None
    pct_70_180: float | None = None
    pct_181_250: float | None = None
    pct_above_250: float | None = None
    pct_below_target: float | None = None
    pct_in_target: float | None = None
    pct_above_target: float | None = None
    active_percent: float | None = None
    days_with_data: int = 0
    gri: float | None = None
    gri_zone: str | None = Field(default=None, max_length=1)
    hypo_l1_episodes: int = 0
    hypo_l2_episodes: int = 0
    last_reading_time: int | None = Field(default=None, sa_type=sa.BigInteger)
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    @property
    def pct_below_70(self) -> float | None:
        if self.pct_below_54 is None or self.pct_54_69 is None:
            return None
        return self.pct_below_54 + self.pct_54_69


_TABLE: sa.Table = PatientMetricsSummary.__table__  # type: ignore[attr-defined]
_KEY = ("patient_id", "period_days")
_EXTRA_KEYS = (
    "lbgi",
    "hbgi",
    "mage",
    "gri_hypo",
    "gri_hyper",
    "hypo_extended_episodes",
    "hyper_l1_episodes",
    "hyper_l2_episodes",
    "hyper_extended_episodes",
)


def _upsert(session: Session) -> Any:
    """The dialect's INSERT that supports ``ON CONFLICT`` (both engines we run on)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(_TABLE)
    if dialect == "sqlite":
        return sqlite.insert(_TABLE)
    raise ValueError(f"unsupported database {dialect}")  # pragma: no cover


def window_end_for(now: int) -> int:
    """The window end for a refresh at ``now`` (epoch s): the next 5-min boundary."""
    return -(-int(now) // SLOT) * SLOT


def _blank_row(patient_id: int, period: int, preset: str) -> dict[str, Any]:
    spec = target_spec(preset)
    return {
        "patient_id": patient_id,
        "period_days": period,
        "window_start": 0,
        "window_end": 0,
        "computed_at": None,
        "stale": True,
        "data_version": 1,
        "preset": spec.preset.value,
        "target_low": spec.target_low,
        "target_high": spec.target_high,
        "n_readings": 0,
        "gmi_sufficient": False,
        "days_with_data": 0,
        "hypo_l1_episodes": 0,
        "hypo_l2_episodes": 0,
        "extra": {},
    }


def mark_stale(
    session: Session, patient_id: int, *, periods: Sequence[int] = SUMMARY_PERIODS
) -> None:
    """Flag ``patient_id``'s summaries stale (new data arrived); flushes nothing else.

    One ``INSERT ... ON CONFLICT DO UPDATE`` in the caller's transaction: an existing row keeps
    its (old) values with ``stale`` set and ``data_version`` bumped; a patient without rows gets
    empty stale rows, so the refresh job finds them.
    """
    preset: str = session.execute(
        sa.select(col(Patient.target_preset)).where(col(Patient.id) == patient_id)
    ).scalar_one()
    stmt = _upsert(session)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={"stale": True, "data_version": _TABLE.c.data_version + 1},
    )
    session.execute(stmt, [_blank_row(patient_id, p, str(preset)) for p in periods])


def _on_records_ingested(sender: Session, *, patient_id: int, **_: Any) -> None:
    mark_stale(sender, patient_id)


# The ingest service sends this (with its session) after each stored batch, before the commit.
records_ingested.connect(_on_records_ingested)


def _number(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _subset(data: CgmArrays, positions: np.ndarray) -> tuple[np.ndarray, ...]:
    """The ragged arrays of the patients at ``positions`` (ascending) of ``data``."""
    starts = data.indptr[positions]
    lengths = data.indptr[positions + 1] - starts
    indptr = np.zeros(positions.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    index = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
    return data.values[index], data.times[index], data.utc_offsets[index], indptr


def _metrics_row(
    m: api.CgmMetrics, *, patient_id: int, period: int, end: int, computed_at: datetime
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "patient_id": patient_id,
        "period_days": period,
        "window_start": end - period * DAY,
        "window_end": end,
        "computed_at": computed_at,
        "stale": False,
        "preset": m.target.preset.value,
        "target_low": m.target.target_low,
        "target_high": m.target.target_high,
        "n_readings": m.n_readings,
        "gmi_sufficient": m.gmi_sufficient,
        "days_with_data": m.days_with_data,
        "gri_zone": m.gri_zone,
        "hypo_l1_episodes": m.hypo_l1_episodes,
        "hypo_l2_episodes": m.hypo_l2_episodes,
        "extra": {
            key: (
                _number(getattr(m, key)) if isinstance(getattr(m, key), float) else getattr(m, key)
            )
            for key in _EXTRA_KEYS
        },
    }
    for key in (
        "mean",
        "sd",
        "cv",
        "gmi",
        "pct_below_54",
        "pct_54_69",
        "pct_70_180",
        "pct_181_250",
        "pct_above_250",
        "pct_below_target",
        "pct_in_target",
        "pct_above_target",
        "active_percent",
        "gri",
    ):
        row[key] = _number(getattr(m, key))
    return row


def _refresh_batch(session: Session, ids: list[int], *, now: int, periods: Sequence[int]) -> int:
    presets = dict(
        session.execute(
            sa.select(col(Patient.id), col(Patient.target_preset)).where(col(Patient.id).in_(ids))
        ).all()
    )
    ids = sorted(presets)
    if not ids:
        return 0
    # Versions first, readings second: an ingest committed in between bumps the version and
    # the row stays stale (see module doc).
    versions = {
        (pid, period): version
        for pid, period, version in session.execute(
            sa.select(_TABLE.c.patient_id, _TABLE.c.period_days, _TABLE.c.data_version).where(
                _TABLE.c.patient_id.in_(ids)
            )
        )
    }
    readings = CgmReadingRow.__table__  # type: ignore[attr-defined]
    last_times = dict(
        session.execute(
            sa.select(readings.c.patient_id, sa.func.max(readings.c.time))
            .where(readings.c.patient_id.in_(ids))
            .group_by(readings.c.patient_id)
        ).all()
    )
    end = window_end_for(now)
    computed_at = datetime.fromtimestamp(now, UTC)
    data = load_cgm(session, ids, end - max(periods) * DAY, end)
    groups: dict[str, list[int]] = {}
    for position, pid in enumerate(data.patient_ids.tolist()):
        groups.setdefault(str(presets[pid]), []).append(position)
    rows: list[dict[str, Any]] = []
    for preset, positions in groups.items():
        pos = np.asarray(positions, dtype=np.int64)
        values, times, offsets, indptr = (
            (data.values, data.times, data.utc_offsets, data.indptr)
            if pos.size == data.patient_ids.size
            else _subset(data, pos)
        )
        prepared = api.prepare(values, times, offsets, indptr)
        for period in periods:
            result = api.compute_cohort(
                prepared.values,
                prepared.times,
                prepared.utc_offsets,
                prepared.indptr,
                start=end - period * DAY,
                end=end,
                preset=preset,
            )
            for position, metrics in zip(positions, api.metrics_from_cohort(result), strict=True):
                pid = int(data.patient_ids[position])
                row = _metrics_row(
                    metrics, patient_id=pid, period=period, end=end, computed_at=computed_at
                )
                row["last_reading_time"] = last_times.get(pid)
                row["data_version"] = versions.get((pid, period), 0)
                rows.append(row)
    stmt = _upsert(session)
    values_set = {
        name: stmt.excluded[name]
        for name in rows[0]
        if name not in (*_KEY, "stale", "data_version")
    }
    # Clear the flag only when no ingest bumped the version since it was read above.
    values_set["stale"] = sa.case(
        (_TABLE.c.data_version == stmt.excluded.data_version, sa.false()), else_=sa.true()
    )
    session.execute(stmt.on_conflict_do_update(index_elements=list(_KEY), set_=values_set), rows)
    return len(ids)


def refresh_summaries(
    session: Session,
    patient_ids: Iterable[int] | None = None,
    *,
    now: int,
    periods: Sequence[int] = SUMMARY_PERIODS,
    batch_size: int = REFRESH_BATCH,
) -> int:
    """Recompute and upsert the summaries of ``patient_ids`` (all patients when ``None``).

    Args:
        session: flushed, never committed (the request or job commits).
        patient_ids: patients to refresh; unknown ids are ignored.
        now: the refresh instant, epoch s UTC; each window ends at the next 5-min boundary.
        periods: window lengths in days.
        batch_size: patients per database query (bounds memory: 90 days is ~26k readings each).

    Returns:
        The number of patients refreshed.

    Raises:
        ValueError: ``periods`` is empty or holds a non-positive length.
    """
    if not periods or min(periods) <= 0:
        raise ValueError("periods must be positive numbers of days")
    ids = all_patient_ids(session) if patient_ids is None else sorted({int(p) for p in patient_ids})
    done = 0
    for first in range(0, len(ids), batch_size):
        done += _refresh_batch(session, ids[first : first + batch_size], now=now, periods=periods)
    return done


def all_patient_ids(session: Session) -> list[int]:
    """Every patient's id, ascending (the nightly refresh covers all clinics)."""
    return list(session.execute(sa.select(col(Patient.id)).order_by(col(Patient.id))).scalars())


def stale_patient_ids(
    session: Session,
    patient_ids: Iterable[int] | None = None,
    *,
    older_than: int | None = None,
    limit: int | None = None,
) -> list[int]:
    """Patients with a stale summary row (or one whose window ended before ``older_than``).

    ``patient_ids`` restricts the search; ``limit`` returns at most that many (lowest ids).
    """
    condition: Any = _TABLE.c.stale == sa.true()
    if older_than is not None:
        condition = sa.or_(condition, _TABLE.c.window_end < older_than)
    query = sa.select(_TABLE.c.patient_id).where(condition).distinct().order_by(_TABLE.c.patient_id)
    if patient_ids is not None:
        query = query.where(_TABLE.c.patient_id.in_(list(patient_ids)))
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query).scalars())


def refresh_stale(
    session: Session,
    patient_ids: Iterable[int] | None = None,
    *,
    now: int,
    older_than: int | None = None,
    limit: int | None = None,
) -> int:
    """Refresh the patients :func:`stale_patient_ids` finds; returns how many."""
    ids = stale_patient_ids(session, patient_ids, older_than=older_than, limit=limit)
    return refresh_summaries(session, ids, now=now) if ids else 0


def summaries_for(
    session: Session, patient_ids: Sequence[int], *, period_days: int = ROSTER_PERIOD
) -> dict[int, PatientMetricsSummary]:
    """The cached rows of ``patient_ids`` for one period, keyed by patient id (no refresh)."""
    if not patient_ids:
        return {}
    rows = session.exec(
        select(PatientMetricsSummary)
        .where(
            col(PatientMetricsSummary.patient_id).in_(list(patient_ids)),
            PatientMetricsSummary.period_days == period_days,
        )
        .execution_options(populate_existing=True)
    )
    return {row.patient_id: row for row in rows}


def roster_summaries(
    session: Session, patient_ids: Sequence[int], *, now: int | None = None
) -> dict[int, PatientMetricsSummary]:
    """The roster page's 14-day summaries, refreshing the page's stale or missing rows first.

    Bounded by the page size (one batch). Rows of other patients are left to the job.
    """
    now = int(time.time()) if now is None else now
    cached = summaries_for(session, patient_ids)
    missing = [pid for pid in patient_ids if pid not in cached]
    stale = stale_patient_ids(session, patient_ids, older_than=now - FRESH_SECONDS)
    if missing or stale:
        refresh_summaries(session, [*missing, *stale], now=now)
        cached = summaries_for(session, patient_ids)
    return cached


# --- the patient page -------------------------------------------------------------------------
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


def _summary_row(session: Session, patient_id: int, period: int) -> PatientMetricsSummary | None:
    return session.exec(
        select(PatientMetricsSummary)
        .where(
            PatientMetricsSummary.patient_id == patient_id,
            PatientMetricsSummary.period_days == period,
        )
        .execution_options(populate_existing=True)
    ).first()


def glucose_report(
    session: Session, patient: Patient, *, now: int | None = None, period_days: int = ROSTER_PERIOD
) -> GlucoseReport:
    """The patient page's glucose section over the cached window of ``period_days``.

    Refreshes the patient's summary first when it is stale, missing, older than a day or was
    computed for another target preset; then recomputes the full metrics (AGP, daily profiles,
    episodes) over exactly the cached window, so the page and the roster show the same numbers.
    """
    assert patient.id is not None
    now = int(time.time()) if now is None else now
    row = _summary_row(session, patient.id, period_days)
    if (
        row is None
        or row.stale
        or row.window_end < now - FRESH_SECONDS
        or row.preset != str(patient.target_preset)
    ):
        refresh_summaries(
            session, [patient.id], now=now, periods=sorted({*SUMMARY_PERIODS, period_days})
        )
        row = _summary_row(session, patient.id, period_days)
    assert row is not None
    data = load_cgm(session, [patient.id], row.window_start, row.window_end)
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
