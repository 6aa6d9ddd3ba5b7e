"""Clinical pattern detection with its evidence (CareLink-style Episode Summary and patterns).

For each hypo- and hyperglycaemic episode the engine lists the events around it that may have
contributed (basal changes, boluses while falling, stacked corrections, suspends, carbs without a
bolus, an overdue site change, ...), in the words of Medtronic's CareLink Episode Summary. It then
looks for patterns across days: recurring lows or highs in the same time-of-day window, overnight
lows, post-meal highs, rebound highs, dawn rises, rises with no bolus, stacked corrections, long
suspends and overdue site changes. Each :class:`Finding` carries its occurrences so a report can
show exactly which episodes and events triggered it (features.md (e) item 4).

Every threshold is a named field of
:class:`~clinic_portal.analytics.pattern_thresholds.PatternThresholds`
with its source; docs/patterns.md states each rule. Episodes come from the consensus episode
detector (``analytics.api.episodes``) or from the caller as plain ``(kind, start, end, extreme)``
tuples, so the rules here can be tested on hand-built episodes.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clinic_portal.analytics.api import Episode, GlucoseUnit
from clinic_portal.analytics.api import episodes as cgm_episodes
from clinic_portal.analytics.pattern_thresholds import (
    DAY_S,
    DEFAULT_PATTERN_THRESHOLDS,
    PatternThresholds,
)
from clinic_portal.analytics.pump import (
    CARB_DUPLICATE_S,
    PatientEvents,
    basal_intervals,
    carb_intake,
    day_from_index,
    site_change_times,
    suspend_intervals,
    user_bolus_mask,
    wizard_override_direction,
)
from clinic_portal.records import BasalKind, BolusSource


class Severity(enum.StrEnum):
    """How urgently a finding needs the clinician's attention."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


_SEVERITY_RANK = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2}


class FindingCode(enum.StrEnum):
    """Stable codes of the patterns (docs/patterns.md has one section per code)."""

    RECURRING_OVERNIGHT_LOWS = "recurring_overnight_lows"
    RECURRING_LOWS = "recurring_lows"
    OVERNIGHT_LOWS = "overnight_lows"
    RECURRING_OVERNIGHT_HIGHS = "recurring_overnight_highs"
    RECURRING_HIGHS = "recurring_highs"
    POST_MEAL_HIGHS = "post_meal_highs"
    REBOUND_HIGHS = "rebound_highs"
    DAWN_RISE = "dawn_rise"
    MISSED_MEAL_BOLUS = "missed_meal_bolus"
    STACKED_CORRECTIONS = "stacked_corrections"
    LONG_SUSPENDS = "long_suspends"
    OVERDUE_SITE_CHANGES = "overdue_site_changes"


class Contributing(enum.StrEnum):
    """Possible contributing events, worded after CareLink's Episode Summary.

    Hypo causes there: basal rate increase, rapidly falling SG, bolus while SG falling, Bolus Wizard
    food bolus, nocturnal, multiple correction boluses, manual bolus. Hyper causes: rising SG
    without bolus, delayed site change, basal rate decrease, dawn phenomenon, rebound after a low,
    pump suspends > 60 min (features.md b.1 item 2). The rest describe a finding's evidence.
    """

    NOCTURNAL = "nocturnal"
    DAWN_PERIOD = "dawn period"
    RAPIDLY_FALLING = "rapidly falling glucose"
    TEMP_BASAL_INCREASE = "temp basal increase before"
    BASAL_RATE_INCREASE = "basal rate increase before"
    BOLUS_WHILE_FALLING = "bolus while glucose falling"
    MANUAL_BOLUS = "manual bolus (no wizard)"
    WIZARD_FOOD_BOLUS = "bolus wizard food bolus"
    WIZARD_OVERRIDE_UP = "wizard suggestion overridden upwards"
    STACKED_CORRECTIONS = "correction boluses stacked within active insulin time"
    SUSPEND_BEFORE_LOW = "suspend before low"
    RISE_WITHOUT_BOLUS = "rise with no bolus"
    CARBS_WITHOUT_BOLUS = "carbs without bolus"
    DELAYED_SITE_CHANGE = "delayed site change"
    TEMP_BASAL_DECREASE = "temp basal decrease before"
    BASAL_RATE_DECREASE = "basal rate decrease before"
    WIZARD_OVERRIDE_DOWN = "wizard suggestion overridden downwards"
    LONG_SUSPEND_BEFORE = "long pump suspend before"
    REBOUND_AFTER_LOW = "rebound after a low"
    CARBS_FOR_LOW = "carbs taken for the low"
    LATE_MEAL_BOLUS = "meal bolus after eating"
    FOLLOWED_BY_LOW = "followed by a low"
    FOLLOWED_BY_HIGH = "followed by a high"
    HIGHS_WHILE_OVERDUE = "highs while the site change was overdue"


