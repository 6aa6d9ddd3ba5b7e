"""CGM metrics for many patients at once: validated arrays in, typed results out.

Input layout (the "ragged" or CSR layout; ``loader.load_cgm`` produces it from the database):

* ``values``      glucose, mg/dL (float; NaN readings are dropped);
* ``times``       epoch seconds UTC (int);
* ``utc_offsets`` local offset of each reading from UTC, minutes (local = time + 60 * offset);
* ``indptr``      int, length n_patients + 1: patient p's readings are ``[indptr[p], indptr[p+1])``.

Within a patient the readings may be unsorted, repeated or NaN: they are sorted by time, NaN
readings dropped, and of several readings with the same time the first (in input order) kept.
Metrics use the readings in the report window ``[start, end)`` (epoch s UTC).

Public functions:

* ``cgm_metrics(values, times, utc_offsets, indptr, *, start, end, preset="standard",
  sample_interval=300) -> list[CgmMetrics]``: everything for the report/roster.
* ``episodes(values, times, utc_offsets, indptr, *, start, end, sample_interval=300)
  -> list[list[Episode]]``: consensus hypo/hyper episodes per patient, in time order per kind.
* ``compute_cohort(...) -> CohortResult``: the same numbers as arrays (no per-patient objects),
  for jobs that process thousands of patients.
* ``prepare(values, times, utc_offsets, indptr) -> CgmArrays``: validation and cleaning only.

``Episode(kind, start, end, duration, extreme, level, extended, utc_offset, n_readings)``:
``kind`` one of ``EpisodeKind`` (``hypo_l1``, ``hypo_l2``, ``hypo_extended``, ``hyper_l1``,
``hyper_l2``, ``hyper_extended``); ``start`` epoch s UTC of its first reading; ``end`` epoch s
UTC = last qualifying reading + ``sample_interval`` (clipped to the window end); ``duration`` =
end - start, s; ``extreme`` nadir (hypo) or peak (hyper), mg/dL; ``level`` 1 or 2 (the consensus
level of its threshold: 70/180 -> 1, 54/250 -> 2); ``utc_offset`` at ``start``, minutes.
Level-2 episodes are also level-1 episodes, and extended ones also level-1 (hypo) or level-2/1
(hyper) episodes: each kind is detected on its own, as the consensus counts them.
Rules and sources: docs/analytics.md.

All glucose results are mg/dL; ``CgmMetrics.in_units(GlucoseUnit.MMOLL)`` and
``Episode.in_units`` convert (18.01559 mg/dL per mmol/L, records.MGDL_PER_MMOLL).
"""

from __future__ import annotations

import contextlib
import enum
import gc
import itertools
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from clinic_portal.analytics import kernels as k
from clinic_portal.analytics.targets import TargetPreset, TargetSpec, target_spec
from clinic_portal.records import MGDL_PER_MMOLL

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Longer than any CGM's cadence; the extended-hyper window (120 min) needs it well below.
MAX_SAMPLE_INTERVAL = 3600
DEFAULT_SAMPLE_INTERVAL = 300  # s: each CGM reading stands for 5 min (Dexcom, Libre 2/3, Guardian)
GMI_MIN_ACTIVE_SECONDS = int(0.7 * 14 * 86_400)  # GMI shown from 70 % of 14 days of wear


class GlucoseUnit(enum.StrEnum):
    MGDL = "mg/dL"
    MMOLL = "mmol/L"


def convert_glucose(value_mgdl: float | FloatArray, unit: GlucoseUnit | str) -> float | FloatArray:
    """A glucose value or array in mg/dL, expressed in ``unit`` (mg/dL or mmol/L)."""
    if GlucoseUnit(unit) is GlucoseUnit.MMOLL:
        return value_mgdl / MGDL_PER_MMOLL
    return value_mgdl


class EpisodeKind(enum.StrEnum):
    HYPO_L1 = "hypo_l1"
    HYPO_L2 = "hypo_l2"
    HYPO_EXTENDED = "hypo_extended"
    HYPER_L1 = "hyper_l1"
    HYPER_L2 = "hyper_l2"
    HYPER_EXTENDED = "hyper_extended"


# Kernel kind index -> (kind, level, extended); the order is kernels.HYPO_L1 .. HYPER_EXTENDED.
_KINDS: tuple[tuple[EpisodeKind, int, bool], ...] = (
    (EpisodeKind.HYPO_L1, 1, False),
    (EpisodeKind.HYPO_L2, 2, False),
    (EpisodeKind.HYPO_EXTENDED, 1, True),
    (EpisodeKind.HYPER_L1, 1, False),
    (EpisodeKind.HYPER_L2, 2, False),
    (EpisodeKind.HYPER_EXTENDED, 2, True),
)


