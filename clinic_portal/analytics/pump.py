"""Pump, pen and meter metrics over a report window.

Input is one patient's events as plain numpy arrays (:class:`PatientEvents`), built from the
normalized records (``PatientEvents.from_records``) or filled by a database loader. Event counts are
small (hundreds to a few thousand per fortnight, even with 5-min automated basal), so this module is
plain numpy; the CGM kernels live in ``analytics.kernels``.

Definitions follow shared/reference/metrics.md §5 (Tidepool viz's operational definitions) with
the choices written next to each metric. Times are epoch seconds UTC; every record carries its own
``utc_offset`` (minutes), and local days come from ``time + utc_offset * 60``, so a DST change or a
trip moves the day boundary exactly where the device's clock moved it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

from clinic_portal.analytics.pattern_thresholds import (
    DAY_S,
    MAX_INFERRED_BASAL_S,
    SITE_CHANGE_EVENT_PRIORITY,
    SITE_CHANGE_MERGE_S,
    WIZARD_OVERRIDE_TOLERANCE_U,
)
from clinic_portal.records import (
    AnyRecord,
    BasalKind,
    BasalSegment,
    Bolus,
    BolusKind,
    BolusSource,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    MeterReading,
    PumpSettings,
)

_EPOCH = date(1970, 1, 1)
# A wizard bolus's carbs and a separate carb entry of the same grams within this time are one meal
# written twice (sources that log the calculator's carb input also as a carb record).
CARB_DUPLICATE_S = 15 * 60
# Float slack when comparing insulin amounts already rounded to pump increments.
_EPS_U = 1e-9


def _empty(dtype: type | str) -> NDArray:
    return np.empty(0, dtype=dtype)


@dataclass(frozen=True, eq=False)
class PatientEvents:
    """One patient's device events as arrays, each group sorted by ``*_time``.

    Times are int64 epoch seconds UTC, offsets int64 minutes east of UTC (``records.py``), glucose
    float64 mg/dL, insulin float64 U, carbohydrate float64 g, durations int64/float64 seconds.
    Missing optional values are NaN. Kinds and sources hold the string values of the enums in
    ``records.py`` (``BolusSource``, ``BasalKind``, ``DeviceEventKind``), so a loader can fill them
    straight from database columns.

    Raises:
        ValueError: arrays of one group differ in length, or a group is not sorted by time.
    """

    cgm_time: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    cgm_glucose: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))
    cgm_offset: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))

    meter_time: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    meter_glucose: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))
    meter_offset: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))

    bolus_time: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    bolus_offset: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    bolus_source: NDArray[np.str_] = field(default_factory=lambda: _empty("<U16"))
    bolus_delivered: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))
    # Total programmed dose (normal + extended part of a dual bolus); NaN when not recorded.
    bolus_programmed: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))
    bolus_recommended: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))
    bolus_wizard_carbs: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))
    bolus_long_acting: NDArray[np.bool_] = field(default_factory=lambda: _empty(np.bool_))

    basal_time: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    basal_offset: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    basal_kind: NDArray[np.str_] = field(default_factory=lambda: _empty("<U16"))
    basal_rate: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))  # U/h
    basal_duration: NDArray[np.int64] = field(
        default_factory=lambda: _empty(np.int64)
    )  # 0: unknown
    basal_percent: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))

    carb_time: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    carb_offset: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    carb_grams: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))

    event_time: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    event_offset: NDArray[np.int64] = field(default_factory=lambda: _empty(np.int64))
    event_kind: NDArray[np.str_] = field(default_factory=lambda: _empty("<U16"))
    event_duration: NDArray[np.float64] = field(default_factory=lambda: _empty(np.float64))

    # From the latest pump settings snapshot, seconds; None when no snapshot gives it.
    active_insulin_time_s: int | None = None

    _GROUPS = {
        "cgm": ("cgm_time", "cgm_glucose", "cgm_offset"),
        "meter": ("meter_time", "meter_glucose", "meter_offset"),
        "bolus": (
            "bolus_time",
            "bolus_offset",
            "bolus_source",
            "bolus_delivered",
            "bolus_programmed",
            "bolus_recommended",
            "bolus_wizard_carbs",
            "bolus_long_acting",
        ),
        "basal": (
            "basal_time",
            "basal_offset",
            "basal_kind",
            "basal_rate",
            "basal_duration",
            "basal_percent",
        ),
        "carb": ("carb_time", "carb_offset", "carb_grams"),
        "event": ("event_time", "event_offset", "event_kind", "event_duration"),
    }

    def __post_init__(self) -> None:
        for group, names in self._GROUPS.items():
            lengths = {len(getattr(self, name)) for name in names}
            if len(lengths) > 1:
                raise ValueError(f"{group} arrays differ in length: {sorted(lengths)}")
            times = getattr(self, names[0])
            if len(times) > 1 and bool(np.any(np.diff(times) < 0)):
                raise ValueError(f"{group} records are not sorted by time")

    @classmethod
    def from_records(cls, records: Iterable[AnyRecord]) -> PatientEvents:
        """Build the arrays from normalized records (any order, exact duplicates collapsed).

        CGM settings and device info are ignored; the latest :class:`PumpSettings` snapshot gives
        ``active_insulin_time_s``.
        """
        unique = list(dict.fromkeys(records))
        cgm = sorted((r for r in unique if isinstance(r, CgmReading)), key=lambda r: r.time)
        meter = sorted((r for r in unique if isinstance(r, MeterReading)), key=lambda r: r.time)
        boluses = sorted((r for r in unique if isinstance(r, Bolus)), key=lambda r: r.time)
        basal = sorted((r for r in unique if isinstance(r, BasalSegment)), key=lambda r: r.time)
        carbs = sorted((r for r in unique if isinstance(r, CarbEntry)), key=lambda r: r.time)
        events = sorted((r for r in unique if isinstance(r, DeviceEvent)), key=lambda r: r.time)
        settings = sorted((r for r in unique if isinstance(r, PumpSettings)), key=lambda r: r.time)
        ait = next(
            (s.active_insulin_time for s in reversed(settings) if s.active_insulin_time), None
        )

        def nan_if_none(value: float | None) -> float:
            return math.nan if value is None else float(value)

        def programmed_total(b: Bolus) -> float:
            # records.py: ``programmed`` is the normal part (or the whole square bolus); a dual
            # bolus adds its extended part.
            if b.programmed is None:
                return math.nan
            if b.kind == BolusKind.DUAL and b.extended is not None:
                return b.programmed + b.extended
            return b.programmed

        return cls(
            cgm_time=np.array([r.time for r in cgm], dtype=np.int64),
            cgm_glucose=np.array([r.glucose for r in cgm], dtype=np.float64),
            cgm_offset=np.array([r.utc_offset for r in cgm], dtype=np.int64),
            meter_time=np.array([r.time for r in meter], dtype=np.int64),
            meter_glucose=np.array([r.glucose for r in meter], dtype=np.float64),
            meter_offset=np.array([r.utc_offset for r in meter], dtype=np.int64),
            bolus_time=np.array([r.time for r in boluses], dtype=np.int64),
            bolus_offset=np.array([r.utc_offset for r in boluses], dtype=np.int64),
            bolus_source=np.array([r.source.value for r in boluses], dtype="<U16"),
            bolus_delivered=np.array([r.delivered for r in boluses], dtype=np.float64),
            bolus_programmed=np.array([programmed_total(r) for r in boluses], dtype=np.float64),
            bolus_recommended=np.array(
                [nan_if_none(r.recommended) for r in boluses], dtype=np.float64
            ),
            bolus_wizard_carbs=np.array(
                [nan_if_none(r.wizard_carbs) for r in boluses], dtype=np.float64
            ),
            bolus_long_acting=np.array([r.long_acting for r in boluses], dtype=np.bool_),
            basal_time=np.array([r.time for r in basal], dtype=np.int64),
            basal_offset=np.array([r.utc_offset for r in basal], dtype=np.int64),
            basal_kind=np.array([r.kind.value for r in basal], dtype="<U16"),
            basal_rate=np.array([r.rate for r in basal], dtype=np.float64),
            basal_duration=np.array([r.duration for r in basal], dtype=np.int64),
            basal_percent=np.array([nan_if_none(r.percent) for r in basal], dtype=np.float64),
            carb_time=np.array([r.time for r in carbs], dtype=np.int64),
            carb_offset=np.array([r.utc_offset for r in carbs], dtype=np.int64),
            carb_grams=np.array([r.carbs for r in carbs], dtype=np.float64),
            event_time=np.array([r.time for r in events], dtype=np.int64),
            event_offset=np.array([r.utc_offset for r in events], dtype=np.int64),
            event_kind=np.array([r.kind.value for r in events], dtype="<U16"),
            event_duration=np.array([nan_if_none(r.duration) for r in events], dtype=np.float64),
            active_insulin_time_s=ait,
        )


# --- local time -----------------------------------------------------------------------------------


def local_day_index(time: NDArray[np.int64] | int, offset: NDArray[np.int64] | int) -> NDArray:
    """Local calendar day (days since 1970-01-01) of UTC ``time`` s at ``offset`` min."""
    return np.floor_divide(np.asarray(time) + np.asarray(offset) * 60, DAY_S)


def local_time_of_day(time: NDArray[np.int64] | int, offset: NDArray[np.int64] | int) -> NDArray:
    """Local seconds after midnight of UTC ``time`` s at ``offset`` min."""
    return np.mod(np.asarray(time) + np.asarray(offset) * 60, DAY_S)


def day_from_index(index: int) -> date:
    """The calendar date of a local day index from :func:`local_day_index`."""
    return _EPOCH + timedelta(days=int(index))


# --- shared event helpers (also used by analytics.patterns) ---------------------------------------


@dataclass(frozen=True, slots=True)
class BasalIntervals:
    """Basal segments with their effective end, in time order (arrays of equal length).

    ``stop`` is ``time + duration``, or the next segment's start when the duration is unknown (at
    most ``MAX_INFERRED_BASAL_S``), and never later than the next segment's start: a new segment
    supersedes the running one. ``delivery_rate`` is the rate in U/h, 0 while suspended.
    """

    start: NDArray[np.int64]
    stop: NDArray[np.int64]
    offset: NDArray[np.int64]
    kind: NDArray[np.str_]
    rate: NDArray[np.float64]
    delivery_rate: NDArray[np.float64]
    percent: NDArray[np.float64]


def basal_intervals(events: PatientEvents) -> BasalIntervals:
    """Effective delivery intervals of the basal segments (see :class:`BasalIntervals`)."""
    start = events.basal_time.astype(np.int64)
    duration = events.basal_duration.astype(np.int64)
    next_start = np.append(start[1:], np.iinfo(np.int64).max)
    inferred = np.minimum(next_start, start + MAX_INFERRED_BASAL_S)
    inferred[-1:] = start[-1:]  # last segment without duration: nothing known after its start
    stop = np.where(duration > 0, start + duration, inferred)
    stop = np.minimum(stop, next_start)
    suspended = events.basal_kind == BasalKind.SUSPENDED.value
    return BasalIntervals(
        start=start,
        stop=stop,
        offset=events.basal_offset.astype(np.int64),
        kind=events.basal_kind,
        rate=events.basal_rate,
        delivery_rate=np.where(suspended, 0.0, events.basal_rate),
        percent=events.basal_percent,
    )


def suspend_intervals(events: PatientEvents) -> list[tuple[int, int]]:
    """Pump suspensions as ``(start, stop)`` epoch seconds, in time order.

    Suspended basal segments are used when there are any (they carry the exact span); otherwise
    ``suspend`` device events, with their duration or closed by the next ``resume`` event (an
    unclosed suspend is dropped: its length is unknown). Using one source only avoids counting a
    suspend twice when a pump logs both.
    """
    basal = basal_intervals(events)
    suspended = basal.kind == BasalKind.SUSPENDED.value
    if bool(np.any(suspended)):
        return [
            (int(s), int(e))
            for s, e in zip(basal.start[suspended], basal.stop[suspended], strict=True)
            if e > s
        ]
    out: list[tuple[int, int]] = []
    kinds = events.event_kind
    resumes = events.event_time[kinds == DeviceEventKind.RESUME.value]
    for t, dur in zip(
        events.event_time[kinds == DeviceEventKind.SUSPEND.value],
        events.event_duration[kinds == DeviceEventKind.SUSPEND.value],
        strict=True,
    ):
        if np.isfinite(dur) and dur > 0:
            out.append((int(t), int(t + dur)))
            continue
        later = resumes[resumes > t]
        if len(later):
            out.append((int(t), int(later[0])))
    return out


def site_change_times(events: PatientEvents) -> NDArray[np.int64]:
    """Times (epoch s) of infusion-site changes, one per change, in time order.

    Uses the first event kind of ``SITE_CHANGE_EVENT_PRIORITY`` present in the data and merges
    events of that kind closer than ``SITE_CHANGE_MERGE_S`` (rewind, prime and cannula fill of one
    change come minutes apart).
    """
    for kind in SITE_CHANGE_EVENT_PRIORITY:
        times = events.event_time[events.event_kind == kind.value]
        if len(times):
            keep = np.ones(len(times), dtype=bool)
            keep[1:] = np.diff(times) >= SITE_CHANGE_MERGE_S
            return times[keep].astype(np.int64)
    return _empty(np.int64)


def user_bolus_mask(events: PatientEvents) -> NDArray[np.bool_]:
    """Boluses the patient gave: not automated (AID), not long-acting pen basal."""
    return (events.bolus_source != BolusSource.AUTOMATIC.value) & ~events.bolus_long_acting


def wizard_override_direction(events: PatientEvents) -> NDArray[np.int8]:
    """Per bolus: +1 programmed above the calculator's suggestion, −1 below, 0 otherwise.

    Only wizard boluses with a recommendation can be overridden. Programmed is used where known
    (else delivered), differences under ``WIZARD_OVERRIDE_TOLERANCE_U`` are pump rounding.
    """
    programmed = np.where(
        np.isfinite(events.bolus_programmed), events.bolus_programmed, events.bolus_delivered
    )
    diff = programmed - events.bolus_recommended
    eligible = (events.bolus_source == BolusSource.WIZARD.value) & np.isfinite(diff)
    limit = WIZARD_OVERRIDE_TOLERANCE_U - _EPS_U
    out = np.zeros(len(diff), dtype=np.int8)
    out[eligible & (diff >= limit)] = 1
    out[eligible & (diff <= -limit)] = -1
    return out


def carb_intake(events: PatientEvents) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray]:
    """All carbohydrate intake as ``(time, offset, grams)`` arrays in time order.

    Carb entries plus the carbs typed into the bolus calculator, except a calculator entry that
    duplicates a carb entry (same grams within ``CARB_DUPLICATE_S``).
    """
    wiz = np.isfinite(events.bolus_wizard_carbs) & (events.bolus_wizard_carbs > 0)
    keep = []
    for i in np.flatnonzero(wiz):
        t, g = events.bolus_time[i], events.bolus_wizard_carbs[i]
        near = np.abs(events.carb_time - t) <= CARB_DUPLICATE_S
        if not bool(np.any(np.abs(events.carb_grams[near] - g) < 0.5)):
            keep.append(i)
    idx = np.array(keep, dtype=np.int64)
    time = np.concatenate([events.carb_time, events.bolus_time[idx]]).astype(np.int64)
    offset = np.concatenate([events.carb_offset, events.bolus_offset[idx]]).astype(np.int64)
    grams = np.concatenate([events.carb_grams, events.bolus_wizard_carbs[idx]])
    order = np.argsort(time, kind="stable")
    return time[order], offset[order], grams[order]


# --- metrics --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyInsulin:
    """Insulin delivered on one local calendar day (U), within the report window."""

    day: date
    basal_u: float
    bolus_u: float

    @property
    def total_u(self) -> float:
        """Basal + bolus, U."""
        return self.basal_u + self.bolus_u


@dataclass(frozen=True, slots=True)
class PumpMetrics:
    """Pump, pen and meter metrics of one report window ``[window_start, window_end)``.

    ``None`` means "cannot be computed": no data of that kind in the window (e.g. no insulin
    records → no total daily dose; no wizard bolus with a recommendation → no override share).
    ``0`` is a measured zero (pump data present, no suspend). Per-day insulin, bolus and suspend
    figures divide by ``days_with_insulin_data``, carbs by ``days_with_carb_data`` (Tidepool's
    "active days"), meter readings by ``days_in_window`` (a day without a check counts, as in an
    adherence report).
    """

    window_start: int  # epoch s UTC
    window_end: int  # epoch s UTC, exclusive
    days_in_window: float  # (window_end - window_start) / 86400
    days_with_insulin_data: int  # local dates with a bolus or a basal segment in the window
    total_daily_dose_u: float | None  # (basal + bolus) / days_with_insulin_data, U/day
    basal_u_per_day: float | None  # incl. long-acting pen doses, U/day
    bolus_u_per_day: float | None  # delivered, incl. automated (AID) boluses, U/day
    basal_percent: float | None  # basal / (basal + bolus) × 100
    bolus_percent: float | None  # bolus / (basal + bolus) × 100
    boluses_per_day: float | None  # patient-initiated boluses per day with insulin data
    automated_boluses_per_day: float | None  # AID boluses per day with insulin data
    wizard_bolus_percent: float | None  # wizard boluses / patient-initiated boluses × 100
    wizard_override_percent: float | None  # overridden / wizard boluses with a suggestion × 100
    wizard_overrides_up: int  # programmed ≥ 0.05 U above the suggestion
    wizard_overrides_down: int  # programmed ≥ 0.05 U below the suggestion
    carbs_g_per_day: float | None  # g per day with carb data
    days_with_carb_data: int
    suspend_count: int  # suspends starting or running in the window
    suspend_minutes_per_day: float | None  # min/day, clipped to the window
    automated_mode_percent: float | None  # automated basal time / all basal time × 100
    site_change_intervals_days: tuple[float, ...]  # between consecutive changes in the window
    site_change_interval_mean_days: float | None
    site_change_interval_max_days: float | None
    meter_readings_per_day: float  # readings / days_in_window
    daily: tuple[DailyInsulin, ...]  # per local date with insulin data, in date order


def _add_interval_by_day(
    totals: dict[int, float], start: int, stop: int, offset: int, rate_u_per_h: float
) -> None:
    """Add ``rate × (stop − start)`` to the local days the interval covers, split at midnight."""
    local_start = start + offset * 60
    local_stop = stop + offset * 60
    day = local_start // DAY_S
    while local_start < local_stop:
        day_end = (day + 1) * DAY_S
        piece = min(local_stop, day_end) - local_start
        totals[day] = totals.get(day, 0.0) + rate_u_per_h * piece / 3600.0
        local_start += piece
        day += 1


def pump_metrics(events: PatientEvents, start: int, end: int) -> PumpMetrics:
    """Pump/pen/meter metrics of ``events`` in the window ``[start, end)`` (epoch s UTC).

    Basal insulin is rate × duration of each basal segment clipped to the window (suspended
    segments deliver 0), plus long-acting pen doses; bolus insulin is the delivered amount
    (interrupted boluses count what was delivered, the Tidepool ``getDelivered`` rule), attributed
    to the bolus start. Local days use each record's own ``utc_offset``. Windows are expected to
    start and end on local midnight; a partial edge day still counts as one day with data.

    Raises:
        ValueError: ``end <= start``.
    """
    if end <= start:
        raise ValueError(f"empty report window [{start}, {end})")

    basal_by_day: dict[int, float] = {}
    bolus_by_day: dict[int, float] = {}

    basal = basal_intervals(events)
    clip_start = np.maximum(basal.start, start)
    clip_stop = np.minimum(basal.stop, end)
    in_window = clip_stop > clip_start
    pump_time_s = float(np.sum((clip_stop - clip_start)[in_window]))
    automated = in_window & (basal.kind == BasalKind.AUTOMATED.value)
    automated_time_s = float(np.sum((clip_stop - clip_start)[automated]))
    for i in np.flatnonzero(in_window):
        _add_interval_by_day(
            basal_by_day,
            int(clip_start[i]),
            int(clip_stop[i]),
            int(basal.offset[i]),
            float(basal.delivery_rate[i]),
        )

    b_in = (events.bolus_time >= start) & (events.bolus_time < end)
    b_days = local_day_index(events.bolus_time[b_in], events.bolus_offset[b_in])
    for day, amount, long_acting in zip(
        b_days, events.bolus_delivered[b_in], events.bolus_long_acting[b_in], strict=True
    ):
        target = basal_by_day if long_acting else bolus_by_day
        target[int(day)] = target.get(int(day), 0.0) + float(amount)

    insulin_days = sorted(set(basal_by_day) | set(bolus_by_day))
    n_days = len(insulin_days)
    daily = tuple(
        DailyInsulin(day_from_index(d), basal_by_day.get(d, 0.0), bolus_by_day.get(d, 0.0))
        for d in insulin_days
    )
    basal_total = sum(basal_by_day.values())
    bolus_total = sum(bolus_by_day.values())
    insulin_total = basal_total + bolus_total

    def per_day(value: float) -> float | None:
        return value / n_days if n_days else None

    user = user_bolus_mask(events) & b_in
    n_user = int(np.count_nonzero(user))
    n_auto = int(np.count_nonzero(b_in & (events.bolus_source == BolusSource.AUTOMATIC.value)))
    wizard = user & (events.bolus_source == BolusSource.WIZARD.value)
    n_wizard = int(np.count_nonzero(wizard))
    with_suggestion = wizard & np.isfinite(events.bolus_recommended)
    direction = wizard_override_direction(events)[with_suggestion]
    n_up = int(np.count_nonzero(direction > 0))
    n_down = int(np.count_nonzero(direction < 0))
    n_suggested = int(np.count_nonzero(with_suggestion))

    c_time, c_offset, c_grams = carb_intake(events)
    c_in = (c_time >= start) & (c_time < end) & (c_grams > 0)
    carb_days = set(local_day_index(c_time[c_in], c_offset[c_in]).tolist())
    carb_total = float(np.sum(c_grams[c_in]))

    suspends = [
        (max(s, start), min(e, end)) for s, e in suspend_intervals(events) if e > start and s < end
    ]
    suspend_minutes = sum(e - s for s, e in suspends) / 60.0

    changes = site_change_times(events)
    changes = changes[(changes >= start) & (changes < end)]
    intervals = tuple(float(x) for x in np.diff(changes) / DAY_S)

    n_meter = int(np.count_nonzero((events.meter_time >= start) & (events.meter_time < end)))
    days_in_window = (end - start) / DAY_S

    return PumpMetrics(
        window_start=start,
        window_end=end,
        days_in_window=days_in_window,
        days_with_insulin_data=n_days,
        total_daily_dose_u=per_day(insulin_total),
        basal_u_per_day=per_day(basal_total),
        bolus_u_per_day=per_day(bolus_total),
        basal_percent=100.0 * basal_total / insulin_total if insulin_total > 0 else None,
        bolus_percent=100.0 * bolus_total / insulin_total if insulin_total > 0 else None,
        boluses_per_day=per_day(n_user),
        automated_boluses_per_day=per_day(n_auto),
        wizard_bolus_percent=100.0 * n_wizard / n_user if n_user else None,
        wizard_override_percent=100.0 * (n_up + n_down) / n_suggested if n_suggested else None,
        wizard_overrides_up=n_up,
        wizard_overrides_down=n_down,
        carbs_g_per_day=carb_total / len(carb_days) if carb_days else None,
        days_with_carb_data=len(carb_days),
        suspend_count=len(suspends),
        suspend_minutes_per_day=per_day(suspend_minutes),
        automated_mode_percent=100.0 * automated_time_s / pump_time_s if pump_time_s else None,
        site_change_intervals_days=intervals,
        site_change_interval_mean_days=float(np.mean(intervals)) if intervals else None,
        site_change_interval_max_days=max(intervals) if intervals else None,
        meter_readings_per_day=n_meter / days_in_window,
        daily=daily,
    )
