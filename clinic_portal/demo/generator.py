"""Deterministic demo population: plausible CGM, meter, pen and pump records for a clinic.

Pure functions, records out (``clinic_portal.records``); nothing here touches the database.
The same arguments always give the same records: every random draw comes from a
``numpy.random.Generator(PCG64)`` seeded from ``(seed, patient index, stream)``, and the clock is
the ``end`` argument, never the wall clock.

The glucose model is deliberately simple (see docs/demo-data.md). On a 5-minute grid,

    glucose = base + dawn + slow drift + fast noise + site-age rise
              + decay * (carbs * CSF * absorption  -  insulin * ISF * insulin action
                         + exercise uptake)

where ``decay`` is a first-order return towards ``base`` (time constant 4 h) that stands in for
everything the model leaves out. The kernels are normalised so that 1 U lowers glucose by ISF
mg/dL at its deepest and ``g`` grams raise it by ``g * ISF / CR`` mg/dL at their highest.
Decisions that depend on glucose (bolus calculator corrections, hypo treatment, automated basal
and automatic corrections) are taken in time order on the glucose computed so far, so a bolus
calculator's BG, a low and its treatment, and an automated basal rate all agree with the trace.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from clinic_portal.demo import people
from clinic_portal.records import (
    AnyRecord,
    BasalKind,
    BasalSegment,
    Bolus,
    BolusKind,
    BolusSource,
    CarbEntry,
    CgmReading,
    CgmSettings,
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    DeviceKind,
    GlucoseFlag,
    MeterReading,
    MeterSource,
    PumpSettings,
    RecordBatch,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CLINIC_TIME_ZONE = "Europe/Berlin"
OTHER_TIME_ZONES = ("America/New_York", "Europe/London", "Europe/Istanbul", "Asia/Kolkata")

ARCHETYPES: tuple[str, ...] = (
    "well_controlled",
    "overnight_lows",
    "post_meal_highs",
    "high_variability",
    "poor_wear",
    "no_recent_data",
    "mdi",
    "high_a1c",
    "pregnancy",
)

# Reference date for ages when generate_people is called without one (never the wall clock).
DEFAULT_AS_OF = date(2025, 1, 1)

_STEP = 300  # s: CGM cadence and simulation grid
_DAY = 86_400
_HOUR = 3_600
_BINS_PER_DAY = _DAY // _STEP
_KERNEL_BINS = 288  # 24 h of effect per input
_TAU_MIN = 240.0  # min: return towards the patient's base level
_SENSOR_LOW, _SENSOR_HIGH = 40, 400  # mg/dL: Dexcom G7, Libre 3 and Guardian 4 report "Low"/"High"
_METER_LOW, _METER_HIGH = 20, 600  # mg/dL: Contour Next One measuring range
_LOW, _VERY_LOW, _VERY_HIGH = 70, 54, 250  # consensus thresholds (Battelino 2019)
_DEMO_SOURCE = "demo"
# Automation (a proportional controller, not Medtronic's algorithm): basal = need * (1 +
# (predicted - target) / _AUTO_GAIN); auto corrections give this fraction of the correction dose.
_AUTO_GAIN = 120.0  # mg/dL
_AUTO_CORRECTION = 0.3


# --------------------------------------------------------------------------------------------
# Response kernels (per 5-minute bin, lag 0 first; lag 0 is always 0 so an input never changes
# the glucose of the bin it is decided in).


def _gamma_absorption(peak_min: float) -> FloatArray:
    """Carbohydrate appearance rate, gamma shape t*exp(-t/peak), summing to 1."""
    t = np.arange(_KERNEL_BINS) * 5.0
    rate = t * np.exp(-t / peak_min)
    return rate / rate.sum()


def _insulin_activity(peak_min: float = 75.0, duration_min: float = 300.0) -> FloatArray:
    """Rapid-acting insulin activity, summing to 1.

    The exponential curve used by OpenAPS oref0 and LoopKit (peak 75 min for rapid-acting
    analogues, duration of insulin action 5 h), re-derived here: activity ~ t (1 - t/td) e^(-t/tau)
    with tau chosen so the peak falls at ``peak_min``.
    """
    t = np.arange(_KERNEL_BINS) * 5.0
    tau = peak_min * (1 - peak_min / duration_min) / (1 - 2 * peak_min / duration_min)
    act = np.where(t < duration_min, t * (1 - t / duration_min) * np.exp(-t / tau), 0.0)
    return act / act.sum()


_DECAY = np.exp(-np.arange(_KERNEL_BINS) * 5.0 / _TAU_MIN)


_ACTIVITY = _insulin_activity()
# Every kernel is scaled by the same factor, chosen so that 1 U of insulin lowers glucose by
# exactly ISF at its deepest. A common factor keeps carbohydrate and insulin kernels of equal
# area, so a bolus that matches its meal is neutral over the day.
_SCALE = 1.0 / float(np.convolve(_ACTIVITY, _DECAY)[:_KERNEL_BINS].max())


def _glucose_kernel(rate: FloatArray) -> FloatArray:
    """Glucose response (fraction of ISF or CSF) to a unit input with appearance ``rate``."""
    return np.convolve(rate, _DECAY)[:_KERNEL_BINS] * _SCALE


_IOB_CURVE = np.clip(1.0 - np.cumsum(_ACTIVITY), 0.0, 1.0)[:61]  # insulin on board, 5 h
_K_INSULIN = _glucose_kernel(_ACTIVITY)
_K_INSULIN_BLOCK = np.convolve(_K_INSULIN, np.full(6, 1 / 6))[:_KERNEL_BINS]  # 30 min spread
_K_CARBS = {
    "fast": _glucose_kernel(_gamma_absorption(20.0)),  # glucose tablets, juice
    "meal": _glucose_kernel(_gamma_absorption(45.0)),
    "slow": _glucose_kernel(_gamma_absorption(100.0)),  # high-fat dinner (pizza effect)
}
_K_DIRECT = np.concatenate(([0.0], _DECAY[:-1]))  # a glucose rate in mg/dL per bin


def _add_effect(trace: FloatArray, start: int, amount: float, kernel: FloatArray) -> None:
    """Add ``amount * kernel`` to ``trace`` from bin ``start`` on (in place)."""
    if start >= trace.size or amount == 0.0:
        return
    start = max(start, 0)
    stop = min(trace.size, start + kernel.size)
    trace[start:stop] += amount * kernel[: stop - start]


def _filtered_noise(rng: np.random.Generator, n: int, sd: float, corr_min: float) -> FloatArray:
    """Stationary AR(1)-like noise with SD ``sd`` and correlation time ``corr_min`` minutes.

    An AR(1) process is white noise through an exponential filter; the filter is truncated at
    five correlation times so it can run as one vectorised convolution.
    """
    phi = math.exp(-5.0 / corr_min)
    taps = max(2, int(5 * corr_min / 5.0))
    kernel = phi ** np.arange(taps)
    white = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), n + taps)
    return np.convolve(white, kernel)[taps : taps + n]


# --------------------------------------------------------------------------------------------
# Public data


@dataclass
class DemoPerson:
    """Demographics of one demo patient (no records); see ``generate_people``."""

    first_name: str
    last_name: str
    date_of_birth: date
    sex: str  # "female" | "male" | "other" | "unknown"
    diabetes_type: str  # "type1" | "type2" | "gestational" | "other"
    mrn: str
    time_zone: str  # IANA zone
    glucose_units: str  # "mg/dL" | "mmol/L" (display preference)
    target_preset: str  # "standard" | "older_high_risk" | "pregnancy_t1" | "pregnancy_gdm_t2"
    tags: list[str]
    archetype: str  # one of ARCHETYPES


@dataclass
class DemoPatient(DemoPerson):
    """A demo patient with the devices and records the generator produced for them."""

    batch: RecordBatch = field(default_factory=lambda: RecordBatch(source=_DEMO_SOURCE))


@dataclass(frozen=True)
class _Behaviour:
    """Per-archetype physiology and self-management, the knobs of the control archetypes."""

    base: tuple[float, float]  # mg/dL: level with no net carbohydrate/insulin input
    drift_sd: float  # mg/dL: slow (3 h) physiological drift
    dawn: tuple[float, float]  # mg/dL: dawn-phenomenon rise peaking ~06:30 local
    carb_bias: tuple[float, float]  # entered / eaten carbohydrate (per patient)
    carb_error_sd: float  # log-SD of per-meal carb counting error
    bolus_skip: float  # probability a meal gets no bolus
    bolus_delay: tuple[float, float]  # min from first bite to bolus (negative = pre-bolus)
    override_prob: float  # probability the calculator's suggestion is changed
    override_factor: tuple[float, float]  # delivered / recommended when overridden
    night_excess: tuple[float, float]  # U/h of 00-06 basal not needed, as fraction of mean basal
    sensitivity_sd: float  # log-SD of day-to-day insulin sensitivity
    night_treat_delay: tuple[float, float]  # min from a nocturnal low to treatment
    correction_checks: float  # per day: glucose checks that may end in a manual correction
    correction_factor: float  # > 1: over-correction ("rage bolus")
    dual_preference: float  # probability a slow meal gets a dual-wave bolus
    site_days: tuple[float, float] = (2.5, 3.5)  # days between infusion-set changes
    poor_wear: bool = False
    exercise_per_week: float = 2.0


# A parameter table: one archetype per block, read across. fmt: off keeps it tabular.
# fmt: off
_BEHAVIOUR: dict[str, _Behaviour] = {
    "well_controlled": _Behaviour(
        base=(112, 122), drift_sd=10, dawn=(5, 12), carb_bias=(0.95, 1.05), carb_error_sd=0.12,
        bolus_skip=0.02, bolus_delay=(-12, 0), override_prob=0.05, override_factor=(0.9, 1.1),
        night_excess=(0.0, 0.0), sensitivity_sd=0.06, night_treat_delay=(10, 20),
        correction_checks=0.0, correction_factor=1.0, dual_preference=0.6,
    ),
    "overnight_lows": _Behaviour(
        base=(118, 128), drift_sd=12, dawn=(0, 5), carb_bias=(0.95, 1.05), carb_error_sd=0.15,
        bolus_skip=0.04, bolus_delay=(-8, 5), override_prob=0.1, override_factor=(0.9, 1.2),
        night_excess=(0.5, 0.7), sensitivity_sd=0.08, night_treat_delay=(25, 55),
        correction_checks=0.5, correction_factor=1.1, dual_preference=0.5,
    ),
    "post_meal_highs": _Behaviour(
        base=(135, 150), drift_sd=15, dawn=(10, 25), carb_bias=(0.5, 0.65), carb_error_sd=0.25,
        bolus_skip=0.15, bolus_delay=(10, 40), override_prob=0.3, override_factor=(0.6, 0.9),
        night_excess=(0.0, 0.05), sensitivity_sd=0.1, night_treat_delay=(10, 25),
        correction_checks=0.4, correction_factor=0.8, dual_preference=0.3,
    ),
    "high_variability": _Behaviour(
        base=(130, 150), drift_sd=40, dawn=(10, 30), carb_bias=(0.85, 1.15), carb_error_sd=0.45,
        bolus_skip=0.12, bolus_delay=(-10, 30), override_prob=0.35, override_factor=(0.6, 1.5),
        night_excess=(0.05, 0.2), sensitivity_sd=0.3, night_treat_delay=(15, 40),
        correction_checks=2.0, correction_factor=1.5, dual_preference=0.3,
    ),
    "poor_wear": _Behaviour(
        base=(135, 150), drift_sd=18, dawn=(10, 20), carb_bias=(0.85, 1.0), carb_error_sd=0.2,
        bolus_skip=0.08, bolus_delay=(-5, 15), override_prob=0.1, override_factor=(0.8, 1.1),
        night_excess=(0.0, 0.1), sensitivity_sd=0.1, night_treat_delay=(10, 30),
        correction_checks=0.4, correction_factor=1.0, dual_preference=0.3, poor_wear=True,
    ),
    "no_recent_data": _Behaviour(
        base=(130, 145), drift_sd=15, dawn=(10, 20), carb_bias=(0.85, 1.0), carb_error_sd=0.2,
        bolus_skip=0.06, bolus_delay=(-5, 15), override_prob=0.1, override_factor=(0.8, 1.1),
        night_excess=(0.0, 0.1), sensitivity_sd=0.1, night_treat_delay=(10, 30),
        correction_checks=0.4, correction_factor=1.0, dual_preference=0.4,
    ),
    "mdi": _Behaviour(
        base=(125, 140), drift_sd=15, dawn=(15, 30), carb_bias=(0.85, 1.0), carb_error_sd=0.2,
        bolus_skip=0.08, bolus_delay=(-5, 10), override_prob=0.0, override_factor=(1.0, 1.0),
        night_excess=(0.0, 0.0), sensitivity_sd=0.1, night_treat_delay=(10, 30),
        correction_checks=0.5, correction_factor=1.0, dual_preference=0.0,
    ),
    "high_a1c": _Behaviour(
        base=(200, 225), drift_sd=25, dawn=(20, 40), carb_bias=(0.6, 0.8), carb_error_sd=0.3,
        bolus_skip=0.35, bolus_delay=(0, 30), override_prob=0.25, override_factor=(0.6, 0.9),
        night_excess=(0.0, 0.0), sensitivity_sd=0.12, night_treat_delay=(10, 30),
        correction_checks=0.4, correction_factor=0.8, dual_preference=0.2, site_days=(5.0, 7.0),
        exercise_per_week=0.5,
    ),
    "pregnancy": _Behaviour(
        base=(92, 100), drift_sd=8, dawn=(3, 8), carb_bias=(0.95, 1.05), carb_error_sd=0.1,
        bolus_skip=0.0, bolus_delay=(-20, -10), override_prob=0.05, override_factor=(0.9, 1.1),
        night_excess=(0.0, 0.0), sensitivity_sd=0.05, night_treat_delay=(5, 15),
        correction_checks=0.6, correction_factor=0.9, dual_preference=0.4,
        exercise_per_week=3.0,
    ),
}
# fmt: on


@dataclass(frozen=True)
class _Regimen:
    """Which devices a patient uses; derived from archetype and occurrence, never random."""

    pump_model: str | None  # None = multiple daily injections
    automated: bool
    cgm_model: str


_CGM_SESSION = {  # model: (session days, warm-up minutes), from the manufacturers' user guides
    "Dexcom G7": (10.0, 30),
    "Abbott FreeStyle Libre 3": (14.0, 60),
    "Medtronic Guardian 4": (7.0, 120),
}
_CGM_SERIAL_PREFIX = {
    "Dexcom G7": "DX",
    "Abbott FreeStyle Libre 3": "LB",
    "Medtronic Guardian 4": "GT",
}


# --------------------------------------------------------------------------------------------
# Demographics


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([seed, index, stream]))


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")


def _variant(index: int) -> int:
    """How many earlier patients share this patient's archetype (0, 1, 2, ...)."""
    return index // len(ARCHETYPES)