@dataclass(frozen=True, slots=True)
class Episode:
    """One hypo- or hyperglycaemic episode (2023 international consensus); see module doc."""

    kind: EpisodeKind
    start: int  # epoch s UTC
    end: int  # epoch s UTC
    duration: int  # s
    extreme: float  # nadir (hypo) or peak (hyper), mg/dL unless converted with in_units
    level: int
    extended: bool
    utc_offset: int  # minutes, at start
    n_readings: int  # readings from the first to the last qualifying one
    unit: GlucoseUnit = GlucoseUnit.MGDL

    @property
    def is_hypo(self) -> bool:
        return self.kind.startswith("hypo")

    def in_units(self, unit: GlucoseUnit | str) -> Episode:
        """This episode with ``extreme`` in ``unit``."""
        if GlucoseUnit(unit) is self.unit:
            return self
        mgdl = self.extreme * MGDL_PER_MMOLL if self.unit is GlucoseUnit.MMOLL else self.extreme
        return replace(self, extreme=float(convert_glucose(mgdl, unit)), unit=GlucoseUnit(unit))


@dataclass(frozen=True, slots=True)
class CgmArrays:
    """The cleaned ragged layout the kernels take (see module doc); build with :func:`prepare`."""

    values: FloatArray
    times: IntArray
    utc_offsets: IntArray
    indptr: IntArray

    @property
    def n_patients(self) -> int:
        return int(self.indptr.shape[0] - 1)


@dataclass(frozen=True, slots=True)
class AgpProfile:
    """Ambulatory glucose profile of one patient (local time of day).

    ``percentiles`` (5, 288): 5th/25th/50th/75th/95th percentile (R type 7) of the readings in
    each 5-min slot of the local day, NaN for an empty slot; ``days`` (288): distinct local days
    behind each slot; ``hourly`` (5, 24): the same percentiles of each local hour's pooled
    readings, smoothed 1-4-1 across hours (Tidepool's AGP chart series), NaN when empty.
    """

    percentiles: FloatArray
    days: npt.NDArray[np.int32]
    hourly: FloatArray
    unit: GlucoseUnit = GlucoseUnit.MGDL

    @property
    def p05(self) -> FloatArray:
        return self.percentiles[0]

    @property
    def p25(self) -> FloatArray:
        return self.percentiles[1]

    @property
    def p50(self) -> FloatArray:
        return self.percentiles[2]

    @property
    def p75(self) -> FloatArray:
        return self.percentiles[3]

    @property
    def p95(self) -> FloatArray:
        return self.percentiles[4]


@dataclass(frozen=True, slots=True)
class DailyProfiles:
    """Per local day with readings: day number, readings, mean and % 70-180 mg/dL.

    ``days[i]`` counts local days since 1970-01-01 (``dates()`` gives ``datetime.date``s);
    ``trace(i)`` gives that day's readings for the daily chart.
    """

    days: IntArray
    n_readings: IntArray
    mean: FloatArray  # mg/dL (or ``unit``)
    pct_70_180: FloatArray
    first: IntArray  # index range of the day's readings in ``data``
    last: IntArray
    data: CgmArrays
    unit: GlucoseUnit = GlucoseUnit.MGDL

    def dates(self) -> list[date]:
        """The local calendar dates of ``days``."""
        epoch = date(1970, 1, 1)
        return [epoch + timedelta(days=int(d)) for d in self.days]

    def trace(self, i: int) -> tuple[IntArray, FloatArray]:
        """(local times as epoch s, glucose in ``unit``) of day ``i``'s readings, time order."""
        sl = slice(int(self.first[i]), int(self.last[i]) + 1)
        local = self.data.times[sl] + 60 * self.data.utc_offsets[sl]
        keep = local // 86_400 == self.days[i]  # a clock change can interleave two days
        values = self.data.values[sl][keep]
        return local[keep], np.asarray(convert_glucose(values, self.unit))