_CONTRIBUTING_ORDER: dict[str, int] = {str(c): i for i, c in enumerate(Contributing)}


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of a finding: an episode or event with its evidence.

    ``day`` is the local date of ``start``; ``start``/``end`` are epoch seconds UTC; ``extreme``
    is the lowest (lows) or highest (highs) glucose in mg/dL, or None for events without one.
    """

    day: date
    start: int
    end: int
    extreme: float | None
    contributing: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Finding:
    """A clinical pattern found in the window, with its occurrences as evidence.

    ``window_local`` is the local time-of-day window the pattern lives in (None for patterns not
    tied to a time of day); ``days`` (local dates with an occurrence, sorted) and ``count``
    (occurrences) are derived from ``occurrences``.
    """

    code: str
    title: str
    summary: str
    severity: Severity
    window_local: tuple[time, time] | None
    occurrences: list[Occurrence]
    days: list[date] = field(init=False)
    count: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "days", sorted({o.day for o in self.occurrences}))
        object.__setattr__(self, "count", len(self.occurrences))


@dataclass(frozen=True, slots=True)
class EpisodeSpan:
    """A glucose episode as this module uses it: ``kind`` is ``"hypo"`` or ``"hyper"``.

    ``start``/``end`` epoch seconds UTC, ``extreme`` lowest/highest mg/dL.
    """

    kind: str
    start: int
    end: int
    extreme: float


@dataclass(frozen=True, slots=True)
class EpisodeReview:
    """One episode of the Episode Summary with its possible contributing events."""

    kind: str  # "hypo" | "hyper"
    occurrence: Occurrence


EpisodeInput = tuple[Any, int, int, float] | Any
"""An episode as ``(kind, start, end, extreme)`` or any object with those attributes."""


def _direction(kind: Any) -> str:
    text = str(getattr(kind, "value", kind)).lower()
    if "hypo" in text or "low" in text:
        return "hypo"
    if "hyper" in text or "high" in text:
        return "hyper"
    raise ValueError(f"episode kind {kind!r} is neither hypo nor hyper")


def as_episode_spans(episodes: Iterable[EpisodeInput]) -> list[EpisodeSpan]:
    """Normalize episodes to :class:`EpisodeSpan` and merge overlapping ones of one direction.

    Accepts tuples ``(kind, start, end, extreme)`` or objects with ``kind``, ``start``, ``end`` and
    ``extreme`` attributes (e.g. ``analytics.api`` episodes). Kinds are matched on "hypo"/"low"
    and "hyper"/"high", so level-1, level-2 and extended kinds all count. Level-2 and extended
    episodes lie inside a level-1 episode (consensus: level 2 is a subset of level 1), so
    overlapping spans of one direction merge into one with the most extreme value: a 50 mg/dL
    low is one low, not three.

    Raises:
        ValueError: a kind is neither hypo nor hyper, or an episode ends before it starts.
    """
    spans: list[EpisodeSpan] = []
    for ep in episodes:
        if isinstance(ep, tuple):
            kind, start, end, extreme = ep
        else:
            if isinstance(ep, Episode):
                ep = ep.in_units(GlucoseUnit.MGDL)
            kind, start, end, extreme = ep.kind, ep.start, ep.end, ep.extreme
        if int(end) < int(start):
            raise ValueError(f"episode ends before it starts: {ep!r}")
        spans.append(EpisodeSpan(_direction(kind), int(start), int(end), float(extreme)))
    merged: list[EpisodeSpan] = []
    for direction in ("hypo", "hyper"):
        pick = min if direction == "hypo" else max
        current: EpisodeSpan | None = None
        for span in sorted((s for s in spans if s.kind == direction), key=lambda s: s.start):
            if current is not None and span.start <= current.end:
                current = EpisodeSpan(
                    direction,
                    current.start,
                    max(current.end, span.end),
                    pick(current.extreme, span.extreme),
                )
                continue
            if current is not None:
                merged.append(current)
            current = span
        if current is not None:
            merged.append(current)
    return sorted(merged, key=lambda s: (s.start, s.kind))


def _episodes_from_api(
    events: PatientEvents, start: int, end: int, settings: PatternThresholds
) -> list[Episode]:
    """Consensus episodes of the patient's CGM (``analytics.api.episodes``).

    The detection starts ``rebound_window_s`` before the window so that a high at the start of
    the window can be traced to the low that preceded it.
    """
    if len(events.cgm_time) == 0:
        return []
    per_patient = cgm_episodes(
        events.cgm_glucose,
        events.cgm_time,
        events.cgm_offset,
        np.array([0, len(events.cgm_time)], dtype=np.int64),
        start=start - settings.rebound_window_s,
        end=end,
    )
    return per_patient[0]


# --- time of day ----------------------------------------------------------------------------------


def _in_tod(tod: int, lo: int, hi: int) -> bool:
    """Whether local time of day ``tod`` lies in ``[lo, hi)``, which may wrap past midnight."""
    if lo <= hi:
        return lo <= tod < hi
    return tod >= lo or tod < hi


def _in_tod_array(tod: NDArray[np.int64], lo: int, hi: int) -> NDArray[np.bool_]:
    """:func:`_in_tod` for an array of times of day."""
    if lo <= hi:
        return (tod >= lo) & (tod < hi)
    return (tod >= lo) | (tod < hi)


def _clock(seconds: int) -> time:
    seconds %= DAY_S
    return time(seconds // 3600, (seconds % 3600) // 60)


def _hhmm(seconds: int) -> str:
    return _clock(seconds).strftime("%H:%M")


def _duration_text(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"


def _n(count: int, noun: str) -> str:
    """``count`` and ``noun``, plural when needed ("1 suspend", "2 suspends")."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _tags(tags: Iterable[Contributing]) -> list[str]:
    return [str(t) for t in sorted(set(tags), key=_CONTRIBUTING_ORDER.__getitem__)]


def _top_contributing(occurrences: Sequence[Occurrence], limit: int = 3) -> str:
    counts = Counter(tag for o in occurrences for tag in o.contributing)
    if not counts:
        return ""
    top = sorted(counts.items(), key=lambda kv: (-kv[1], _CONTRIBUTING_ORDER.get(kv[0], 99)))
    listed = ", ".join(f"{tag} ({n})" for tag, n in top[:limit])
    return f" Most frequent contributing events: {listed}."