def _regimen(archetype: str, index: int, diabetes_type: str) -> _Regimen:
    variant = _variant(index)
    cgm = ("Dexcom G7", "Abbott FreeStyle Libre 3")[variant % 2]
    if archetype == "mdi" or diabetes_type == "gestational":
        return _Regimen(pump_model=None, automated=False, cgm_model=cgm)
    if archetype == "well_controlled":
        # SmartGuard needs Medtronic's own sensor.
        return _Regimen("Medtronic MiniMed 780G", automated=True, cgm_model="Medtronic Guardian 4")
    pump = ("Medtronic MiniMed 780G", "Tandem t:slim X2")[(variant + index) % 2]
    if pump == "Tandem t:slim X2":
        cgm = "Dexcom G7"
    return _Regimen(pump_model=pump, automated=False, cgm_model=cgm)


def _person(index: int, seed: int, as_of: date) -> DemoPerson:
    rng = _rng(seed, index, 0)
    archetype = ARCHETYPES[index % len(ARCHETYPES)]
    variant = _variant(index)

    diabetes_type = "type1"
    if archetype == "pregnancy" and variant % 2 == 1:
        diabetes_type = "gestational"
    elif archetype == "mdi":
        diabetes_type = ("type2", "type1", "other")[variant % 3]

    if archetype == "pregnancy":
        sex = "female"
    else:
        sex = str(rng.choice(["female", "male", "other", "unknown"], p=[0.48, 0.48, 0.02, 0.02]))

    can_be_child = archetype in {
        "well_controlled",
        "high_variability",
        "poor_wear",
        "post_meal_highs",
        "high_a1c",
    }
    child_draw = rng.random()
    if archetype == "pregnancy":
        age_years = rng.uniform(22, 41)
    elif diabetes_type == "type2":
        age_years = rng.uniform(58, 84)
    elif can_be_child and child_draw < 0.25:
        age_years = rng.uniform(6, 18)
    else:
        age_years = rng.uniform(18, 76)
    date_of_birth = as_of - timedelta(days=int(age_years * 365.25))
    age = (
        as_of.year
        - date_of_birth.year
        - ((as_of.month, as_of.day) < (date_of_birth.month, date_of_birth.day))
    )

    first_names = {"female": people.FEMALE_FIRST_NAMES, "male": people.MALE_FIRST_NAMES}.get(
        sex, people.NEUTRAL_FIRST_NAMES
    )
    first_name = first_names[int(rng.integers(len(first_names)))]
    last_name = people.LAST_NAMES[int(rng.integers(len(people.LAST_NAMES)))]

    zone = CLINIC_TIME_ZONE
    if rng.random() < 0.15:
        zone = OTHER_TIME_ZONES[int(rng.integers(len(OTHER_TIME_ZONES)))]
    units = "mg/dL" if rng.random() < 0.7 else "mmol/L"

    # Consensus targets (Battelino 2019): pregnancy presets by diabetes type, then age.
    if diabetes_type == "gestational":
        preset = "pregnancy_gdm_t2"
    elif archetype == "pregnancy":
        preset = "pregnancy_t1"
    elif age >= 65:
        preset = "older_high_risk"
    else:
        preset = "standard"

    regimen = _regimen(archetype, index, diabetes_type)
    tags = ["pump" if regimen.pump_model else "MDI"]
    if regimen.automated:
        tags.append("AID")
    if age < 18:
        tags.append("pediatric")
    if archetype == "pregnancy":
        tags.append("pregnancy")
    if rng.random() < 0.15:
        tags.append("research")

    return DemoPerson(
        first_name=first_name,
        last_name=last_name,
        date_of_birth=date_of_birth,
        sex=sex,
        diabetes_type=diabetes_type,
        mrn=f"MRN-{index + 1:06d}",
        time_zone=zone,
        glucose_units=units,
        target_preset=preset,
        tags=tags,
        archetype=archetype,
    )