@dataclass(frozen=True, slots=True)
class CgmMetrics:
    """All CGM metrics of one patient over the window ``[start, end)``.

    Glucose fields are in ``unit`` (mg/dL unless converted with :meth:`in_units`); percentages
    are % of readings in the window (NaN without readings). Definitions: docs/analytics.md.
    """

    patient: int  # position in the input's indptr
    start: int
    end: int
    preset: TargetPreset
    n_readings: int
    mean: float
    sd: float  # sample SD, ddof = 1
    cv: float  # %
    gmi: float  # %, Bergenstal 2018
    gmi_sufficient: bool  # >= 70 % of 14 days of wear, when GMI is shown (Tidepool rule)
    pct_below_54: float
    pct_54_69: float
    pct_70_180: float
    pct_181_250: float
    pct_above_250: float
    pct_below_target: float  # the preset's target range (63-140 in pregnancy)
    pct_in_target: float
    pct_above_target: float
    active_percent: float  # % of the window's 5-min slots holding a reading
    days_with_data: int  # local days with at least one reading
    gri: float
    gri_zone: str | None  # "A".."E"
    gri_hypo: float
    gri_hyper: float
    lbgi: float
    hbgi: float
    mage: float
    hypo_l1_episodes: int
    hypo_l2_episodes: int
    hypo_extended_episodes: int
    hyper_l1_episodes: int
    hyper_l2_episodes: int
    hyper_extended_episodes: int
    episodes: tuple[Episode, ...]
    agp: AgpProfile
    daily: DailyProfiles
    target: TargetSpec = field(repr=False)
    unit: GlucoseUnit = GlucoseUnit.MGDL

    @property
    def pct_below_70(self) -> float:
        return self.pct_below_54 + self.pct_54_69

    @property
    def pct_above_180(self) -> float:
        return self.pct_181_250 + self.pct_above_250

    @property
    def gmi_mmol_mol(self) -> float:
        """GMI in mmol/mol (IFCC): 12.71 + 4.70587 x mean mmol/L (Bergenstal 2018)."""
        mean_mgdl = self.mean * MGDL_PER_MMOLL if self.unit is GlucoseUnit.MMOLL else self.mean
        return 12.71 + 4.70587 * mean_mgdl / MGDL_PER_MMOLL

    def goals(self) -> list[tuple[str, bool]]:
        """(label, met) for each goal of the patient's preset, in report order."""
        mean_mgdl = self.mean * MGDL_PER_MMOLL if self.unit is GlucoseUnit.MMOLL else self.mean
        out = []
        for goal in self.target.goals:
            value = mean_mgdl if goal.metric == "mean" else getattr(self, goal.metric)
            out.append((goal.label, goal.met(value)))
        return out

    def in_units(self, unit: GlucoseUnit | str) -> CgmMetrics:
        """A copy with every glucose-valued field (mean, SD, MAGE, AGP, daily, episodes) in unit."""
        unit = GlucoseUnit(unit)
        if unit is self.unit:
            return self
        factor = MGDL_PER_MMOLL if unit is GlucoseUnit.MGDL else 1.0 / MGDL_PER_MMOLL
        return replace(
            self,
            mean=self.mean * factor,
            sd=self.sd * factor,
            mage=self.mage * factor,
            episodes=tuple(e.in_units(unit) for e in self.episodes),
            agp=replace(
                self.agp,
                percentiles=self.agp.percentiles * factor,
                hourly=self.agp.hourly * factor,
                unit=unit,
            ),
            daily=replace(self.daily, mean=self.daily.mean * factor, unit=unit),
            unit=unit,
        )


#: The per-patient scalar metrics of :class:`CgmMetrics`, in report order: the one list the
#: summary cache, the command line and exports take their keys from (a test keeps it equal to
#: the dataclass's scalar fields).
SCALAR_METRICS: tuple[str, ...] = (
    "n_readings",
    "mean",
    "sd",
    "cv",
    "gmi",
    "gmi_sufficient",
    "pct_below_54",
    "pct_54_69",
    "pct_70_180",
    "pct_181_250",
    "pct_above_250",
    "pct_below_target",
    "pct_in_target",
    "pct_above_target",
    "active_percent",
    "days_with_data",
    "gri",
    "gri_zone",
    "gri_hypo",
    "gri_hyper",
    "lbgi",
    "hbgi",
    "mage",
    "hypo_l1_episodes",
    "hypo_l2_episodes",
    "hypo_extended_episodes",
    "hyper_l1_episodes",
    "hyper_l2_episodes",
    "hyper_extended_episodes",
)


