"""Keeping the patient-metrics summary cache fresh: each patient's latest CGM metrics for roster
and triage (the table is ``analytics/models.py``).

One row per (patient, period) in ``patient_metrics_summary``, for the periods in
:data:`SUMMARY_PERIODS` (14 and 90 days). The window of a row is the ``period_days`` × 24 h
ending at ``window_end``: the refresh time rounded up to the next 5-min boundary, so "last 14
days" means the 14 days before the summary was computed, as on the roster.

Staleness (docs/analytics-integration.md):

* the ingest service sends ``signals.records_ingested`` after storing a batch;
  :func:`mark_stale_after_ingest` (connected in ``create_app``) only flags the patient's rows,
  in the same transaction, with one upsert;
* pages that show metrics refresh the rows they need when stale, missing or older than
  :data:`FRESH_SECONDS` (:func:`fresh_summary`, :func:`roster_summaries`), so a clinician sees
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
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from clinic_portal.analytics import api
from clinic_portal.analytics.loader import CgmArrays, last_reading_times, load_cgm
from clinic_portal.analytics.models import PatientMetricsSummary
from clinic_portal.analytics.targets import target_spec
from clinic_portal.patients.models import Patient

SUMMARY_PERIODS: tuple[int, ...] = (14, 90)
ROSTER_PERIOD = 14  # days: the consensus report period (Battelino 2019)
REFRESH_BATCH = 100  # patients per query: 90 days x 100 patients is ~2.6 M readings, ~80 MB
FRESH_SECONDS = 86_400  # a page recomputes a row whose window ended longer ago than this
SLOT = 300  # s: windows end on a 5-min boundary, the wear grid of the kernels
DAY = 86_400


_TABLE: sa.Table = PatientMetricsSummary.__table__  # type: ignore[attr-defined]
_KEY = ("patient_id", "period_days")
# Metrics with a column of their own (the roster and triage sort and filter by them); every other
# scalar metric goes into the JSON ``extra`` column. Both come from ``api.SCALAR_METRICS``.
_COLUMN_METRICS = tuple(key for key in api.SCALAR_METRICS if key in _TABLE.c)
_EXTRA_METRICS = tuple(key for key in api.SCALAR_METRICS if key not in _TABLE.c)


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


def mark_stale_after_ingest(sender: Session, *, patient_id: int, **_: Any) -> None:
    """Receiver of ``signals.records_ingested`` (sent with the ingest's session, before commit)."""
    mark_stale(sender, patient_id)


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


def _json_value(value: Any) -> Any:
    return _number(value) if isinstance(value, float) else value


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
        "extra": {key: _json_value(getattr(m, key)) for key in _EXTRA_METRICS},
    }
    row.update((key, _json_value(getattr(m, key))) for key in _COLUMN_METRICS)
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
    last_times = last_reading_times(session, ids)
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


def _summary_row(session: Session, patient_id: int, period: int) -> PatientMetricsSummary | None:
    return session.exec(
        select(PatientMetricsSummary)
        .where(
            PatientMetricsSummary.patient_id == patient_id,
            PatientMetricsSummary.period_days == period,
        )
        .execution_options(populate_existing=True)
    ).first()


def fresh_summary(
    session: Session, patient: Patient, *, now: int, period_days: int = ROSTER_PERIOD
) -> PatientMetricsSummary:
    """The patient's summary row of ``period_days``, recomputed first when it is stale, missing,
    older than :data:`FRESH_SECONDS` or was computed for another target preset.

    Args:
        patient: the patient (its ``target_preset`` decides the target range).
        now: epoch s UTC of the refresh, if one is needed.
        period_days: the window length in days.
    """
    assert patient.id is not None
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
    return row