def generate_people(n: int, seed: int, *, as_of: date = DEFAULT_AS_OF) -> list[DemoPerson]:
    """Demographics for patients 0..n-1, without records (cheap: ~20 µs a patient).

    ``as_of`` is the date ages are computed against (default a fixed date, never today), so the
    same ``(n, seed, as_of)`` always gives the same people, and person ``i`` is the same whatever
    ``n`` is.

    Raises:
        ValueError: if ``n`` or ``seed`` is negative.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _check_seed(seed)
    return [_person(i, seed, as_of) for i in range(n)]


# --------------------------------------------------------------------------------------------
# Time


def _zone_offsets(zone: ZoneInfo, sim_start: int, n: int) -> IntArray:
    """UTC offset in minutes of every bin; looked up hourly (DST changes on whole UTC hours)."""
    hour0 = sim_start - sim_start % _HOUR
    n_hours = (sim_start + n * _STEP - hour0) // _HOUR + 1
    hourly = np.empty(n_hours, dtype=np.int64)
    for h in range(n_hours):
        offset = datetime.fromtimestamp(hour0 + h * _HOUR, zone).utcoffset() or timedelta(0)
        hourly[h] = int(offset.total_seconds()) // 60
    bins = (sim_start + np.arange(n, dtype=np.int64) * _STEP - hour0) // _HOUR
    return hourly[bins]


def _serial(prefix: str, digits: int, seed: int, index: int, salt: int) -> str:
    """A serial unique per (patient, device) for a given seed: an affine bijection of index."""
    modulus = 10**digits
    base = (seed * 1_000_003 + salt * 7_777_777) % modulus
    return f"{prefix}{(base + index * 7_919) % modulus:0{digits}d}"


def _round_to(value: float, step: float) -> float:
    return round(round(value / step) * step, 3)


def _schedule_values(schedule: list[tuple[int, float]], tod: IntArray) -> FloatArray:
    starts = np.array([s for s, _ in schedule], dtype=np.int64)
    values = np.array([v for _, v in schedule], dtype=np.float64)
    return values[np.searchsorted(starts, tod, side="right") - 1]


def _schedule_value(schedule: list[tuple[int, float]], tod: int) -> float:
    value = schedule[0][1]
    for start, v in schedule:
        if start <= tod:
            value = v
    return value


# --------------------------------------------------------------------------------------------
# The per-patient simulation


@dataclass
class _Meal:
    time: int  # s UTC of the first bite
    bin: int
    carbs: float  # g eaten
    kernel: str
    snack: bool


@dataclass
class _BolusPlan:
    """What the patient will do about one meal, drawn before the simulation runs."""

    skip: bool
    time: int  # s UTC of the bolus
    entered: float  # g typed into the calculator
    override: float  # delivered / recommended
    dual: bool
    square: bool
    meter: bool  # fingerstick before the bolus
    cancel: bool  # bolus interrupted


@dataclass(order=True)
class _Event:
    bin: int
    order: int
    kind: str = field(compare=False)
    ref: int = field(compare=False, default=0)


class _PatientSim:
    """Simulates one patient on a 5-minute grid and emits their records."""

    def __init__(self, person: DemoPerson, index: int, *, days: int, seed: int, end: int) -> None:
        self.person = person
        self.index = index
        self.seed = seed
        self.rng = _rng(seed, index, 1)
        self.beh = _BEHAVIOUR[person.archetype]
        self.regimen = _regimen(person.archetype, index, person.diabetes_type)
        self.pump = self.regimen.pump_model is not None
        self.pediatric = "pediatric" in person.tags

        self.end = end
        self.start = end - days * _DAY
        self.limit = end
        if person.archetype == "no_recent_data":
            # The patient stopped uploading 10.5-14 days ago.
            self.limit = end - int(self.rng.uniform(10.5, 14.0) * _DAY)
        # One day of burn-in so the first day of the window already carries earlier meals/insulin.
        self.sim_start = (self.start - _DAY) // _STEP * _STEP
        self.n = (end - self.sim_start) // _STEP + 1
        self.times = self.sim_start + np.arange(self.n, dtype=np.int64) * _STEP

        self.zone_off = _zone_offsets(ZoneInfo(person.time_zone), self.sim_start, self.n)
        self.tod = (self.times + self.zone_off * 60) % _DAY
        self.local_day = (self.times + self.zone_off * 60) // _DAY
        self.records: list[AnyRecord] = []
        self.devices: list[DeviceInfo] = []

    # ---- helpers ---------------------------------------------------------------------------

    def bin_of(self, t: int) -> int:
        return int(min(max((t - self.sim_start) // _STEP, 0), self.n - 1))

    def local_to_utc(self, local: npt.NDArray[np.float64]) -> IntArray:
        guess = local.astype(np.int64) - int(self.zone_off[0]) * 60
        idx = np.clip((guess - self.sim_start) // _STEP, 0, self.n - 1)
        return local.astype(np.int64) - self.zone_off[idx] * 60

    def local_bin(self, local: float) -> int | None:
        """The bin holding local wall-clock second ``local``, or None outside the grid."""
        t = int(self.local_to_utc(np.array([local]))[0])
        b = (t - self.sim_start) // _STEP
        return b if 0 <= b < self.n else None

    def uniform(self, bounds: tuple[float, float]) -> float:
        return float(self.rng.uniform(bounds[0], bounds[1]))

    # ---- set-up ----------------------------------------------------------------------------

    def make_devices(self) -> None:
        seed, index = self.seed, self.index
        if self.regimen.pump_model == "Medtronic MiniMed 780G":
            self.pump_serial = _serial("NG", 7, seed, index, 1)
            self.devices.append(
                DeviceInfo(self.pump_serial, "Medtronic", "MiniMed 780G", DeviceKind.PUMP)
            )
        elif self.regimen.pump_model == "Tandem t:slim X2":
            self.pump_serial = _serial("", 8, seed, index, 2)
            self.devices.append(
                DeviceInfo(self.pump_serial, "Tandem Diabetes Care", "t:slim X2", DeviceKind.PUMP)
            )
        cgm = self.regimen.cgm_model
        self.cgm_serial = _serial(_CGM_SERIAL_PREFIX[cgm], 8, seed, index, 3)
        manufacturer, model = cgm.split(" ", 1)
        self.devices.append(DeviceInfo(self.cgm_serial, manufacturer, model, DeviceKind.CGM))
        self.meter_serial = _serial("CN1", 7, seed, index, 4)
        self.devices.append(
            DeviceInfo(self.meter_serial, "Ascensia", "Contour Next One", DeviceKind.METER)
        )
        if not self.pump:
            self.pen_serial = _serial("NP6R", 7, seed, index, 5)
            self.long_pen_serial = _serial("NP6L", 7, seed, index, 6)
            self.devices.append(
                DeviceInfo(
                    self.pen_serial, "Novo Nordisk", "NovoPen 6 (rapid-acting)", DeviceKind.PEN
                )
            )
            self.devices.append(
                DeviceInfo(
                    self.long_pen_serial, "Novo Nordisk", "NovoPen 6 (long-acting)", DeviceKind.PEN
                )
            )
        # The device that shows CGM alarms and records calibrations.
        self.alarm_serial = (
            self.pump_serial
            if self.regimen.cgm_model == "Medtronic Guardian 4"
            else self.cgm_serial
        )

    def make_clocks(self) -> None:
        """The pump keeps its old offset after a DST change until the patient resets it."""
        self.pump_off = self.zone_off.copy()
        self.pump_tod = self.tod
        self.time_changes: list[tuple[int, int]] = []  # (bin, seconds new - old)
        if not self.pump:
            return
        for j in np.flatnonzero(np.diff(self.zone_off)) + 1:
            later = np.flatnonzero((self.tod[j:] >= 8 * _HOUR) & (self.tod[j:] < 9 * _HOUR))
            k = int(j + later[0]) if later.size else self.n
            old, new = int(self.zone_off[j - 1]), int(self.zone_off[j])
            self.pump_off[j:k] = old
            if k < self.n:
                self.time_changes.append((k, (new - old) * 60))
        self.pump_tod = (self.times + self.pump_off * 60) % _DAY

    def make_settings(self) -> None:
        rng = self.rng
        person = self.person
        if person.diabetes_type == "gestational":
            tdd = rng.uniform(14, 26)
        elif person.diabetes_type == "type2":
            tdd = rng.uniform(55, 85)
        elif self.pediatric:
            tdd = rng.uniform(16, 34)
        else:
            tdd = rng.uniform(34, 58)
        self.tdd = tdd
        # The "1800 rule" and "500 rule" (Walsh & Roberts, Pumping Insulin) for starting values.
        isf = max(15.0, round(1800 / tdd))
        ratio = _round_to(500 / tdd, 0.5)
        mean_basal = 0.45 * tdd / 24  # ~45 % of the TDD as basal
        self.mean_basal = mean_basal
        shape = [
            (0, 0.85),
            (3 * _HOUR, 1.15),
            (7 * _HOUR, 1.0),
            (12 * _HOUR, 0.9),
            (17 * _HOUR, 1.05),
            (22 * _HOUR, 0.9),
        ]
        pattern = [(s, max(0.05, _round_to(mean_basal * f, 0.025))) for s, f in shape]
        self.schedule = pattern
        medtronic = self.regimen.pump_model == "Medtronic MiniMed 780G"
        names = ("Pattern 1", "Pattern 2") if medtronic else ("Weekday", "Weekend")
        self.schedule_name = names[0]
        schedules = {
            names[0]: pattern,
            names[1]: [(s, max(0.05, _round_to(v * 0.85, 0.025))) for s, v in pattern],
        }
        self.carb_ratios = [
            (0, ratio),
            (6 * _HOUR, _round_to(ratio * 0.85, 0.5)),
            (11 * _HOUR, ratio),
            (17 * _HOUR, _round_to(ratio * 0.95, 0.5)),
        ]
        self.sensitivities = [(0, round(isf * 1.15)), (6 * _HOUR, isf)]
        if person.archetype == "pregnancy":
            targets = [(0, 90.0, 100.0)]
        elif self.regimen.automated:
            targets = [(0, 110.0, 110.0)]  # SmartGuard target glucose 100/110/120 mg/dL
        else:
            targets = [(0, 100.0, 120.0), (22 * _HOUR, 110.0, 130.0)]
        self.targets = targets
        self.auto_target = 110.0
        self.ait = 3 * _HOUR if self.regimen.automated else (4 if medtronic else 5) * _HOUR
        self.max_bolus = 10.0 if self.pediatric else 20.0
        self.max_basal = _round_to(max(1.0, mean_basal * 3), 0.05)
        self.settings_changes: list[tuple[int, list[tuple[int, float]]]] = []
        if self.pump:
            visit_day = int(rng.integers(self.first_local_day() + 8, self.first_local_day() + 20))
            visit_local = visit_day * _DAY + int(rng.uniform(9, 16) * _HOUR)
            visit = int(self.local_to_utc(np.array([float(visit_local)]))[0])
            # The clinic strengthens the breakfast ratio by ~10 % at a visit.
            changed = [
                (s, _round_to(v * 0.9, 0.5) if s == 6 * _HOUR else v) for s, v in self.carb_ratios
            ]
            self.settings_changes.append((visit, changed))
            for time, ratios in [(self.start + 60, self.carb_ratios), (visit, changed)]:
                self.records.append(
                    PumpSettings(
                        device_serial=self.pump_serial,
                        time=time,
                        utc_offset=int(self.pump_off[self.bin_of(time)]),
                        active_schedule=self.schedule_name,
                        basal_schedules=schedules,
                        carb_ratios=ratios,
                        sensitivities=self.sensitivities,
                        targets=targets,
                        active_insulin_time=self.ait,
                        max_bolus=self.max_bolus,
                        max_basal=self.max_basal,
                    )
                )
        low_alert, high_alert = (63.0, 140.0) if person.archetype == "pregnancy" else (70.0, 250.0)
        self.records.append(
            CgmSettings(
                device_serial=self.alarm_serial,
                time=self.start + 30,
                utc_offset=int(self.zone_off[self.bin_of(self.start + 30)]),
                low_alert=low_alert,
                high_alert=high_alert,
                urgent_low=55.0,
            )
        )

    def first_local_day(self) -> int:
        return int(self.local_day[self.bin_of(self.start)])

    def ratio_at(self, t: int, tod: int) -> float:
        ratios = self.carb_ratios
        for when, changed in self.settings_changes:
            if t >= when:
                ratios = changed
        return _schedule_value(ratios, tod)

    # ---- exogenous inputs ------------------------------------------------------------------

    def make_physiology(self) -> None:
        rng, beh, n = self.rng, self.beh, self.n
        person = self.person
        tod_h = self.tod / _HOUR
        base = self.uniform(beh.base)
        if person.diabetes_type == "gestational":
            base = self.uniform((88, 98))
        if person.diabetes_type == "type2":
            base += 10
        self.base = np.full(n, base)
        self.recent_worsening_bin = self.n
        if person.archetype == "mdi" and (self.end - self.start) >= 28 * _DAY:
            # Control slips in the last 14 days (exercises the "drop in time in range" triage).
            first = self.bin_of(self.end - 14 * _DAY)
            ramp = np.clip((np.arange(n) - first) / (2 * _BINS_PER_DAY), 0.0, 1.0)
            self.base += 35.0 * ramp
            self.recent_worsening_bin = first
        dawn = self.uniform(beh.dawn) * np.exp(-(((tod_h - 6.5) / 1.6) ** 2))
        drift = _filtered_noise(rng, n, beh.drift_sd, 180.0)
        fast = _filtered_noise(rng, n, 4.0, 25.0)
        self.glucose = self.base + dawn + drift + fast
        # Sensitivity varies from day to day; settings stay as programmed.
        days = self.local_day - self.local_day[0]
        day_factor = np.exp(rng.normal(0.0, beh.sensitivity_sd, int(days[-1]) + 1))[days]
        isf = _schedule_values(self.sensitivities, self.tod.astype(np.int64))
        self.isf_true = isf * day_factor
        ratio = _schedule_values(self.carb_ratios, self.tod.astype(np.int64))
        self.csf = isf / ratio  # mg/dL per g; carbohydrate counting bias is behavioural
        # Gestational and type 2 diabetes keep some insulin secretion: a missed basal dose
        # matters less than in type 1.
        self.residual = {"gestational": 0.4, "type2": 0.7}.get(person.diabetes_type, 1.0)
        # CGM error: proportional AR(1) (MARD ~8-9 %) plus white noise.
        self.sensor_rel = _filtered_noise(rng, n, 0.055, 20.0)
        self.sensor_white = rng.normal(0.0, 2.0, n)
        self.delivered_deficit = np.zeros(n)  # U/h missing vs. what the body needs

    def make_sensor(self) -> None:
        """Sensor sessions, warm-ups, dropouts: which bins hold a CGM reading."""
        rng, n = self.rng, self.n
        days, warmup_min = _CGM_SESSION[self.regimen.cgm_model]
        session_bins = int(days * _BINS_PER_DAY)
        warmup = warmup_min // 5
        active = np.zeros(n, dtype=np.bool_)
        phase = np.zeros(n, dtype=np.int64)
        self.sensor_starts: list[int] = []
        self.sensor_stops: list[tuple[int, str]] = []
        s = -int(rng.integers(0, session_bins))
        poor = self.beh.poor_wear
        while s < n:
            if poor:
                length = int(rng.uniform(2.0, 7.0) * _BINS_PER_DAY)
                reason = "sensor removed early"
            elif rng.random() < 0.08:
                length = int(rng.uniform(0.4, 0.95) * session_bins)
                reason = "sensor failed"
            else:
                length = session_bins
                reason = "sensor session ended"
            e = s + length
            lo, hi = max(s + warmup, 0), min(e, n)
            if lo < hi:
                active[lo:hi] = True
                phase[max(s, 0) : hi] = int(rng.integers(0, _STEP))
            if s >= 0:
                self.sensor_starts.append(s)
            if 0 <= e < n:
                self.sensor_stops.append((e, reason))
            gap = rng.uniform(1.0, 4.0) * _BINS_PER_DAY if poor else rng.uniform(0.05, 3.0) * 12
            s = e + int(gap)
        # Signal-loss dropouts: log-normal durations (median 25 min; 3 h for poor wearers).
        n_days = n / _BINS_PER_DAY
        n_drop = int(rng.poisson((1.5 if poor else 0.3) * n_days))
        starts = rng.integers(0, n, n_drop)
        median = 36 if poor else 5
        lengths = np.clip(np.exp(rng.normal(math.log(median), 0.8, n_drop)), 2, 144).astype(int)
        self.dropouts: list[int] = []
        for a, length in zip(starts.tolist(), lengths.tolist(), strict=True):
            if active[a]:
                self.dropouts.append(a)
            active[a : a + length] = False
        active &= rng.random(n) >= 0.01  # isolated missing readings
        self.active = active
        self.phase = phase

    def make_meals(self) -> list[_Meal]:
        rng = self.rng
        person = self.person
        scale = 0.75 if self.pediatric else 1.0
        snack_boost = 0.0
        if person.archetype == "pregnancy":
            scale, snack_boost = 0.75, 0.35  # smaller meals, more snacks
        slots = [  # name, local hour, SD h, carbs g (low, high), probability, snack
            ("breakfast", 7.5, 0.6, (30, 60), 0.9, False),
            ("morning_snack", 10.0, 0.5, (10, 25), 0.3 + snack_boost, True),
            ("lunch", 12.75, 0.6, (40, 80), 0.95, False),
            ("afternoon_snack", 15.5, 0.6, (10, 30), 0.45 + snack_boost, True),
            ("dinner", 19.0, 0.75, (50, 100), 0.98, False),
            ("evening_snack", 21.5, 0.5, (10, 25), 0.3 + snack_boost, True),
        ]
        first, last = int(self.local_day[0]), int(self.local_day[-1])
        n_days = last - first + 1
        meals: list[_Meal] = []
        for name, hour, sd, (lo, hi), p, snack in slots:
            hours = np.clip(rng.normal(hour, sd, n_days), hour - 2.5, hour + 2.5)
            carbs = np.round(rng.uniform(lo, hi, n_days) * scale)
            present = rng.random(n_days) < min(p, 1.0)
            slow = rng.random(n_days) < (0.15 if name == "dinner" else 0.0)
            local = (np.arange(first, last + 1) * _DAY + hours * _HOUR).astype(np.float64)
            times = self.local_to_utc(local) + rng.integers(0, 60, n_days)
            for d in np.flatnonzero(present).tolist():
                t = int(times[d])
                if not self.sim_start <= t <= self.end:
                    continue
                meals.append(
                    _Meal(
                        time=t,
                        bin=self.bin_of(t),
                        carbs=float(carbs[d]),
                        kernel="slow" if slow[d] else "meal",
                        snack=snack,
                    )
                )
        meals.sort(key=lambda m: m.time)
        for meal in meals:
            _add_effect(
                self.glucose,
                meal.bin,
                meal.carbs * float(self.csf[meal.bin]),
                _K_CARBS[meal.kernel],
            )
        return meals

    def make_exercise(self) -> list[tuple[int, int]]:
        """Afternoon exercise: glucose uptake ~1.2 mg/dL/min while active (bins, not records)."""
        rng = self.rng
        first, last = int(self.local_day[0]), int(self.local_day[-1])
        sessions: list[tuple[int, int]] = []
        uptake = np.zeros(self.n)
        for day in range(first, last + 1):
            if rng.random() >= self.beh.exercise_per_week / 7:
                continue
            b = self.local_bin(day * _DAY + rng.uniform(16, 19.5) * _HOUR)
            length = int(rng.integers(6, 16))
            if b is None:
                continue
            uptake[b : b + length] -= rng.uniform(5.0, 7.0)
            sessions.append((b, min(b + length, self.n)))
        self.glucose += np.convolve(uptake, _K_DIRECT)[: self.n]
        return sessions

    def make_basal_plan(self, exercise: list[tuple[int, int]]) -> None:
        """Scheduled/temp/suspended basal per bin for pumps; long-acting doses for MDI."""
        rng, n, beh = self.rng, self.n, self.beh
        self.kind = np.zeros(n, dtype=np.int64)  # 0 scheduled, 1 temp, 2 suspended, 3 automated
        self.percent = np.full(n, -1.0)
        self.suspends: list[tuple[int, int, str]] = []
        self.temps: list[tuple[int, int, float]] = []
        if not self.pump:
            self.sched_rate = np.zeros(n)
            self.rate = np.zeros(n)
            self.make_long_acting()
            return
        self.sched_rate = _schedule_values(self.schedule, self.pump_tod.astype(np.int64))
        # Night basal the body does not need: the "recurring overnight lows" archetype.
        need = self.sched_rate.copy()
        if beh.night_excess[1] > 0:
            first = int(self.local_day[0])
            nights = self.local_day - first
            excess = (
                self.mean_basal
                * rng.uniform(*beh.night_excess)
                * np.exp(rng.normal(0.0, 0.3, int(nights[-1]) + 1))[nights]
            )
            night = self.tod < 6 * _HOUR
            need[night] = np.maximum(0.0, need[night] - excess[night])
        self.need = need
        if not self.regimen.automated:
            for a, b in exercise:
                if rng.random() < 0.7:
                    pct = float(rng.choice([50.0, 60.0, 70.0]))
                    self.temps.append((max(a - 12, 0), b, pct))
            # Occasional raised temp basal on a bad day.
            for _ in range(int(rng.poisson(0.08 * n / _BINS_PER_DAY))):
                a = int(rng.integers(0, n))
                self.temps.append((a, min(a + int(rng.integers(24, 60)), n), 130.0))
            for a, b, pct in self.temps:
                self.kind[a:b] = 1
                self.percent[a:b] = pct
        # User suspends (shower, swimming): ~every 3 days, 15-60 min, daytime.
        for day in range(int(self.local_day[0]), int(self.local_day[-1]) + 1):
            if rng.random() < 0.33:
                begin = self.local_bin(day * _DAY + rng.uniform(7, 22) * _HOUR)
                length = int(rng.integers(3, 13))
                if begin is not None and begin + length < n:
                    self.suspends.append((begin, begin + length, "user suspend"))
        self.make_site_changes()
        # A user suspend that runs into a set change would merge with it; drop it.
        changes = [(a, b) for a, b, reason in self.suspends if reason == "site change"]
        self.suspends = [
            (a, b, reason)
            for a, b, reason in self.suspends
            if reason == "site change" or all(b < c0 or a > c1 for c0, c1 in changes)
        ]
        for a, b, _reason in self.suspends:
            self.kind[a:b] = 2
        rate = self.sched_rate.copy()
        temp = self.kind == 1
        rate[temp] = self.sched_rate[temp] * self.percent[temp] / 100
        rate[self.kind == 2] = 0.0
        self.rate = rate
        deviation = rate - self.need
        deviation -= self.delivered_deficit
        if self.regimen.automated:
            deviation[:] = -self.delivered_deficit  # automation decides in the loop
            deviation[self.kind == 2] = -self.need[self.kind == 2]
        self.add_basal_effect(deviation)

    def add_basal_effect(self, deviation_u_per_h: FloatArray) -> None:
        units = deviation_u_per_h / 12 * self.isf_true
        self.glucose -= np.convolve(units, _K_INSULIN)[: self.n]

    def make_site_changes(self) -> None:
        """Infusion-set changes every ~3 days (5-7 when overdue), occlusions, set-age rise."""
        rng, n = self.rng, self.n
        self.site_changes: list[tuple[int, str]] = []
        self.occlusions: list[int] = []
        site_age = np.zeros(n)
        t = -int(rng.uniform(0, self.beh.site_days[0]) * _BINS_PER_DAY)
        occlusion_rate = 0.05 if self.beh.site_days[0] >= 5 else 0.02  # per day
        while t < n:
            interval = int(rng.uniform(*self.beh.site_days) * _BINS_PER_DAY)
            occ_in = int(rng.exponential(1 / occlusion_rate) * _BINS_PER_DAY)
            nxt = t + interval
            if occ_in < interval:
                occ = t + occ_in
                if 0 <= occ < n:
                    self.occlusions.append(occ)
                    # Insulin stopped flowing 1-2 h before the pump noticed.
                    self.delivered_deficit[max(occ - int(rng.integers(12, 25)), 0) : occ] += (
                        self.need[max(occ - 1, 0)]
                    )
                nxt = occ + int(rng.integers(4, 13))
            lo, hi = max(t, 0), min(nxt, n)
            if lo < hi:
                site_age[lo:hi] = (np.arange(lo, hi) - t) / _BINS_PER_DAY
            if 0 <= nxt < n:
                self.site_changes.append((nxt, "occlusion" if occ_in < interval else "routine"))
                self.suspends.append((nxt, min(nxt + 2, n), "site change"))
            t = nxt
        # Absorption from an infusion set worsens after ~3 days of wear (Thethi et al.,
        # J Diabetes Complications 2010;24:73, "delayed pump infusion line change").
        self.glucose += 12.0 * np.maximum(site_age - 3.0, 0.0)

    def make_long_acting(self) -> None:
        """Once-daily long-acting dose; a missed dose leaves 24 h uncovered."""
        rng = self.rng
        self.long_doses: list[tuple[int, float]] = []
        hour = 8.0 if self.person.diabetes_type == "type2" else 22.0
        dose = round(0.45 * self.tdd)
        deficit = np.zeros(self.n)
        for day in range(int(self.local_day[0]), int(self.local_day[-1]) + 1):
            local = float(day * _DAY + rng.normal(hour, 0.4) * _HOUR)
            t = int(self.local_to_utc(np.array([local]))[0]) + int(rng.integers(0, 60))
            if not self.sim_start <= t <= self.end:
                continue
            b = self.bin_of(t)
            miss = 0.2 if b >= self.recent_worsening_bin else 0.05
            if rng.random() < miss:
                deficit[b : b + _BINS_PER_DAY] += dose / 24 * self.residual
                continue
            self.long_doses.append((t, float(dose)))
        self.add_basal_effect(-deficit)

    # ---- decisions in time order -----------------------------------------------------------

    def sensed(self, b: int) -> float:
        g = float(self.glucose[b])
        return g * (1 + float(self.sensor_rel[b])) + float(self.sensor_white[b])

    def run_decisions(self, meals: list[_Meal]) -> None:
        rng, beh = self.rng, self.beh
        n = self.n
        self.iob = np.zeros(n + _IOB_CURVE.size)
        self.boluses: list[Bolus] = []
        self.carb_entries: list[tuple[int, float]] = []
        self.meter: list[tuple[int, float]] = []  # (time, true glucose mg/dL)
        self.auto_blocks: list[tuple[int, float]] = []  # (bin, U/h) automated delivery
        self.auto_exits: list[int] = []
        bias = self.uniform(beh.carb_bias)
        events: list[_Event] = []
        plans: list[_BolusPlan] = []
        for i, meal in enumerate(meals):
            skip_p = beh.bolus_skip * (2.0 if meal.snack else 1.0)
            if meal.bin >= self.recent_worsening_bin:
                skip_p += 0.25
            delay = 0.0 if meal.snack else self.uniform(beh.bolus_delay)
            t_bolus = meal.time + int(delay * 60)
            entered = meal.carbs * bias * math.exp(rng.normal(0, beh.carb_error_sd))
            overridden = rng.random() < beh.override_prob
            plan = _BolusPlan(
                skip=bool(rng.random() < skip_p),
                time=t_bolus,
                entered=max(5.0, _round_to(entered, 5)),
                override=self.uniform(beh.override_factor) if overridden else 1.0,
                dual=bool(meal.kernel == "slow" and rng.random() < beh.dual_preference),
                square=bool(meal.snack and rng.random() < 0.04),
                meter=bool(not meal.snack and rng.random() < (0.35 if self.pump else 0.7)),
                cancel=bool(rng.random() < 0.01),
            )
            plans.append(plan)
            if not plan.skip and self.sim_start <= t_bolus <= self.end:
                events.append(_Event(self.bin_of(t_bolus), 1, "meal", i))
        n_checks = int(rng.poisson(beh.correction_checks * n / _BINS_PER_DAY))
        if not self.regimen.automated:
            for b in rng.integers(0, n, n_checks).tolist():
                if 7 * _HOUR <= self.tod[b] <= 23 * _HOUR:
                    events.append(_Event(b, 2, "check", 0))
        if self.regimen.automated:
            events.extend(_Event(b, 0, "auto", 0) for b in range(0, n, 6))
        heapq.heapify(events)

        low_ok = 0  # next bin at which a new low may be treated
        scan = 0
        seq = 10
        while events:
            nxt = events[0].bin
            if scan < nxt:
                g = self.glucose[scan:nxt]
                seen = np.where(
                    self.active[scan:nxt], g * (1 + self.sensor_rel[scan:nxt]), g + 10.0
                )
                hits = np.flatnonzero(seen < _LOW) + scan
                hits = hits[hits >= low_ok]
                if hits.size:
                    h = int(hits[0])
                    night = self.tod[h] < 6 * _HOUR or self.tod[h] >= 23 * _HOUR
                    delay = self.uniform(beh.night_treat_delay) if night else rng.uniform(3, 12)
                    tb = h + max(1, int(delay / 5))
                    scan = tb
                    low_ok = tb + 4  # re-check after ~15-20 min (rule of 15)
                    if tb < n:
                        seq += 1
                        heapq.heappush(events, _Event(tb, seq, "treat", 0))
                    continue
                scan = nxt
            event = heapq.heappop(events)
            if event.kind == "meal":
                self.meal_bolus(plans[event.ref], event.bin)
            elif event.kind == "check":
                self.manual_correction(event.bin)
            elif event.kind == "auto":
                self.automated_block(event.bin)
            else:
                self.treat_low(event.bin)

    def deliver(self, b: int, units: float, extended: float = 0.0, duration: int = 0) -> None:
        """Apply a bolus's effect on glucose and insulin on board from bin ``b``."""
        isf = float(self.isf_true[b])
        _add_effect(self.glucose, b, -units * isf, _K_INSULIN)
        self.iob[b : b + _IOB_CURVE.size] += units * _IOB_CURVE
        if extended > 0 and duration > 0:
            spread = max(1, duration // _STEP)
            kernel = np.convolve(_K_INSULIN, np.full(spread, 1 / spread))[: _KERNEL_BINS + spread]
            _add_effect(self.glucose, b, -extended * isf, kernel)
            iob = np.convolve(_IOB_CURVE, np.full(spread, 1 / spread))
            stop = min(b + iob.size, self.iob.size)
            self.iob[b:stop] += extended * iob[: stop - b]

    def meal_bolus(self, plan: _BolusPlan, b: int) -> None:
        """Bolus calculator (pump) or pen dose for a meal, with BG from a fingerstick or CGM."""
        rng = self.rng
        t = plan.time
        tod = int(self.pump_tod[b] if self.pump else self.tod[b])
        ratio = self.ratio_at(t, tod)
        isf = _schedule_value(self.sensitivities, tod)
        target_low, target_high = self.targets[0][1], self.targets[0][2]
        for start, lo, hi in self.targets:
            if start <= tod:
                target_low, target_high = lo, hi
        carbs = plan.entered
        bg: float | None = None
        if plan.meter:
            tm = t - int(rng.integers(60, 480))
            bm = self.bin_of(tm)
            bg = float(
                np.clip(
                    round(_soft_floor(float(self.glucose[bm])) * (1 + rng.normal(0, 0.04))),
                    _METER_LOW,
                    _METER_HIGH,
                )
            )
            self.meter.append((tm, bg))
        elif self.active[b] and (self.pump or rng.random() < 0.5):
            bg = float(round(min(max(self.sensed(b), _SENSOR_LOW), _SENSOR_HIGH)))
        food = carbs / ratio
        correction = 0.0
        if bg is not None and bg > target_high:
            correction = (bg - target_high) / isf
        elif bg is not None and bg < target_low:
            correction = (bg - target_low) / isf
        iob = float(self.iob[b])
        # Bolus Wizard logic: insulin on board offsets only the correction part.
        if correction > 0:
            recommended = food + max(0.0, correction - iob)
        else:
            recommended = max(0.0, food + correction)
        step = 0.05 if self.pump else 0.5
        recommended = min(_round_to(recommended, step), self.max_bolus)
        dose = min(_round_to(recommended * plan.override, step), self.max_bolus)
        if dose <= 0:
            return
        if not self.pump:
            self.deliver(b, dose)
            self.boluses.append(
                Bolus(
                    device_serial=self.pen_serial,
                    time=t,
                    utc_offset=int(self.zone_off[b]),
                    source=BolusSource.PEN,
                    programmed=dose,
                    delivered=dose,
                )
            )
            return
        kind, normal, extended, duration = BolusKind.NORMAL, dose, 0.0, 0
        if plan.dual:
            # 60/40 split over 2-4 h, the usual starting point for high-fat meals.
            kind, duration = BolusKind.DUAL, int(rng.integers(8, 17)) * 900
            normal = _round_to(dose * 0.6, 0.05)
            extended = _round_to(dose - normal, 0.05)
        elif plan.square:
            kind, duration = BolusKind.SQUARE, int(rng.integers(2, 5)) * 1800
            normal, extended = 0.0, dose
        delivered = normal + extended
        cancelled = plan.cancel and kind == BolusKind.NORMAL
        if cancelled:
            delivered = _round_to(normal * rng.uniform(0.3, 0.9), 0.05)  # interrupted
            normal = delivered
        self.deliver(b, normal, extended, duration)
        self.boluses.append(
            Bolus(
                device_serial=self.pump_serial,
                time=t,
                utc_offset=int(self.pump_off[b]),
                kind=kind,
                source=BolusSource.WIZARD,
                programmed=dose if kind == BolusKind.SQUARE or cancelled else normal,
                delivered=round(delivered, 3),
                extended=extended if extended else None,
                duration=duration or None,
                wizard_carbs=carbs,
                wizard_bg=bg,
                carb_ratio=ratio,
                sensitivity=float(isf),
                target_low=target_low,
                target_high=target_high,
                insulin_on_board=round(iob, 2),
                food_estimate=round(food, 2),
                correction_estimate=round(correction, 2),
                recommended=recommended,
            )
        )
        self.carb_entries.append((t, carbs))

    def manual_correction(self, b: int) -> None:
        if not self.active[b]:
            return
        sg = self.sensed(b)
        if sg < 200:
            return
        isf = float(_schedule_value(self.sensitivities, int(self.tod[b])))
        dose = max(0.0, (sg - 120) / isf - float(self.iob[b])) * self.beh.correction_factor
        step = 0.1 if self.pump else 0.5
        dose = min(_round_to(dose, step), self.max_bolus)
        if dose < 0.5:
            return
        t = int(self.times[b]) + int(self.rng.integers(0, _STEP))
        self.deliver(b, dose)
        if self.pump:
            self.boluses.append(
                Bolus(
                    device_serial=self.pump_serial,
                    time=t,
                    utc_offset=int(self.pump_off[b]),
                    source=BolusSource.MANUAL,
                    programmed=dose,
                    delivered=dose,
                )
            )
        else:
            self.boluses.append(
                Bolus(
                    device_serial=self.pen_serial,
                    time=t,
                    utc_offset=int(self.zone_off[b]),
                    source=BolusSource.PEN,
                    programmed=dose,
                    delivered=dose,
                )
            )

    def automated_block(self, b: int) -> None:
        """30 min of SmartGuard-like automation: basal modulation and auto corrections."""
        if self.kind[b] == 2:
            return  # user suspend or site change: nothing delivered, effect already applied
        need = float(self.need[b])
        if not self.active[b]:
            # No sensor glucose: the pump falls back to its programmed basal (manual mode).
            self.kind[b : b + 6] = np.where(self.kind[b : b + 6] == 2, 2, 0)
            if b >= 6 and self.kind[b - 6] == 3:
                self.auto_exits.append(b)
            return
        sg = self.sensed(b)
        trend = sg - self.sensed(b - 6) if b >= 6 and self.active[b - 6] else 0.0
        predicted = sg + trend  # ~30 min ahead
        if predicted < 80:
            rate = 0.0  # suspend before low
        else:
            rate = need * float(np.clip(1 + (predicted - self.auto_target) / _AUTO_GAIN, 0.2, 3.0))
        rate = min(_round_to(rate, 0.025), self.max_basal)
        self.kind[b : b + 6] = np.where(self.kind[b : b + 6] == 2, 2, 3)
        self.auto_blocks.append((b, rate))
        _add_effect(self.glucose, b, -(rate - need) / 2 * float(self.isf_true[b]), _K_INSULIN_BLOCK)
        if sg > 150 and trend >= -5:
            isf = _schedule_value(self.sensitivities, int(self.pump_tod[b]))
            units = max(0.0, (sg - 120) / isf - float(self.iob[b])) * _AUTO_CORRECTION
            units = _round_to(units, 0.025)
            if units >= 0.1:
                t = int(self.times[b]) + int(self.rng.integers(0, 60))
                self.deliver(b, units)
                self.boluses.append(
                    Bolus(
                        device_serial=self.pump_serial,
                        time=t,
                        utc_offset=int(self.pump_off[b]),
                        source=BolusSource.AUTOMATIC,
                        programmed=units,
                        delivered=units,
                    )
                )

    def treat_low(self, b: int) -> None:
        """15-20 g fast carbohydrate (ADA rule of 15), sometimes far more (rebound)."""
        rng = self.rng
        if rng.random() < 0.3 and self.person.archetype != "pregnancy":
            carbs = float(round(rng.uniform(25, 45)))
        else:
            carbs = float(round(rng.uniform(15, 20)))
        _add_effect(self.glucose, b, carbs * float(self.csf[b]), _K_CARBS["fast"])
        if self.pump and rng.random() < 0.6:
            self.carb_entries.append((int(self.times[b]) + int(rng.integers(0, _STEP)), carbs))

    # ---- records ---------------------------------------------------------------------------

    def emit(self) -> RecordBatch:
        rng = self.rng
        records = self.records
        glucose = _soft_floor_array(self.glucose)
        # CGM readings, vectorised up to the record objects.
        jitter = rng.integers(-4, 5, self.n)
        t_cgm = self.times + self.phase + jitter
        sensor = np.rint(glucose * (1 + self.sensor_rel) + self.sensor_white)
        keep = self.active & (t_cgm >= self.start) & (t_cgm <= self.limit)
        values = np.clip(sensor, _SENSOR_LOW, _SENSOR_HIGH)[keep]
        flags = np.where(sensor < _SENSOR_LOW, 1, np.where(sensor > _SENSOR_HIGH, 2, 0))[keep]
        flag_enum = (GlucoseFlag.NONE, GlucoseFlag.BELOW_LIMIT, GlucoseFlag.ABOVE_LIMIT)
        cgm_off = self.pump_off if self.alarm_serial != self.cgm_serial else self.zone_off
        serial = self.cgm_serial
        # Strictly increasing times within one device: unique keys by construction.
        readings = [
            CgmReading(device_serial=serial, time=t, utc_offset=o, glucose=v, flag=flag_enum[f])
            for t, o, v, f in zip(
                t_cgm[keep].tolist(),
                cgm_off[keep].tolist(),
                values.tolist(),
                flags.tolist(),
                strict=True,
            )
        ]
        self.sensor_values = np.where(
            self.active, np.clip(sensor, _SENSOR_LOW, _SENSOR_HIGH), np.nan
        )
        self.emit_sensor_events()
        self.emit_meter(glucose)
        self.emit_alarms()
        records.extend(self.boluses)
        carb_serial = self.pump_serial if self.pump else None
        if carb_serial is not None:
            records.extend(
                CarbEntry(
                    device_serial=carb_serial,
                    time=t,
                    utc_offset=int(self.pump_off[self.bin_of(t)]),
                    carbs=c,
                )
                for t, c in self.carb_entries
            )
        if self.pump:
            self.emit_basal()
            self.emit_pump_events()
        else:
            records.extend(
                Bolus(
                    device_serial=self.long_pen_serial,
                    time=t,
                    utc_offset=int(self.zone_off[self.bin_of(t)]),
                    source=BolusSource.PEN,
                    programmed=u,
                    delivered=u,
                    long_acting=True,
                )
                for t, u in self.long_doses
            )
        records.sort(key=lambda r: r.time)
        kept: list[AnyRecord] = [
            r for r in _unique_keys(records) if self.start <= r.time <= self.limit
        ]
        kept.extend(readings)
        kept.sort(key=lambda r: r.time)
        return RecordBatch(
            source=_DEMO_SOURCE, devices=self.devices, records=kept, units_in_file="mg/dL"
        )

    def local_offset(self, serial: str, b: int) -> int:
        pump = self.pump and serial == self.pump_serial
        return int(self.pump_off[b] if pump else self.zone_off[b])

    def event(
        self,
        serial: str,
        t: int,
        kind: DeviceEventKind,
        *,
        value: float | None = None,
        text: str | None = None,
        duration: int | None = None,
    ) -> DeviceEvent:
        return DeviceEvent(
            device_serial=serial,
            time=t,
            utc_offset=self.local_offset(serial, self.bin_of(t)),
            kind=kind,
            value=value,
            text=text,
            duration=duration,
        )

    def emit_sensor_events(self) -> None:
        serial = self.cgm_serial
        for s in self.sensor_starts:
            self.records.append(
                self.event(
                    serial, int(self.times[s]) + int(self.phase[s]), DeviceEventKind.SENSOR_START
                )
            )
        for e, reason in self.sensor_stops:
            self.records.append(
                self.event(serial, int(self.times[e]), DeviceEventKind.SENSOR_STOP, text=reason)
            )
        for a in self.dropouts:
            self.records.append(
                self.event(
                    self.alarm_serial,
                    int(self.times[a]) + 600,
                    DeviceEventKind.ALARM,
                    text="sensor signal lost",
                )
            )

    def emit_meter(self, glucose: FloatArray) -> None:
        """Fingersticks: the pre-meal ones the bolus calculator used, plus 1-2 a day more."""
        rng = self.rng
        extra = 1.0 if self.pump else 1.5
        for day in range(int(self.local_day[0]), int(self.local_day[-1]) + 1):
            for _ in range(int(rng.integers(0, 2)) + (1 if rng.random() < extra - 1 else 0)):
                local = float(day * _DAY + rng.choice([6.8, 22.2, 3.0, 16.0]) * _HOUR)
                t = int(self.local_to_utc(np.array([local]))[0]) + int(rng.integers(0, 1800))
                b = self.bin_of(t)
                value = float(round(float(glucose[b]) * (1 + rng.normal(0, 0.04))))
                self.meter.append((t, value))
        for t, value in sorted(self.meter):
            b = self.bin_of(t)
            flag = GlucoseFlag.NONE
            if value < _METER_LOW:
                value, flag = float(_METER_LOW), GlucoseFlag.BELOW_LIMIT
            elif value > _METER_HIGH:
                value, flag = float(_METER_HIGH), GlucoseFlag.ABOVE_LIMIT
            self.records.append(
                MeterReading(
                    device_serial=self.meter_serial,
                    time=t,
                    utc_offset=int(self.zone_off[b]),
                    glucose=value,
                    flag=flag,
                )
            )
            # Guardian 4 and G7 accept optional calibrations; some patients enter a few.
            calibrates = self.regimen.cgm_model != "Abbott FreeStyle Libre 3"
            if calibrates and self.active[b] and flag == GlucoseFlag.NONE and rng.random() < 0.12:
                self.records.append(
                    MeterReading(
                        device_serial=self.alarm_serial,
                        time=t + int(rng.integers(30, 180)),
                        utc_offset=self.local_offset(self.alarm_serial, b),
                        glucose=value,
                        source=MeterSource.CALIBRATION,
                    )
                )

    def emit_alarms(self) -> None:
        """Low, urgent low and high alerts where the CGM trace crosses the alert levels."""
        values = self.sensor_values
        for threshold, below, text, refractory in (
            (_LOW, True, "low glucose", 12),
            (_VERY_LOW - 1, True, "urgent low glucose", 6),
            (_VERY_HIGH, False, "high glucose", 36),
        ):
            beyond = values < threshold if below else values > threshold
            crossing = np.flatnonzero(beyond[1:] & ~beyond[:-1]) + 1
            last = -(10**9)
            for c in crossing.tolist():
                if c - last < refractory:
                    continue
                last = c
                t = int(self.times[c]) + int(self.phase[c]) + 5
                self.records.append(
                    self.event(self.alarm_serial, t, DeviceEventKind.ALARM, text=text)
                )

    def emit_basal(self) -> None:
        """Run-length encode per-bin delivery into segments; split at schedule boundaries."""
        n = self.n
        rate = self.rate.copy()
        for b, r in self.auto_blocks:
            stop = min(b + 6, n)
            block = self.kind[b:stop] == 3
            rate[b:stop] = np.where(block, r, rate[b:stop])
        rate[self.kind == 2] = 0.0
        sched_step = np.searchsorted(
            np.array([s for s, _ in self.schedule]), self.pump_tod, side="right"
        )
        key = np.stack(
            [
                self.kind.astype(np.float64),
                np.round(rate, 3),
                self.percent,
                sched_step.astype(np.float64),
            ]
        )
        change = np.flatnonzero(np.any(key[:, 1:] != key[:, :-1], axis=0)) + 1
        starts = np.concatenate(([0], change)).tolist()
        stops = [*starts[1:], n]
        kinds = (BasalKind.SCHEDULED, BasalKind.TEMP, BasalKind.SUSPENDED, BasalKind.AUTOMATED)
        for a, z in zip(starts, stops, strict=True):
            t0 = max(int(self.times[a]), self.start)
            t1 = min(int(self.times[z - 1]) + _STEP, self.limit)
            if t1 <= t0:
                continue
            kind = kinds[int(self.kind[a])]
            pct = float(self.percent[a]) if kind == BasalKind.TEMP else None
            self.records.append(
                BasalSegment(
                    device_serial=self.pump_serial,
                    time=t0,
                    utc_offset=int(self.pump_off[a]),
                    kind=kind,
                    rate=float(round(rate[a], 3)),
                    duration=t1 - t0,
                    percent=pct,
                    schedule_name=self.schedule_name if kind != BasalKind.AUTOMATED else None,
                )
            )

    def emit_pump_events(self) -> None:
        rng = self.rng
        serial = self.pump_serial
        medtronic = self.regimen.pump_model == "Medtronic MiniMed 780G"
        for a, b, reason in self.suspends:
            if reason != "user suspend":
                continue
            t = int(self.times[a])
            self.records.append(
                self.event(
                    serial,
                    t,
                    DeviceEventKind.SUSPEND,
                    text=reason,
                    value=float((b - a) * 5),
                    duration=(b - a) * _STEP,
                )
            )
            self.records.append(
                self.event(serial, int(self.times[b - 1]) + _STEP, DeviceEventKind.RESUME)
            )
        for occ in self.occlusions:
            self.records.append(
                self.event(
                    serial, int(self.times[occ]) + 30, DeviceEventKind.ALARM, text="occlusion"
                )
            )
        for b, _reason in self.site_changes:
            t = int(self.times[b]) + 10
            reservoir = DeviceEventKind.REWIND if medtronic else DeviceEventKind.CARTRIDGE_CHANGE
            self.records.append(self.event(serial, t, reservoir))
            self.records.append(
                self.event(
                    serial,
                    t + 150,
                    DeviceEventKind.PRIME,
                    value=round(float(rng.uniform(8, 16)), 1),
                    text="tubing",
                )
            )
            self.records.append(
                self.event(
                    serial,
                    t + 420,
                    DeviceEventKind.PRIME,
                    value=round(float(rng.uniform(0.3, 0.5)), 2),
                    text="cannula",
                )
            )
            self.records.append(self.event(serial, t + 430, DeviceEventKind.SITE_CHANGE))
        for b in self.auto_exits:
            self.records.append(
                self.event(
                    serial,
                    int(self.times[b]) + 20,
                    DeviceEventKind.AUTO_MODE_EXIT,
                    text="no sensor glucose",
                )
            )
        for b, delta in self.time_changes:
            self.records.append(
                self.event(
                    serial, int(self.times[b]) + 60, DeviceEventKind.TIME_CHANGE, duration=delta
                )
            )

    def run(self) -> RecordBatch:
        self.make_devices()
        self.make_clocks()
        self.make_settings()
        self.make_physiology()
        self.make_sensor()
        meals = self.make_meals()
        exercise = self.make_exercise()
        self.need = np.zeros(self.n)
        self.make_basal_plan(exercise)
        self.run_decisions(meals)
        return self.emit()


def _unique_keys(records: list[AnyRecord]) -> Iterator[AnyRecord]:
    """Nudge a record by whole seconds until its storage key is unique for its device.

    Ingest collapses records with the same (device, time[, kind]) key, as a re-upload must; two
    alarms in the same second are distinct events here, so the later one moves on a second.
    """
    seen: set[tuple[object, ...]] = set()
    for record in records:
        extra = (
            getattr(record, "long_acting", None)
            if isinstance(record, Bolus)
            else (getattr(record, "kind", None))
        )
        key = (type(record).__name__, record.device_serial, record.time, extra)
        while key in seen:
            record = dataclasses.replace(record, time=record.time + 1)
            key = (type(record).__name__, record.device_serial, record.time, extra)
        seen.add(key)
        yield record


def _soft_floor(glucose: float) -> float:
    """Counter-regulation: below 60 mg/dL glucose approaches 40 mg/dL asymptotically."""
    if glucose >= 60.0:
        return glucose
    return 60.0 - 20.0 * math.tanh((60.0 - glucose) / 20.0)


def _soft_floor_array(glucose: FloatArray) -> FloatArray:
    low = np.minimum(glucose, 60.0)
    return np.where(glucose >= 60.0, glucose, 60.0 - 20.0 * np.tanh((60.0 - low) / 20.0))


# --------------------------------------------------------------------------------------------
# Public entry points


def _end_seconds(end: datetime) -> int:
    if end.tzinfo is None or end.utcoffset() is None:
        raise ValueError("end must be timezone-aware (naive datetimes are ambiguous)")
    return math.floor(end.timestamp())


def generate_patient(index: int, *, days: int, seed: int, end: datetime) -> DemoPatient:
    """One demo patient with ``days`` days of records ending at ``end``.

    Args:
        index: position in the clinic (0-based); picks the archetype (``ARCHETYPES[index % 9]``),
            the MRN and device serials.
        days: length of the record window in days; every record time is in
            ``[end - days, end]`` (epoch seconds UTC).
        seed: non-negative seed; with ``index`` it seeds every random draw.
        end: timezone-aware end of the window (the clock; never read from the system).

    Returns:
        A ``DemoPatient`` whose ``batch`` holds its devices and time-ordered records
        (glucose in integer mg/dL, insulin in U, carbohydrate in g).

    Raises:
        ValueError: for a negative index or seed, ``days < 1`` or a naive ``end``.
    """
    if index < 0:
        raise ValueError(f"index must be >= 0, got {index}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    _check_seed(seed)
    end_s = _end_seconds(end)
    person = _person(index, seed, datetime.fromtimestamp(end_s, ZoneInfo("UTC")).date())
    batch = _PatientSim(person, index, days=days, seed=seed, end=end_s).run()
    return DemoPatient(
        **{name: getattr(person, name) for name in person.__dataclass_fields__}, batch=batch
    )


def generate_clinic(
    n_patients: int, *, days: int, seed: int, end: datetime
) -> Iterator[DemoPatient]:
    """Patients ``0..n_patients-1`` of the demo clinic, one at a time (see ``generate_patient``).

    Every archetype appears once ``n_patients >= len(ARCHETYPES)`` (9).

    Raises:
        ValueError: for a negative ``n_patients`` or seed, ``days < 1`` or a naive ``end``
            (checked when the iterator is created).
    """
    if n_patients < 0:
        raise ValueError(f"n_patients must be >= 0, got {n_patients}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    _check_seed(seed)
    _end_seconds(end)
    return (generate_patient(i, days=days, seed=seed, end=end) for i in range(n_patients))