@dataclass(frozen=True, slots=True)
class CohortResult:
    """Kernel outputs for a cohort, one row per patient (columns: ``kernels.I_*``/``F_*``)."""

    data: CgmArrays
    start: int
    end: int
    preset: TargetPreset
    sample_interval: int
    istats: IntArray  # (n, kernels.N_ICOLS)
    fstats: FloatArray  # (n, kernels.N_FCOLS)
    agp: FloatArray  # (n, 5, 288)
    agp_days: npt.NDArray[np.int32]  # (n, 288)
    hourly: FloatArray  # (n, 5, 24)
    day_base: int  # local day number of day column 0
    day_count: IntArray  # (n, n_days)
    day_sum: FloatArray
    day_in_range: IntArray
    day_first: IntArray
    day_last: IntArray
    episode_rows: IntArray  # (m, kernels.N_ECOLS), patient-major
    episode_extreme: FloatArray  # (m,)


def _as_int64(name: str, a: npt.ArrayLike) -> IntArray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite integers")
        if arr.dtype.kind == "f" and arr.size and np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must be whole numbers")
        if arr.dtype.kind not in "fb" and arr.size:
            raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def prepare(
    values: npt.ArrayLike,
    times: npt.ArrayLike,
    utc_offsets: npt.ArrayLike,
    indptr: npt.ArrayLike,
) -> CgmArrays:
    """Validate and clean the ragged layout (see module doc).

    Returns arrays sorted by time within each patient, NaN readings dropped, and of readings
    sharing a time the first one kept. Already clean input is used without copying.

    Raises:
        ValueError: mismatched lengths, a malformed ``indptr``, a glucose value that is
            infinite or not positive, or an offset outside UTC-12:00..UTC+14:00.
    """
    v = np.ascontiguousarray(values, dtype=np.float64)
    t = _as_int64("times", times)
    o = _as_int64("utc_offsets", utc_offsets)
    ip = _as_int64("indptr", indptr)
    if v.ndim != 1 or t.shape != v.shape or o.shape != v.shape:
        raise ValueError("values, times and utc_offsets must be 1-D arrays of the same length")
    if ip.ndim != 1 or ip.shape[0] < 1 or ip[0] != 0 or ip[-1] != v.shape[0]:
        raise ValueError("indptr must start at 0 and end at len(values)")
    if np.any(np.diff(ip) < 0):
        raise ValueError("indptr must be non-decreasing")
    finite = v[~np.isnan(v)]
    if finite.size and (not np.all(np.isfinite(finite)) or finite.min() <= 0):
        raise ValueError("glucose values must be positive mg/dL (NaN marks a missing reading)")
    if o.size and (o.min() < k.MIN_OFFSET_SECONDS // 60 or o.max() > k.MAX_OFFSET_SECONDS // 60):
        raise ValueError("utc_offsets must be minutes within -720..840")
    if k.is_clean(v, t, ip):
        return CgmArrays(v, t, o, ip)
    patient = np.repeat(np.arange(ip.shape[0] - 1), np.diff(ip))
    keep = ~np.isnan(v)
    v, t, o, patient = v[keep], t[keep], o[keep], patient[keep]
    order = np.lexsort((t, patient))  # stable: equal times keep their input order
    v, t, o, patient = v[order], t[order], o[order], patient[order]
    first = np.ones(v.shape[0], dtype=bool)
    first[1:] = (t[1:] != t[:-1]) | (patient[1:] != patient[:-1])
    v, t, o, patient = v[first], t[first], o[first], patient[first]
    counts = np.bincount(patient, minlength=ip.shape[0] - 1)
    new_ip = np.zeros(ip.shape[0], dtype=np.int64)
    np.cumsum(counts, out=new_ip[1:])
    return CgmArrays(
        np.ascontiguousarray(v), np.ascontiguousarray(t), np.ascontiguousarray(o), new_ip
    )


_RISK_LOW, _RISK_HIGH = k.risk_table(1024)


class _OutputBuffers:
    """The kernels' output arrays, reusing those of a :class:`CohortResult` that was dropped.

    A large cohort's outputs are big (about 15 KB per patient, mostly the AGP), and writing
    fresh memory costs a page fault per page: 50-250 ms per call at 10,000 patients on the
    benchmark machine, as much as a third of the computation. The pool keeps the last array
    of each role and hands out views of it; an array is reused only while nothing but the
    pool refers to it (any view, including those in a live result or its AgpProfiles, keeps
    a reference to it), so a result that is still in use is never overwritten. The memory of
    one cohort's outputs stays allocated between calls.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrays: dict[str, npt.NDArray[np.generic]] = {}

    def get(
        self, role: str, shape: tuple[int, ...], dtype: type, zero: bool = False
    ) -> npt.NDArray[Any]:
        """An uninitialised (or zeroed) array of ``shape`` and ``dtype`` for ``role``."""
        with self._lock:
            array = self._arrays.get(role)
            # Free when referenced only by the dict: 3 = the dict, ``array`` and getrefcount's
            # own argument.
            if (
                array is None
                or array.shape != shape
                or array.dtype != dtype
                or sys.getrefcount(array) > 3
            ):
                array = np.empty(shape, dtype=dtype)
                self._arrays[role] = array
            view = array[...]
        if zero:
            view.fill(0)
        return view


_OUTPUTS = _OutputBuffers()
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _workers() -> int:
    return max(1, int(os.environ.get("CLINIC_PORTAL_ANALYTICS_THREADS", os.cpu_count() or 1)))


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_workers(), thread_name_prefix="analytics")
        return _POOL


def _chunks(indptr: IntArray, n_chunks: int) -> list[tuple[int, int]]:
    """Contiguous patient ranges with about equal numbers of readings."""
    n = indptr.shape[0] - 1
    if n == 0:
        return []
    cuts = np.searchsorted(indptr, np.linspace(0, indptr[-1], n_chunks + 1)[1:-1])
    bounds = np.unique(np.concatenate(([0], np.clip(cuts, 0, n), [n])))
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def _check_window(start: int, end: int) -> None:
    if int(start) != start or int(end) != end or end <= start:
        raise ValueError("the window needs integer epoch seconds with start < end")


def _fast_arrays(
    values: npt.ArrayLike,
    times: npt.ArrayLike,
    utc_offsets: npt.ArrayLike,
    indptr: npt.ArrayLike,
) -> CgmArrays | None:
    """The input as a :class:`CgmArrays` without a copy when it has the kernels' dtypes.

    Only the cheap structural checks are done here; the kernels check the readings themselves
    (``validate=True``) while they stream through them, and anything unusual (NaN, unsorted or
    repeated times, invalid values) is handed to :func:`prepare`. None: use :func:`prepare`.
    """
    arrays = [np.asarray(a) for a in (values, times, utc_offsets, indptr)]
    v, t, o, ip = arrays
    if v.dtype != np.float64 or any(a.dtype != np.int64 for a in (t, o, ip)):
        return None
    if any(a.ndim != 1 or not a.flags.c_contiguous for a in arrays):
        return None
    if t.shape != v.shape or o.shape != v.shape or ip.shape[0] < 1:
        return None
    if ip[0] != 0 or ip[-1] != v.shape[0] or np.any(ip[1:] < ip[:-1]):
        return None
    return CgmArrays(v, t, o, ip)


def compute_cohort(
    values: npt.ArrayLike,
    times: npt.ArrayLike,
    utc_offsets: npt.ArrayLike,
    indptr: npt.ArrayLike,
    *,
    start: int,
    end: int,
    preset: TargetPreset | str = TargetPreset.STANDARD,
    sample_interval: int = DEFAULT_SAMPLE_INTERVAL,
) -> CohortResult:
    """Run the kernels over all patients; the array form behind :func:`cgm_metrics`.

    Args:
        values, times, utc_offsets, indptr: the ragged layout (module doc), or a
            :class:`CgmArrays` from :func:`prepare` passed as ``values`` with the rest None.
        start, end: report window, epoch s UTC, ``[start, end)``.
        preset: glycemic target preset (targets.py) for the target-range percentages.
        sample_interval: s each reading stands for in episode durations (300 for 5-min CGMs).

    Raises:
        ValueError: invalid input (see :func:`prepare`), window or sample interval.
    """
    _check_window(start, end)
    if not 0 < sample_interval <= MAX_SAMPLE_INTERVAL:
        raise ValueError(
            f"sample_interval must be 1..{MAX_SAMPLE_INTERVAL} seconds (the time one CGM reading "
            "stands for)"
        )
    spec = target_spec(preset)
    start, end = int(start), int(end)
    if isinstance(values, CgmArrays):
        result = _run_kernels(values, start, end, spec, int(sample_interval), validate=False)
    else:
        fast = _fast_arrays(values, times, utc_offsets, indptr)
        result = None
        if fast is not None:
            result = _run_kernels(fast, start, end, spec, int(sample_interval), validate=True)
        if result is None:
            data = prepare(values, times, utc_offsets, indptr)
            result = _run_kernels(data, start, end, spec, int(sample_interval), validate=False)
    assert result is not None  # validate=False always completes
    return result


def _run_kernels(
    data: CgmArrays, start: int, end: int, spec: TargetSpec, sample_interval: int, validate: bool
) -> CohortResult | None:
    """The kernels over ``data`` on the thread pool; None if ``validate`` found unclean input."""
    n = data.n_patients
    day_base = (start + k.MIN_OFFSET_SECONDS) // k.DAY_SECONDS
    n_days = (end - 1 + k.MAX_OFFSET_SECONDS) // k.DAY_SECONDS - day_base + 1
    out = _OUTPUTS.get
    istats = out("istats", (n, k.N_ICOLS), np.int64)
    fstats = out("fstats", (n, k.N_FCOLS), np.float64)
    agp = out("agp", (n, 5, k.N_SLOTS), np.float64)
    agp_days = out("agp_days", (n, k.N_SLOTS), np.int32)
    hourly = out("hourly", (n, 5, k.N_HOURS), np.float64)
    day_count = out("day_count", (n, n_days), np.int64, zero=True)
    day_sum = out("day_sum", (n, n_days), np.float64, zero=True)
    day_in_range = out("day_in_range", (n, n_days), np.int64, zero=True)
    day_first = out("day_first", (n, n_days), np.int64, zero=True)
    day_last = out("day_last", (n, n_days), np.int64, zero=True)

    def run(chunk: tuple[int, int]) -> tuple[IntArray, FloatArray, int, int]:
        return k.cohort_chunk(
            data.values,
            data.times,
            data.utc_offsets,
            data.indptr,
            chunk[0],
            chunk[1],
            start,
            end,
            sample_interval,
            spec.target_low,
            spec.target_high,
            _RISK_LOW,
            _RISK_HIGH,
            istats,
            fstats,
            agp,
            agp_days,
            hourly,
            day_count,
            day_sum,
            day_in_range,
            day_first,
            day_last,
            validate,
        )

    workers = _workers()
    # Several chunks per thread, of about equal readings, so a slow chunk does not leave a core
    # idle at the end.
    chunks = _chunks(data.indptr, min(workers * 8, n) if workers > 1 else 1)
    parts = list(_pool().map(run, chunks)) if len(chunks) > 1 else [run(c) for c in chunks]
    if any(part[3] >= 0 for part in parts):
        return None
    # Each chunk returns its own episode buffer; they are merged here in patient order.
    rows = [part[0][: part[2]] for part in parts]
    extremes = [part[1][: part[2]] for part in parts]
    return CohortResult(
        data=data,
        start=start,
        end=end,
        preset=spec.preset,
        sample_interval=sample_interval,
        istats=istats,
        fstats=fstats,
        agp=agp,
        agp_days=agp_days,
        hourly=hourly,
        day_base=int(day_base),
        day_count=day_count,
        day_sum=day_sum,
        day_in_range=day_in_range,
        day_first=day_first,
        day_last=day_last,
        episode_rows=np.concatenate(rows) if rows else np.empty((0, k.N_ECOLS), np.int64),
        episode_extreme=np.concatenate(extremes) if extremes else np.empty(0),
    )


def gri_zone(gri: float) -> str | None:
    """GRI zone A (0-20), B (21-40), C (41-60), D (61-80), E (81-100) (Klonoff et al. 2022).

    The published zones are on whole GRI points; a fractional GRI belongs to the lower zone up to
    and including the boundary (20.0 is A, 20.1 is B).
    """
    if gri != gri:
        return None
    for limit, zone in ((20.0, "A"), (40.0, "B"), (60.0, "C"), (80.0, "D")):
        if gri <= limit:
            return zone
    return "E"


# Episodes are built in bulk (hundreds of thousands for a large clinic), so the frozen
# dataclass's generated __init__ (one object.__setattr__ per field) is bypassed: the slots are
# filled through their descriptors, which gives the same object.
(
    _SET_KIND,
    _SET_START,
    _SET_END,
    _SET_DURATION,
    _SET_EXTREME,
    _SET_LEVEL,
    _SET_EXTENDED,
    _SET_OFFSET,
    _SET_N_READINGS,
    _SET_UNIT,
) = (getattr(Episode, f.name).__set__ for f in fields(Episode))


@contextlib.contextmanager
def _bulk_objects() -> Iterator[None]:
    """Pause the cyclic garbage collector while many acyclic objects are created.

    Building 10,000 patients' results creates over half a million objects; each batch of 700
    new container objects triggers a collection that walks the young objects, and the older
    generations are walked again and again: 60 % of the build time. Nothing built here forms
    a reference cycle, so pausing the collector frees nothing later than it would otherwise.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _episode_lists(result: CohortResult) -> list[list[Episode]]:
    out: list[list[Episode]] = [[] for _ in range(result.data.n_patients)]
    rows = result.episode_rows
    if rows.shape[0] == 0:
        return out
    # Columns as Python lists in one go (indexing numpy scalars per episode is slow).
    start = rows[:, k.E_START]
    end = rows[:, k.E_END]
    columns = zip(
        rows[:, k.E_PATIENT].tolist(),
        rows[:, k.E_KIND].tolist(),
        start.tolist(),
        end.tolist(),
        (end - start).tolist(),
        result.episode_extreme.tolist(),
        result.data.utc_offsets[rows[:, k.E_FIRST]].tolist(),
        (rows[:, k.E_LAST] - rows[:, k.E_FIRST] + 1).tolist(),
        strict=True,
    )
    mgdl = GlucoseUnit.MGDL
    new = object.__new__
    for patient, kind_index, t0, t1, duration, extreme, offset, n_readings in columns:
        kind, level, extended = _KINDS[kind_index]
        episode = new(Episode)
        _SET_KIND(episode, kind)
        _SET_START(episode, t0)
        _SET_END(episode, t1)
        _SET_DURATION(episode, duration)
        _SET_EXTREME(episode, extreme)
        _SET_LEVEL(episode, level)
        _SET_EXTENDED(episode, extended)
        _SET_OFFSET(episode, offset)
        _SET_N_READINGS(episode, n_readings)
        _SET_UNIT(episode, mgdl)
        out[patient].append(episode)
    return out


def episodes(
    values: npt.ArrayLike,
    times: npt.ArrayLike,
    utc_offsets: npt.ArrayLike,
    indptr: npt.ArrayLike,
    *,
    start: int,
    end: int,
    sample_interval: int = DEFAULT_SAMPLE_INTERVAL,
) -> list[list[Episode]]:
    """Consensus hypo/hyper episodes of each patient within ``[start, end)`` (module doc).

    Returns one list per patient (indptr order), in the order the episodes close: by the
    reading that ends them (the first reading after a 15-min recovery or a > 45-min gap, or the
    window end for episodes still open), kinds in ``EpisodeKind`` order when several close at
    the same reading. Kinds are interleaved: a level-2 episode may come before or after the
    level-1 episode that contains it. Times are epoch s UTC, extremes mg/dL. Raises ValueError on
    invalid input.
    """
    result = compute_cohort(
        values, times, utc_offsets, indptr, start=start, end=end, sample_interval=sample_interval
    )
    with _bulk_objects():
        return _episode_lists(result)


def _pct(count: int, n: int) -> float:
    return 100.0 * count / n if n else float("nan")


def metrics_from_cohort(result: CohortResult) -> list[CgmMetrics]:
    """Per-patient :class:`CgmMetrics` built from a :class:`CohortResult`."""
    with _bulk_objects():
        return _metrics_from_cohort(result)


def _metrics_from_cohort(result: CohortResult) -> list[CgmMetrics]:
    spec = target_spec(result.preset)
    eps = _episode_lists(result)
    possible = -(-(result.end - result.start) // k.SLOT_SECONDS)
    n_patients = result.data.n_patients
    # Daily profiles: the days with readings of all patients at once (patient-major), each
    # patient's DailyProfiles holding views of its rows.
    patient_of, day_col = np.nonzero(result.day_count > 0)
    day_counts = result.day_count[patient_of, day_col]
    day_mean = result.day_sum[patient_of, day_col] / day_counts
    day_pct = 100.0 * result.day_in_range[patient_of, day_col] / day_counts
    day_number = day_col + result.day_base
    day_first = result.day_first[patient_of, day_col]
    day_last = result.day_last[patient_of, day_col]
    bounds = np.searchsorted(patient_of, np.arange(n_patients + 1)).tolist()
    nan = float("nan")
    out = []
    for p, ist, fst in zip(
        range(n_patients), result.istats.tolist(), result.fstats.tolist(), strict=True
    ):
        n = ist[k.I_N]
        mean, sd = fst[k.F_MEAN], fst[k.F_SD]
        vlow, low = _pct(ist[k.I_LT54], n), _pct(ist[k.I_54_69], n)
        high, vhigh = _pct(ist[k.I_181_250], n), _pct(ist[k.I_GT250], n)
        # GRI (Klonoff 2022): hypo = VLow + 0.8 Low, hyper = VHigh + 0.5 High,
        # GRI = 3 hypo + 1.6 hyper, capped at 100.
        gri_hypo = vlow + 0.8 * low
        gri_hyper = vhigh + 0.5 * high
        gri = min(3.0 * gri_hypo + 1.6 * gri_hyper, 100.0) if n else nan
        rows = slice(bounds[p], bounds[p + 1])
        daily = DailyProfiles(
            days=day_number[rows],
            n_readings=day_counts[rows],
            mean=day_mean[rows],
            pct_70_180=day_pct[rows],
            first=day_first[rows],
            last=day_last[rows],
            data=result.data,
        )
        out.append(
            CgmMetrics(
                patient=p,
                start=result.start,
                end=result.end,
                preset=result.preset,
                n_readings=n,
                mean=mean,
                sd=sd,
                cv=100.0 * sd / mean if n > 1 else nan,
                gmi=3.31 + 0.02392 * mean,  # Bergenstal 2018; NaN mean gives NaN
                gmi_sufficient=ist[k.I_ACTIVE_SLOTS] * k.SLOT_SECONDS >= GMI_MIN_ACTIVE_SECONDS,
                pct_below_54=vlow,
                pct_54_69=low,
                pct_70_180=_pct(ist[k.I_70_180], n),
                pct_181_250=high,
                pct_above_250=vhigh,
                pct_below_target=_pct(ist[k.I_BELOW_TARGET], n),
                pct_in_target=_pct(ist[k.I_IN_TARGET], n),
                pct_above_target=_pct(ist[k.I_ABOVE_TARGET], n),
                active_percent=100.0 * ist[k.I_ACTIVE_SLOTS] / possible,
                days_with_data=ist[k.I_DAYS],
                gri=gri,
                gri_zone=gri_zone(gri),
                gri_hypo=gri_hypo,
                gri_hyper=gri_hyper,
                lbgi=fst[k.F_LBGI],
                hbgi=fst[k.F_HBGI],
                mage=fst[k.F_MAGE],
                hypo_l1_episodes=ist[k.I_EPISODES + k.HYPO_L1],
                hypo_l2_episodes=ist[k.I_EPISODES + k.HYPO_L2],
                hypo_extended_episodes=ist[k.I_EPISODES + k.HYPO_EXTENDED],
                hyper_l1_episodes=ist[k.I_EPISODES + k.HYPER_L1],
                hyper_l2_episodes=ist[k.I_EPISODES + k.HYPER_L2],
                hyper_extended_episodes=ist[k.I_EPISODES + k.HYPER_EXTENDED],
                episodes=tuple(eps[p]),
                agp=AgpProfile(result.agp[p], result.agp_days[p], result.hourly[p]),
                daily=daily,
                target=spec,
            )
        )
    return out


def cgm_metrics(
    values: npt.ArrayLike,
    times: npt.ArrayLike,
    utc_offsets: npt.ArrayLike,
    indptr: npt.ArrayLike,
    *,
    start: int,
    end: int,
    preset: TargetPreset | str = TargetPreset.STANDARD,
    sample_interval: int = DEFAULT_SAMPLE_INTERVAL,
) -> list[CgmMetrics]:
    """All CGM metrics of every patient over ``[start, end)`` (epoch s UTC), mg/dL.

    See :func:`compute_cohort` for the arguments; one :class:`CgmMetrics` per patient in
    indptr order. Raises ValueError on invalid input.
    """
    return metrics_from_cohort(
        compute_cohort(
            values,
            times,
            utc_offsets,
            indptr,
            start=start,
            end=end,
            preset=preset,
            sample_interval=sample_interval,
        )
    )


def patient_indptr(patient_ids: Sequence[object]) -> tuple[list[object], IntArray]:
    """Distinct ids in order of first appearance and the indptr of rows grouped by them.

    Helper for long tables: rows must already be grouped (all of a patient's rows together).

    Raises:
        ValueError: a patient's rows are not contiguous.
    """
    ids: list[object] = []
    bounds = [0]
    seen: set[object] = set()
    for i, pid in enumerate(patient_ids):
        if not ids or pid != ids[-1]:
            if pid in seen:
                raise ValueError(f"rows of patient {pid!r} are not contiguous")
            seen.add(pid)
            if ids:
                bounds.append(i)
            ids.append(pid)
    bounds.append(len(patient_ids))
    return ids, np.asarray(bounds if ids else [0], dtype=np.int64)