# --- the analysis context -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Meal:
    time: int
    offset: int
    grams: float
    bolus_time: int | None  # the user bolus covering the meal, if any
    bolus_index: int | None  # its index in the bolus arrays


class _Context:
    """Per-patient arrays and derived events shared by all rules."""

    def __init__(
        self,
        events: PatientEvents,
        spans: list[EpisodeSpan],
        settings: PatternThresholds,
    ) -> None:
        self.events = events
        self.settings = settings
        self.ait = events.active_insulin_time_s or settings.default_active_insulin_time_s
        self.hypos = [s for s in spans if s.kind == "hypo"]
        self.hypers = [s for s in spans if s.kind == "hyper"]

        # Offset lookup over every record that carries one.
        times = np.concatenate(
            [
                events.cgm_time,
                events.meter_time,
                events.bolus_time,
                events.basal_time,
                events.carb_time,
                events.event_time,
            ]
        )
        offsets = np.concatenate(
            [
                events.cgm_offset,
                events.meter_offset,
                events.bolus_offset,
                events.basal_offset,
                events.carb_offset,
                events.event_offset,
            ]
        )
        order = np.argsort(times, kind="stable")
        self._off_t = times[order]
        self._off_v = offsets[order]

        finite = np.isfinite(events.cgm_glucose)
        self.cgm_t = events.cgm_time[finite]
        self.cgm_g = events.cgm_glucose[finite]
        self.cgm_off = events.cgm_offset[finite]

        user = user_bolus_mask(events) & (events.bolus_delivered > 0)
        self.ub_idx = np.flatnonzero(user)
        self.ub_t = events.bolus_time[user]
        self.ub_source = events.bolus_source[user]
        carbs = events.bolus_wizard_carbs[user]
        self.ub_has_carbs = np.isfinite(carbs) & (carbs > 0)
        self.ub_direction = wizard_override_direction(events)[user]

        self.basal = basal_intervals(events)
        self.basal_prev_scheduled = self._previous_scheduled_rates()
        self.suspends = suspend_intervals(events)
        self.site_changes = site_change_times(events)

        c_time, c_offset, c_grams = carb_intake(events)
        self.carb_t, self.carb_off, self.carb_g = c_time, c_offset, c_grams
        self.meals = self._meals()
        self.corrections = self._corrections()
        self.stacked = [
            (int(a), int(b))
            for a, b in zip(self.corrections[:-1], self.corrections[1:], strict=True)
            if 0 < b - a < self.ait
        ]

    # --- lookups ---
    def offset_at(self, t: int) -> int:
        """Local offset (min) of the latest record at or before ``t`` (else the first one)."""
        if len(self._off_t) == 0:
            return 0
        i = int(np.searchsorted(self._off_t, t, side="right")) - 1
        return int(self._off_v[max(i, 0)])

    def local_day(self, t: int) -> date:
        return day_from_index((t + self.offset_at(t) * 60) // DAY_S)

    def tod(self, t: int) -> int:
        return (t + self.offset_at(t) * 60) % DAY_S

    def cgm_between(self, t0: int, t1: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """CGM readings with ``t0 <= time <= t1``."""
        i0 = int(np.searchsorted(self.cgm_t, t0, side="left"))
        i1 = int(np.searchsorted(self.cgm_t, t1, side="right"))
        return self.cgm_t[i0:i1], self.cgm_g[i0:i1]

    def slope(self, t_end: int, span: int) -> float:
        """Glucose trend in mg/dL/min over ``[t_end - span, t_end]``; NaN without enough data."""
        t, g = self.cgm_between(t_end - span, t_end)
        if len(t) < 2 or t[-1] - t[0] < span / 2:
            return float("nan")
        return float((g[-1] - g[0]) / ((t[-1] - t[0]) / 60.0))

    def user_boluses_between(self, t0: int, t1: int) -> NDArray[np.intp]:
        """Positions (into the ``ub_*`` arrays) of user boluses with ``t0 <= time <= t1``."""
        i0 = int(np.searchsorted(self.ub_t, t0, side="left"))
        i1 = int(np.searchsorted(self.ub_t, t1, side="right"))
        return np.arange(i0, i1)

    def in_hypo_or_treatment(self, t: int) -> bool:
        after = self.settings.hypo_treatment_after_s
        return any(h.start <= t <= h.end + after for h in self.hypos)

    # --- derived events ---
    def _previous_scheduled_rates(self) -> NDArray[np.float64]:
        """Per basal segment: rate of the last scheduled segment before it (NaN if none)."""
        out = np.full(len(self.basal.start), np.nan)
        last = np.nan
        for i, kind in enumerate(self.basal.kind):
            out[i] = last
            if kind == BasalKind.SCHEDULED.value:
                last = float(self.basal.rate[i])
        return out

    def _meals(self) -> list[_Meal]:
        """Carb intake grouped into meals (entries within 15 min are one), treatments removed."""
        s = self.settings
        groups: list[list[int]] = []
        for i in range(len(self.carb_t)):
            if groups and self.carb_t[i] - self.carb_t[groups[-1][0]] <= CARB_DUPLICATE_S:
                groups[-1].append(i)
            else:
                groups.append([i])
        meals: list[_Meal] = []
        for group in groups:
            t = int(self.carb_t[group[0]])
            grams = float(np.sum(self.carb_g[group]))
            if grams < s.min_meal_carbs_g or self.in_hypo_or_treatment(t):
                continue
            near = self.user_boluses_between(t - s.meal_bolus_before_s, t + s.meal_bolus_after_s)
            if len(near):
                k = int(near[np.argmin(np.abs(self.ub_t[near] - t))])
                meals.append(_Meal(t, int(self.carb_off[group[0]]), grams, int(self.ub_t[k]), k))
            else:
                meals.append(_Meal(t, int(self.carb_off[group[0]]), grams, None, None))
        return meals

    def _corrections(self) -> NDArray[np.int64]:
        """Times of correction boluses: user boluses with no carbs in or near them.

        A calculator bolus says itself whether it had carbs. A manual or pen bolus is only known
        to be a correction on a local day with carb records: someone who never logs carbs (many
        pen users) would otherwise have every meal bolus counted as a correction.
        """
        s = self.settings
        meal_times = np.array([m.time for m in self.meals], dtype=np.int64)
        carb_days = set(((self.carb_t + self.carb_off * 60) // DAY_S).tolist())
        out = []
        for k, t in enumerate(self.ub_t):
            if self.ub_has_carbs[k]:
                continue
            if self.ub_source[k] != BolusSource.WIZARD.value:
                day = (int(t) + self.offset_at(int(t)) * 60) // DAY_S
                if day not in carb_days:
                    continue
            near = (meal_times >= t - s.meal_bolus_after_s) & (
                meal_times <= t + s.meal_bolus_before_s
            )
            if not bool(np.any(near)):
                out.append(int(t))
        return np.array(out, dtype=np.int64)

    def site_age(self, t: int) -> int | None:
        """Seconds since the last site change at or before ``t`` (None if none is known)."""
        i = int(np.searchsorted(self.site_changes, t, side="right")) - 1
        return None if i < 0 else int(t - self.site_changes[i])

    def basal_changes(self, t: int) -> tuple[set[Contributing], set[Contributing]]:
        """Basal increases and decreases in the ``basal_lookback_s`` before ``t``."""
        lo = t - self.settings.basal_lookback_s
        b = self.basal
        up: set[Contributing] = set()
        down: set[Contributing] = set()
        # Segments do not overlap (each ends by the next start), so the ones running in [lo, t)
        # are a contiguous run found by bisection.
        first = max(int(np.searchsorted(b.start, lo, side="right")) - 1, 0)
        last = int(np.searchsorted(b.start, t, side="left"))
        for i in range(first, last):
            if b.stop[i] <= lo:
                continue
            prev, rate, pct = self.basal_prev_scheduled[i], b.rate[i], b.percent[i]
            if b.kind[i] == BasalKind.TEMP.value:
                higher = pct > 100 if np.isfinite(pct) else rate > prev
                lower = pct < 100 if np.isfinite(pct) else rate < prev
                if higher:
                    up.add(Contributing.TEMP_BASAL_INCREASE)
                if lower:
                    down.add(Contributing.TEMP_BASAL_DECREASE)
            elif b.kind[i] == BasalKind.SCHEDULED.value and b.start[i] >= lo:
                if rate > prev:
                    up.add(Contributing.BASAL_RATE_INCREASE)
                if rate < prev:
                    down.add(Contributing.BASAL_RATE_DECREASE)
        return up, down

    # --- per-episode contributing events ---
    def hypo_contributing(self, ep: EpisodeSpan) -> list[str]:
        s = self.settings
        tags: set[Contributing] = set()
        if _in_tod(self.tod(ep.start), s.overnight_start_s, s.overnight_end_s):
            tags.add(Contributing.NOCTURNAL)
        if self.slope(ep.start, s.rapid_fall_lookback_s) <= -s.rapid_fall_mgdl_per_min:
            tags.add(Contributing.RAPIDLY_FALLING)
        tags |= self.basal_changes(ep.start)[0]
        for k in self.user_boluses_between(ep.start - self.ait, ep.start):
            t = int(self.ub_t[k])
            if self.slope(t, s.trend_span_s) <= -s.falling_mgdl_per_min:
                tags.add(Contributing.BOLUS_WHILE_FALLING)
            if self.ub_source[k] == BolusSource.MANUAL.value:
                tags.add(Contributing.MANUAL_BOLUS)
            if self.ub_source[k] == BolusSource.WIZARD.value and self.ub_has_carbs[k]:
                tags.add(Contributing.WIZARD_FOOD_BOLUS)
            if self.ub_direction[k] > 0:
                tags.add(Contributing.WIZARD_OVERRIDE_UP)
        if any(ep.start - self.ait <= b <= ep.start for _, b in self.stacked):
            tags.add(Contributing.STACKED_CORRECTIONS)
        if any(ep.start - s.suspend_before_low_s <= a <= ep.end for a, _ in self.suspends):
            tags.add(Contributing.SUSPEND_BEFORE_LOW)
        return _tags(tags)

    def rebound_source(self, ep: EpisodeSpan) -> EpisodeSpan | None:
        """The low this high rebounds from: a reading < low_mgdl within ``rebound_window_s``
        before the high starts (Acciaroli 2022) that belongs to a hypo episode."""
        s = self.settings
        t, g = self.cgm_between(ep.start - s.rebound_window_s, ep.start - 1)
        low_times = t[g < s.low_mgdl]
        if len(low_times) == 0:
            return None
        last_low = int(low_times[-1])
        return next((h for h in self.hypos if h.start <= last_low <= h.end), None)

    def rise_without_bolus(self, ep: EpisodeSpan) -> bool:
        """Glucose rose ≥ rise_min_mgdl in the lookback before the high with no user bolus."""
        s = self.settings
        t, g = self.cgm_between(ep.start - s.rise_lookback_s, ep.start)
        if len(t) < 2:
            return False
        nadir = int(np.argmin(g))
        if g[-1] - g[nadir] < s.rise_min_mgdl:
            return False
        return len(self.user_boluses_between(int(t[nadir]) - s.meal_bolus_before_s, ep.start)) == 0

    def hyper_contributing(self, ep: EpisodeSpan) -> list[str]:
        s = self.settings
        tags: set[Contributing] = set()
        tod = self.tod(ep.start)
        if _in_tod(tod, s.overnight_start_s, s.overnight_end_s):
            tags.add(Contributing.NOCTURNAL)
        if _in_tod(tod, s.dawn_start_s, s.dawn_end_s):
            tags.add(Contributing.DAWN_PERIOD)
        rebound = self.rebound_source(ep)
        if rebound is not None:
            tags.add(Contributing.REBOUND_AFTER_LOW)
            lo, hi = rebound.start, rebound.end + s.hypo_treatment_after_s
            if bool(np.any((self.carb_t >= lo) & (self.carb_t <= hi))):
                tags.add(Contributing.CARBS_FOR_LOW)
        elif self.rise_without_bolus(ep):
            tags.add(Contributing.RISE_WITHOUT_BOLUS)
        if any(
            m.bolus_time is None and ep.start - s.rise_lookback_s <= m.time <= ep.start
            for m in self.meals
        ):
            tags.add(Contributing.CARBS_WITHOUT_BOLUS)
        age = self.site_age(ep.start)
        if age is not None and age > s.overdue_site_change_s:
            tags.add(Contributing.DELAYED_SITE_CHANGE)
        tags |= self.basal_changes(ep.start)[1]
        for k in self.user_boluses_between(ep.start - self.ait, ep.start):
            if self.ub_direction[k] < 0:
                tags.add(Contributing.WIZARD_OVERRIDE_DOWN)
        if any(
            b - a >= s.long_suspend_s and a < ep.start and b >= ep.start - s.after_suspend_s
            for a, b in self.suspends
        ):
            tags.add(Contributing.LONG_SUSPEND_BEFORE)
        return _tags(tags)

    def review(self, ep: EpisodeSpan) -> Occurrence:
        contributing = (
            self.hypo_contributing(ep) if ep.kind == "hypo" else self.hyper_contributing(ep)
        )
        return Occurrence(self.local_day(ep.start), ep.start, ep.end, ep.extreme, contributing)


# --- rules ----------------------------------------------------------------------------------------


def _recurring(ctx: _Context, occurrences: list[Occurrence]) -> list[tuple[int, list[Occurrence]]]:
    """Greedy time-of-day clustering: the 2-h window (on whole hours) holding occurrences on the
    most distinct days wins, ties going to more occurrences, then to the window whose centre is
    nearest the occurrences; its occurrences are removed and the search repeats."""
    s = ctx.settings
    remaining = list(occurrences)
    out: list[tuple[int, list[Occurrence]]] = []
    while remaining:
        tods = [ctx.tod(o.start) for o in remaining]
        best: tuple[tuple[int, int, float, int], int, list[int]] | None = None
        for w in range(0, DAY_S, s.recurring_step_s):
            members = [
                i
                for i, tod in enumerate(tods)
                if _in_tod(tod, w, (w + s.recurring_window_s) % DAY_S or DAY_S)
            ]
            n_days = len({remaining[i].day for i in members})
            if n_days < s.recurring_min_days:
                continue
            centre = w + s.recurring_window_s // 2
            spread = sum(
                min(abs(tods[i] - centre) % DAY_S, DAY_S - abs(tods[i] - centre) % DAY_S)
                for i in members
            )
            key = (-n_days, -len(members), spread / len(members), w)
            if best is None or key < best[0]:
                best = (key, w, members)
        if best is None:
            break
        _, w, members = best
        taken = set(members)
        out.append((w, [remaining[i] for i in members]))
        remaining = [o for i, o in enumerate(remaining) if i not in taken]
    return out


def _recurring_findings(ctx: _Context, reviews: list[Occurrence], low: bool) -> list[Finding]:
    s = ctx.settings
    findings = []
    for w, occ in _recurring(ctx, reviews):
        w_end = w + s.recurring_window_s
        overnight = _in_tod(w, s.overnight_start_s, s.overnight_end_s) and _in_tod(
            (w_end - 1) % DAY_S, s.overnight_start_s, s.overnight_end_s
        )
        word = "lows" if low else "highs"
        if low:
            code = FindingCode.RECURRING_OVERNIGHT_LOWS if overnight else FindingCode.RECURRING_LOWS
        else:
            code = (
                FindingCode.RECURRING_OVERNIGHT_HIGHS if overnight else FindingCode.RECURRING_HIGHS
            )
        extremes = [o.extreme for o in occ if o.extreme is not None]
        if low:
            worst = min(extremes)
            severity = Severity.HIGH if worst < s.very_low_mgdl else Severity.MEDIUM
            worst_text = f"lowest {worst:.0f} mg/dL"
        else:
            worst = max(extremes)
            severity = Severity.MEDIUM if worst > s.very_high_mgdl else Severity.LOW
            worst_text = f"highest {worst:.0f} mg/dL"
        between = f"between {_hhmm(w)} and {_hhmm(w_end)}"
        n_days = len({o.day for o in occ})
        findings.append(
            Finding(
                code=code,
                title=f"Recurring {'overnight ' if overnight else ''}{word} {between}",
                summary=(
                    f"{word.capitalize()} on {n_days} days {between} ({len(occ)} episodes, "
                    f"{worst_text})." + _top_contributing(occ)
                ),
                severity=severity,
                window_local=(_clock(w), _clock(w_end)),
                occurrences=occ,
            )
        )
    return findings


def _overnight_lows(
    ctx: _Context, hypo_reviews: list[Occurrence], already: list[Finding]
) -> list[Finding]:
    s = ctx.settings
    occ = [
        o for o in hypo_reviews if _in_tod(ctx.tod(o.start), s.overnight_start_s, s.overnight_end_s)
    ]
    nights = {o.day for o in occ}
    if len(nights) < s.overnight_lows_min_nights:
        return []
    # A recurring-overnight-lows finding that already shows every one of these lows says it all.
    shown = {
        (o.start, o.end)
        for f in already
        if f.code == FindingCode.RECURRING_OVERNIGHT_LOWS
        for o in f.occurrences
    }
    if all((o.start, o.end) in shown for o in occ):
        return []
    worst = min(o.extreme for o in occ if o.extreme is not None)
    window = f"{_hhmm(s.overnight_start_s)}–{_hhmm(s.overnight_end_s)}"
    return [
        Finding(
            code=FindingCode.OVERNIGHT_LOWS,
            title=f"Overnight lows ({window})",
            summary=(
                f"Lows on {len(nights)} nights between {_hhmm(s.overnight_start_s)} and "
                f"{_hhmm(s.overnight_end_s)} ({len(occ)} episodes, lowest {worst:.0f} mg/dL)."
                + _top_contributing(occ)
            ),
            severity=Severity.HIGH if worst < s.very_low_mgdl else Severity.MEDIUM,
            window_local=(_clock(s.overnight_start_s), _clock(s.overnight_end_s)),
            occurrences=occ,
        )
    ]


def _post_meal_highs(ctx: _Context, start: int, end: int) -> list[Finding]:
    s = ctx.settings
    occ: list[Occurrence] = []
    bolused = [m for m in ctx.meals if m.bolus_time is not None and start <= m.time < end]
    for meal in bolused:
        t, g = ctx.cgm_between(meal.time + s.post_meal_start_s, meal.time + s.post_meal_end_s)
        if len(t) == 0:
            continue
        peak = int(np.argmax(g))
        if g[peak] <= s.high_mgdl:
            continue
        _, pre = ctx.cgm_between(meal.time - s.dawn_average_s, meal.time)
        if len(pre) and float(np.mean(pre)) > s.high_mgdl:
            continue  # already high before eating: not a post-meal excursion
        tags: set[Contributing] = set()
        if meal.bolus_time is None or meal.bolus_index is None:
            continue
        if meal.bolus_time - meal.time >= s.late_bolus_s:
            tags.add(Contributing.LATE_MEAL_BOLUS)
        if ctx.ub_direction[meal.bolus_index] < 0:
            tags.add(Contributing.WIZARD_OVERRIDE_DOWN)
        if ctx.ub_source[meal.bolus_index] == BolusSource.MANUAL.value:
            tags.add(Contributing.MANUAL_BOLUS)
        occ.append(
            Occurrence(
                ctx.local_day(meal.time), meal.time, int(t[peak]), float(g[peak]), _tags(tags)
            )
        )
    days = {o.day for o in occ}
    if len(days) < s.recurring_min_days:
        return []
    worst = max(o.extreme for o in occ if o.extreme is not None)
    span = f"{_duration_text(s.post_meal_start_s)} to {_duration_text(s.post_meal_end_s)}"
    return [
        Finding(
            code=FindingCode.POST_MEAL_HIGHS,
            title="Highs after meals",
            summary=(
                f"Glucose above {s.high_mgdl:.0f} mg/dL {span} after {len(occ)} of "
                f"{len(bolused)} meals with a bolus, on {len(days)} days (highest "
                f"{worst:.0f} mg/dL)." + _top_contributing(occ)
            ),
            severity=Severity.MEDIUM if worst > s.very_high_mgdl else Severity.LOW,
            window_local=None,
            occurrences=occ,
        )
    ]


def _rebound_highs(ctx: _Context, hyper_reviews: list[Occurrence]) -> list[Finding]:
    s = ctx.settings
    occ = [o for o in hyper_reviews if Contributing.REBOUND_AFTER_LOW in o.contributing]
    if len(occ) < s.min_event_occurrences:
        return []
    worst = max(o.extreme for o in occ if o.extreme is not None)
    treated = sum(Contributing.CARBS_FOR_LOW in o.contributing for o in occ)
    return [
        Finding(
            code=FindingCode.REBOUND_HIGHS,
            title="Rebound highs after lows",
            summary=(
                f"{_n(len(occ), 'high')} above {s.high_mgdl:.0f} mg/dL began within "
                f"{_duration_text(s.rebound_window_s)} of a low ({treated} with carbs logged for "
                f"the low; highest {worst:.0f} mg/dL): possible over-treatment of lows."
            ),
            severity=Severity.MEDIUM if worst > s.very_high_mgdl else Severity.LOW,
            window_local=None,
            occurrences=occ,
        )
    ]


def _missed_meal_bolus(ctx: _Context, hyper_reviews: list[Occurrence]) -> list[Finding]:
    s = ctx.settings
    wanted = {Contributing.RISE_WITHOUT_BOLUS, Contributing.CARBS_WITHOUT_BOLUS}
    # A rise in the dawn period with no carbs is the dawn phenomenon (its own finding), and a
    # rise out of a low is a rebound: neither is a missed meal bolus.
    occ = [
        o
        for o in hyper_reviews
        if wanted & set(o.contributing)
        and Contributing.REBOUND_AFTER_LOW not in o.contributing
        and (
            Contributing.DAWN_PERIOD not in o.contributing
            or Contributing.CARBS_WITHOUT_BOLUS in o.contributing
        )
    ]
    if len(occ) < s.min_event_occurrences:
        return []
    with_carbs = sum(Contributing.CARBS_WITHOUT_BOLUS in o.contributing for o in occ)
    return [
        Finding(
            code=FindingCode.MISSED_MEAL_BOLUS,
            title="Rises with no bolus (possible missed meal bolus)",
            summary=(
                f"{_n(len(occ), 'high')} followed a rise with no bolus; {with_carbs} of them after "
                "carbs were entered without a bolus."
            ),
            severity=Severity.MEDIUM,
            window_local=None,
            occurrences=occ,
        )
    ]


def _dawn_rise(ctx: _Context, start: int, end: int) -> list[Finding]:
    s = ctx.settings
    if len(ctx.cgm_t) == 0:
        return []
    local = ctx.cgm_t + ctx.cgm_off * 60
    day_idx = local // DAY_S
    tod = local % DAY_S
    night = _in_tod_array(tod, s.overnight_start_s, s.overnight_end_s)
    night &= (ctx.cgm_t >= start) & (ctx.cgm_t < end)
    carb_times = np.array([m.time for m in ctx.meals], dtype=np.int64)
    events_after = np.sort(np.concatenate([ctx.ub_t, ctx.carb_t, carb_times]))
    occ: list[Occurrence] = []
    rises: list[float] = []
    for d in np.unique(day_idx[night]):
        idx = np.flatnonzero(night & (day_idx == d))
        i_nadir = int(idx[np.argmin(ctx.cgm_g[idx])])
        nadir_t, nadir_g = int(ctx.cgm_t[i_nadir]), float(ctx.cgm_g[i_nadir])
        if nadir_g < s.low_mgdl:
            continue  # recovery from a low, not a dawn rise
        offset = int(ctx.cgm_off[i_nadir])
        cutoff = int(d) * DAY_S + s.dawn_prebreakfast_latest_s - offset * 60
        later = events_after[(events_after > nadir_t) & (events_after < cutoff)]
        if len(later):
            cutoff = int(later[0])
        if ctx.tod(cutoff) < s.dawn_prebreakfast_earliest_s:
            continue
        t, g = ctx.cgm_between(cutoff - s.dawn_average_s, cutoff)
        if len(t) == 0 or t[0] <= nadir_t:
            continue
        pre = float(np.mean(g))
        if pre - nadir_g >= s.dawn_rise_min_mgdl and pre > s.high_mgdl:
            rises.append(pre - nadir_g)
            occ.append(
                Occurrence(
                    day_from_index(int(d)),
                    nadir_t,
                    int(t[-1]),
                    pre,
                    [str(Contributing.DAWN_PERIOD)],
                )
            )
    if len({o.day for o in occ}) < s.recurring_min_days:
        return []
    mean_rise = float(np.mean(rises))
    return [
        Finding(
            code=FindingCode.DAWN_RISE,
            title="Glucose rises before breakfast (dawn phenomenon)",
            summary=(
                f"On {len(occ)} days glucose rose by {s.dawn_rise_min_mgdl:.0f} mg/dL or more from "
                f"the overnight low to before breakfast and ended above {s.high_mgdl:.0f} mg/dL "
                f"(mean rise {mean_rise:.0f} mg/dL), with no carbs or bolus in between."
            ),
            severity=Severity.LOW,
            window_local=(_clock(s.overnight_start_s), _clock(s.dawn_prebreakfast_latest_s)),
            occurrences=occ,
        )
    ]


def _stacked_corrections(ctx: _Context, start: int, end: int) -> list[Finding]:
    s = ctx.settings
    occ: list[Occurrence] = []
    for a, b in ctx.stacked:
        if not start <= b < end:
            continue
        following = [h for h in ctx.hypos if b <= h.start <= b + ctx.ait]
        tags = [str(Contributing.STACKED_CORRECTIONS)]
        extreme = None
        if following:
            tags.append(str(Contributing.FOLLOWED_BY_LOW))
            extreme = min(h.extreme for h in following)
        occ.append(Occurrence(ctx.local_day(b), a, b, extreme, tags))
    if len(occ) < s.min_event_occurrences:
        return []
    n_low = sum(str(Contributing.FOLLOWED_BY_LOW) in o.contributing for o in occ)
    return [
        Finding(
            code=FindingCode.STACKED_CORRECTIONS,
            title="Correction boluses stacked within active insulin time",
            summary=(
                f"{_n(len(occ), 'time')} a correction bolus came less than "
                f"{_duration_text(ctx.ait)} (the active insulin time) after another correction; "
                f"{n_low} followed by a low."
            ),
            severity=Severity.MEDIUM if n_low else Severity.LOW,
            window_local=None,
            occurrences=occ,
        )
    ]


def _long_suspends(ctx: _Context, start: int, end: int) -> list[Finding]:
    s = ctx.settings
    occ: list[Occurrence] = []
    for a, b in ctx.suspends:
        if b - a < s.long_suspend_s or not start <= a < end:
            continue
        highs = [h for h in ctx.hypers if a <= h.start <= b + s.after_suspend_s]
        tags = [str(Contributing.FOLLOWED_BY_HIGH)] if highs else []
        extreme = max(h.extreme for h in highs) if highs else None
        occ.append(Occurrence(ctx.local_day(a), a, b, extreme, tags))
    if len(occ) < s.min_event_occurrences:
        return []
    longest = max(o.end - o.start for o in occ)
    n_high = sum(bool(o.contributing) for o in occ)
    return [
        Finding(
            code=FindingCode.LONG_SUSPENDS,
            title=f"Long pump suspends ({_duration_text(s.long_suspend_s)} or more)",
            summary=(
                f"{_n(len(occ), 'suspend')} of {_duration_text(s.long_suspend_s)} or more (longest "
                f"{_duration_text(longest)}); {n_high} followed by a high."
            ),
            severity=Severity.MEDIUM if n_high else Severity.LOW,
            window_local=None,
            occurrences=occ,
        )
    ]


def _overdue_site_changes(ctx: _Context, start: int, end: int) -> list[Finding]:
    s = ctx.settings
    changes = ctx.site_changes[(ctx.site_changes >= start) & (ctx.site_changes < end)]
    occ: list[Occurrence] = []
    for a, b in itertools.pairwise(changes):
        if b - a <= s.overdue_site_change_s:
            continue
        due = int(a) + s.overdue_site_change_s
        highs = [h for h in ctx.hypers if due <= h.start <= b]
        tags = [str(Contributing.HIGHS_WHILE_OVERDUE)] if highs else []
        extreme = max(h.extreme for h in highs) if highs else None
        occ.append(Occurrence(ctx.local_day(int(b)), int(a), int(b), extreme, tags))
    if len(occ) < s.min_event_occurrences:
        return []
    longest = max(o.end - o.start for o in occ) / DAY_S
    limit = s.overdue_site_change_s / DAY_S
    return [
        Finding(
            code=FindingCode.OVERDUE_SITE_CHANGES,
            title="Overdue infusion site changes",
            summary=(
                f"{_n(len(occ), 'site change')} came more than {limit:g} days after the "
                f"previous one (longest {longest:.1f} days)."
            ),
            severity=Severity.MEDIUM if any(o.contributing for o in occ) else Severity.LOW,
            window_local=None,
            occurrences=occ,
        )
    ]


# --- public API -----------------------------------------------------------------------------------


def _context(
    events: PatientEvents,
    start: int,
    end: int,
    episodes: Iterable[EpisodeInput] | None,
    settings: PatternThresholds,
) -> _Context:
    raw = _episodes_from_api(events, start, end, settings) if episodes is None else episodes
    return _Context(events, as_episode_spans(raw), settings)


def episode_summary(
    events: PatientEvents,
    start: int,
    end: int,
    *,
    episodes: Iterable[EpisodeInput] | None = None,
    settings: PatternThresholds = DEFAULT_PATTERN_THRESHOLDS,
) -> list[EpisodeReview]:
    """Every hypo/hyper episode starting in ``[start, end)`` with its possible contributing events.

    Args:
        events: the patient's events (records outside the window are used only as context, e.g.
            a basal change just before the window or the last site change).
        start, end: report window, epoch seconds UTC.
        episodes: consensus episodes as ``(kind, start, end, extreme)`` tuples or objects; None
            computes them from ``events``' CGM with ``analytics.api.episodes``.
        settings: thresholds (see ``analytics.pattern_thresholds``).

    Returns:
        One :class:`EpisodeReview` per (merged) episode, in time order.
    """
    ctx = _context(events, start, end, episodes, settings)
    return [
        EpisodeReview(ep.kind, ctx.review(ep))
        for ep in ctx.hypos + ctx.hypers
        if start <= ep.start < end
    ]


def detect_patterns(
    events: PatientEvents,
    start: int,
    end: int,
    *,
    episodes: Iterable[EpisodeInput] | None = None,
    settings: PatternThresholds = DEFAULT_PATTERN_THRESHOLDS,
) -> list[Finding]:
    """Clinical patterns in the window ``[start, end)`` (epoch s UTC), most urgent first.

    Args and episode handling as in :func:`episode_summary`. Findings are sorted by severity
    (high first), then by number of occurrences.

    Raises:
        ValueError: ``end <= start`` or an episode is malformed.
    """
    if end <= start:
        raise ValueError(f"empty report window [{start}, {end})")
    ctx = _context(events, start, end, episodes, settings)
    hypo_reviews = [ctx.review(h) for h in ctx.hypos if start <= h.start < end]
    hyper_reviews = [ctx.review(h) for h in ctx.hypers if start <= h.start < end]

    findings: list[Finding] = []
    findings += _recurring_findings(ctx, hypo_reviews, low=True)
    findings += _overnight_lows(ctx, hypo_reviews, findings)
    findings += _recurring_findings(ctx, hyper_reviews, low=False)
    findings += _post_meal_highs(ctx, start, end)
    findings += _rebound_highs(ctx, hyper_reviews)
    findings += _missed_meal_bolus(ctx, hyper_reviews)
    findings += _dawn_rise(ctx, start, end)
    findings += _stacked_corrections(ctx, start, end)
    findings += _long_suspends(ctx, start, end)
    findings += _overdue_site_changes(ctx, start, end)
    return sorted(findings, key=lambda f: (_SEVERITY_RANK[f.severity], -f.count, f.code))
