"""The demo generator: determinism, record invariants and the clinical shape of each archetype."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from clinic_portal.demo.generator import (
    ARCHETYPES,
    DemoPatient,
    generate_clinic,
    generate_patient,
)
from clinic_portal.records import (
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
    GlucoseFlag,
    MeterReading,
    MeterSource,
    PumpSettings,
)

# Late November: the 30-day window contains the EU (26 Oct) and US (2 Nov) DST ends.
END = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
DAYS = 30
SEEDS = (3, 11)


@pytest.fixture(scope="module")
def clinics() -> dict[int, list[DemoPatient]]:
    """Two 18-patient clinics (every archetype twice) with different seeds."""
    return {seed: list(generate_clinic(18, days=DAYS, seed=seed, end=END)) for seed in SEEDS}


def all_patients(clinics: dict[int, list[DemoPatient]]) -> list[DemoPatient]:
    return [p for patients in clinics.values() for p in patients]


def of_archetype(clinics: dict[int, list[DemoPatient]], archetype: str) -> list[DemoPatient]:
    found = [p for p in all_patients(clinics) if p.archetype == archetype]
    assert len(found) == 2 * len(SEEDS)
    return found


def cgm(patient: DemoPatient) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times s UTC, local hour of day, glucose mg/dL) of the CGM readings."""
    readings = [r for r in patient.batch.records if isinstance(r, CgmReading)]
    times = np.array([r.time for r in readings], dtype=np.int64)
    offsets = np.array([r.utc_offset for r in readings], dtype=np.int64)
    glucose = np.array([r.glucose for r in readings], dtype=np.float64)
    return times, ((times + offsets * 60) % 86_400) / 3_600, glucose


def records_of(patient: DemoPatient, kind: type) -> list:
    return [r for r in patient.batch.records if isinstance(r, kind)]


def pct(mask: np.ndarray) -> float:
    return 100.0 * float(np.mean(mask))


# ---- determinism ---------------------------------------------------------------------------


def test_same_arguments_give_identical_patients() -> None:
    first = generate_patient(4, days=14, seed=5, end=END)
    second = generate_patient(4, days=14, seed=5, end=END)
    assert first.batch.records == second.batch.records
    assert first.batch.devices == second.batch.devices
    assert dataclasses.asdict(first) == dataclasses.asdict(second)


def test_different_seed_gives_different_records() -> None:
    first = generate_patient(4, days=14, seed=5, end=END)
    other = generate_patient(4, days=14, seed=6, end=END)
    assert first.batch.records != other.batch.records
    assert first.batch.devices[0].serial != other.batch.devices[0].serial


def test_a_patient_does_not_depend_on_clinic_size(clinics: dict[int, list[DemoPatient]]) -> None:
    alone = generate_patient(7, days=DAYS, seed=SEEDS[0], end=END)
    assert alone.batch.records == clinics[SEEDS[0]][7].batch.records


def test_generation_does_not_read_the_clock() -> None:
    earlier = generate_patient(2, days=7, seed=1, end=END - timedelta(days=1))
    later = generate_patient(2, days=7, seed=1, end=END)
    assert max(r.time for r in earlier.batch.records) <= (END - timedelta(days=1)).timestamp()
    assert max(r.time for r in later.batch.records) > (END - timedelta(days=1)).timestamp()


def test_naive_end_and_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_patient(0, days=7, seed=1, end=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="days"):
        generate_patient(0, days=0, seed=1, end=END)
    with pytest.raises(ValueError, match="seed"):
        generate_clinic(3, days=7, seed=-1, end=END)


# ---- population ----------------------------------------------------------------------------


@pytest.mark.parametrize("n", [9, 10])
def test_every_archetype_is_present(n: int) -> None:
    patients = list(generate_clinic(n, days=2, seed=2, end=END))
    assert {p.archetype for p in patients} == set(ARCHETYPES)


def test_device_serials_are_unique_per_patient(clinics: dict[int, list[DemoPatient]]) -> None:
    for patients in clinics.values():
        serials = [d.serial for p in patients for d in p.batch.devices]
        assert len(serials) == len(set(serials))


def test_each_record_names_a_device_of_its_batch(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in all_patients(clinics):
        serials = {d.serial for d in patient.batch.devices}
        assert {r.device_serial for r in patient.batch.records} <= serials


def test_storage_keys_are_unique(clinics: dict[int, list[DemoPatient]]) -> None:
    """Ingest collapses records sharing (device, time[, kind]); none may be lost that way."""
    for patient in all_patients(clinics):
        keys = Counter(
            (
                type(r).__name__,
                r.device_serial,
                r.time,
                r.long_acting if isinstance(r, Bolus) else getattr(r, "kind", None),
            )
            for r in patient.batch.records
        )
        assert max(keys.values()) == 1


def test_timestamps_are_inside_the_window(clinics: dict[int, list[DemoPatient]]) -> None:
    end = int(END.timestamp())
    start = end - DAYS * 86_400
    for patient in all_patients(clinics):
        for record in patient.batch.records:
            assert start <= record.time <= end
            if isinstance(record, BasalSegment):
                assert record.duration > 0
                assert record.time + record.duration <= end


def test_cgm_values_are_device_integers_within_limits(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    for patient in all_patients(clinics):
        for r in records_of(patient, CgmReading):
            assert 40 <= r.glucose <= 400
            assert r.glucose == int(r.glucose)
            if r.flag == GlucoseFlag.BELOW_LIMIT:
                assert r.glucose == 40
            if r.flag == GlucoseFlag.ABOVE_LIMIT:
                assert r.glucose == 400


def test_high_a1c_patients_hit_the_upper_sensor_limit(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    flags = [r.flag for p in of_archetype(clinics, "high_a1c") for r in records_of(p, CgmReading)]
    assert GlucoseFlag.ABOVE_LIMIT in flags


def test_cgm_cadence_is_five_minutes_with_jitter(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in all_patients(clinics):
        times, _, _ = cgm(patient)
        gaps = np.diff(times)
        assert gaps.min() > 0
        # Within a sensor session a gap is a whole number of 5-minute slots, give or take jitter.
        within = gaps[gaps < 1_500]  # a new sensor needs >= 30 min of warm-up
        assert np.all(np.abs(within - np.round(within / 300) * 300) <= 10)
        assert np.any(within % 300 != 0)


def test_good_wearers_have_about_288_readings_a_day(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    for patient in all_patients(clinics):
        if patient.archetype in {"poor_wear", "no_recent_data"}:
            continue
        per_day = len(records_of(patient, CgmReading)) / DAYS
        assert 255 <= per_day <= 288


def test_poor_wearers_are_under_70_percent_active(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    for patient in of_archetype(clinics, "poor_wear"):
        active = len(records_of(patient, CgmReading)) / (DAYS * 288)
        assert active < 0.70
        times, _, _ = cgm(patient)
        assert np.diff(times).max() > 86_400  # days without a sensor


def test_sensor_sessions_start_with_a_warm_up_gap(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "overnight_lows"):
        starts = [
            r.time
            for r in records_of(patient, DeviceEvent)
            if r.kind == DeviceEventKind.SENSOR_START
        ]
        assert len(starts) >= 2  # 10- or 14-day sensors over 30 days
        times, _, _ = cgm(patient)
        for start in starts:
            after = times[times >= start]
            if after.size:
                assert after[0] - start >= 30 * 60 - 10


def test_no_recent_data_ends_ten_days_early(clinics: dict[int, list[DemoPatient]]) -> None:
    cutoff = int(END.timestamp()) - 10 * 86_400
    for patient in of_archetype(clinics, "no_recent_data"):
        assert patient.batch.records
        assert max(r.time for r in patient.batch.records) < cutoff


def test_cgm_offsets_follow_the_patients_zone(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in all_patients(clinics):
        zone = ZoneInfo(patient.time_zone)
        # Guardian readings are stamped by the pump's clock (tested below); the others by the
        # phone or receiver, which follows the zone.
        cgm_serials = {
            d.serial
            for d in patient.batch.devices
            if d.kind == "cgm" and d.manufacturer != "Medtronic"
        }
        readings = [r for r in records_of(patient, CgmReading) if r.device_serial in cgm_serials]
        for r in readings[::97]:
            offset = datetime.fromtimestamp(r.time, zone).utcoffset()
            assert offset is not None
            assert r.utc_offset == offset.total_seconds() // 60


def test_pump_clock_is_reset_after_a_dst_change(clinics: dict[int, list[DemoPatient]]) -> None:
    berlin_pumps = [
        p for p in all_patients(clinics) if "pump" in p.tags and p.time_zone == "Europe/Berlin"
    ]
    assert berlin_pumps
    for patient in berlin_pumps:
        changes = [
            r for r in records_of(patient, DeviceEvent) if r.kind == DeviceEventKind.TIME_CHANGE
        ]
        if patient.archetype == "no_recent_data":
            continue
        assert [c.duration for c in changes] == [-3600]
        assert changes[0].utc_offset == 60


# ---- record types and consistency ----------------------------------------------------------


def test_pump_patients_have_every_record_type(clinics: dict[int, list[DemoPatient]]) -> None:
    expected = {
        CgmReading,
        MeterReading,
        Bolus,
        BasalSegment,
        CarbEntry,
        DeviceEvent,
        PumpSettings,
        CgmSettings,
    }
    pumps = [p for p in all_patients(clinics) if "pump" in p.tags]
    assert len(pumps) >= 12
    for patient in pumps:
        assert {type(r) for r in patient.batch.records} == expected


def test_mdi_patients_use_pens_and_no_pump(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "mdi"):
        kinds = {d.kind for d in patient.batch.devices}
        assert kinds == {"cgm", "meter", "pen"}
        boluses = records_of(patient, Bolus)
        assert {b.source for b in boluses} == {BolusSource.PEN}
        long_acting = [b for b in boluses if b.long_acting]
        assert DAYS - 12 <= len(long_acting) <= DAYS + 1  # once daily, some missed
        assert not records_of(patient, BasalSegment)
        assert len(records_of(patient, MeterReading)) >= DAYS


def test_wizard_boluses_add_up_and_match_carb_entries(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    overrides = 0
    for patient in all_patients(clinics):
        carbs = {(c.device_serial, c.time): c.carbs for c in records_of(patient, CarbEntry)}
        for b in records_of(patient, Bolus):
            if b.source != BolusSource.WIZARD:
                continue
            assert b.wizard_carbs is not None and b.carb_ratio and b.sensitivity
            assert carbs[(b.device_serial, b.time)] == b.wizard_carbs
            assert b.food_estimate == pytest.approx(b.wizard_carbs / b.carb_ratio, abs=0.01)
            assert b.recommended is not None and b.correction_estimate is not None
            assert b.target_low is not None and b.target_high is not None
            if b.wizard_bg is not None and b.wizard_bg > b.target_high:
                expected = (b.wizard_bg - b.target_high) / b.sensitivity
                assert b.correction_estimate == pytest.approx(expected, abs=0.01)
            if b.wizard_bg is None:
                assert b.correction_estimate == 0
            programmed_total = (b.programmed or 0) + (
                b.extended or 0 if b.kind == BolusKind.DUAL else 0
            )
            assert b.delivered <= programmed_total + 1e-9
            overrides += abs(b.delivered - b.recommended) > 0.06
    assert overrides > 20


def test_dual_and_square_boluses_carry_an_extended_part(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    kinds: Counter[BolusKind] = Counter()
    for patient in all_patients(clinics):
        for b in records_of(patient, Bolus):
            kinds[b.kind] += 1
            if b.kind in (BolusKind.DUAL, BolusKind.SQUARE):
                assert b.extended and b.duration and b.duration >= 3600
            if b.kind == BolusKind.DUAL:
                assert b.delivered == pytest.approx((b.programmed or 0) + b.extended)
            if b.kind == BolusKind.SQUARE:
                assert b.programmed == b.extended == b.delivered
    assert kinds[BolusKind.DUAL] > 0 and kinds[BolusKind.SQUARE] > 0


def test_pump_users_also_give_manual_corrections(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "high_variability"):
        manual = [b for b in records_of(patient, Bolus) if b.source == BolusSource.MANUAL]
        assert manual
        assert all(b.wizard_carbs is None and b.recommended is None for b in manual)


def test_basal_segments_follow_the_schedule(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in all_patients(clinics):
        settings = records_of(patient, PumpSettings)
        if not settings:
            continue
        schedule = settings[0].basal_schedules[settings[0].active_schedule or ""]
        assert len(schedule) >= 4
        segments = records_of(patient, BasalSegment)
        for prev, nxt in itertools.pairwise(segments):
            assert prev.time + prev.duration <= nxt.time  # no overlaps
        for seg in segments:
            local = (seg.time + seg.utc_offset * 60) % 86_400
            scheduled = [v for s, v in schedule if s <= local][-1]
            if seg.kind == BasalKind.SCHEDULED:
                assert seg.rate == pytest.approx(scheduled)
                assert seg.duration <= 86_400
            elif seg.kind == BasalKind.TEMP:
                assert seg.percent is not None
                assert seg.rate == pytest.approx(scheduled * seg.percent / 100, abs=0.001)
            elif seg.kind == BasalKind.SUSPENDED:
                assert seg.rate == 0


def test_suspends_pair_events_with_a_suspended_segment(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    seen = 0
    for patient in all_patients(clinics):
        suspended = {
            s.time for s in records_of(patient, BasalSegment) if s.kind == BasalKind.SUSPENDED
        }
        events = records_of(patient, DeviceEvent)
        resumes = {e.time for e in events if e.kind == DeviceEventKind.RESUME}
        last = max(r.time for r in patient.batch.records)
        for e in events:
            if e.kind == DeviceEventKind.SUSPEND and e.duration:
                seen += 1
                assert e.time in suspended
                if e.time + e.duration <= last:
                    assert e.time + e.duration in resumes
    assert seen > 10


def test_automated_pump_delivers_automated_basal_and_corrections(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    for patient in of_archetype(clinics, "well_controlled"):
        kinds = Counter(s.kind for s in records_of(patient, BasalSegment))
        assert kinds[BasalKind.AUTOMATED] > 10 * kinds[BasalKind.SCHEDULED]
        sources = Counter(b.source for b in records_of(patient, Bolus))
        assert sources[BolusSource.AUTOMATIC] > DAYS
        exits = [
            e for e in records_of(patient, DeviceEvent) if e.kind == DeviceEventKind.AUTO_MODE_EXIT
        ]
        assert exits  # at least the sensor warm-ups


def test_site_changes_every_three_days_and_overdue_for_high_a1c(
    clinics: dict[int, list[DemoPatient]],
) -> None:
    def intervals(patient: DemoPatient) -> np.ndarray:
        """Days between set changes (an occlusion forces an early one)."""
        times = [
            e.time
            for e in records_of(patient, DeviceEvent)
            if e.kind == DeviceEventKind.SITE_CHANGE
        ]
        return np.diff(times) / 86_400

    for patient in of_archetype(clinics, "overnight_lows"):
        days = intervals(patient)
        assert np.median(days) >= 2.3
        assert days.max() <= 3.6
        kinds = {e.kind for e in records_of(patient, DeviceEvent)}
        assert DeviceEventKind.PRIME in kinds
        assert kinds & {DeviceEventKind.REWIND, DeviceEventKind.CARTRIDGE_CHANGE}
    for patient in of_archetype(clinics, "high_a1c"):
        assert intervals(patient).max() >= 5.0


def test_alarms_and_calibrations_occur(clinics: dict[int, list[DemoPatient]]) -> None:
    texts = Counter(
        e.text
        for p in all_patients(clinics)
        for e in records_of(p, DeviceEvent)
        if e.kind == DeviceEventKind.ALARM
    )
    for text in ("low glucose", "urgent low glucose", "high glucose", "occlusion"):
        assert texts[text] > 0, text
    assert texts["sensor signal lost"] > 0
    sources = {r.source for p in all_patients(clinics) for r in records_of(p, MeterReading)}
    assert MeterSource.CALIBRATION in sources


def test_meal_boluses_sit_next_to_carb_entries(clinics: dict[int, list[DemoPatient]]) -> None:
    """Every pump carb entry is a bolus-calculator meal or a hypo treatment after a low."""
    for patient in of_archetype(clinics, "overnight_lows"):
        wizard = {b.time for b in records_of(patient, Bolus) if b.source == BolusSource.WIZARD}
        times, _, glucose = cgm(patient)
        treated = 0
        for entry in records_of(patient, CarbEntry):
            if entry.time in wizard:
                continue
            before = glucose[(times <= entry.time) & (times > entry.time - 3600)]
            # Lows during a sensor gap are treated on symptoms.
            assert before.size < 11 or before.min() < 85
            treated += 1
        assert treated > 5


def test_lows_rebound_after_treatment(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "overnight_lows"):
        times, _, glucose = cgm(patient)
        low = glucose < 70
        starts = np.flatnonzero(low[1:] & ~low[:-1]) + 1
        rebounds = []
        for s in starts:
            later = glucose[(times > times[s] + 90 * 60) & (times <= times[s] + 120 * 60)]
            if later.size:
                rebounds.append(later.mean() > glucose[s] + 20)
        assert len(rebounds) >= 10
        assert np.mean(rebounds) > 0.8


# ---- clinical shape of the archetypes ------------------------------------------------------


def test_well_controlled_meet_time_in_range(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "well_controlled"):
        _, _, g = cgm(patient)
        assert pct((g >= 70) & (g <= 180)) > 70
        assert pct(g < 70) < 4
        assert pct(g > 250) < 5


def test_overnight_lows_happen_at_night(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "overnight_lows"):
        _, hour, g = cgm(patient)
        night = hour < 6
        assert pct(g[night] < 70) >= 4
        assert pct(g[night] < 70) > pct(g[~night] < 70)


def test_post_meal_highs_spend_time_above_250(clinics: dict[int, list[DemoPatient]]) -> None:
    controlled = [pct(cgm(p)[2] > 250) for p in of_archetype(clinics, "well_controlled")]
    for patient in of_archetype(clinics, "post_meal_highs"):
        _, _, g = cgm(patient)
        assert pct(g > 250) > max(controlled) + 4
        assert pct((g >= 70) & (g <= 180)) < 70


def test_high_a1c_is_mostly_high(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "high_a1c"):
        _, _, g = cgm(patient)
        assert g.mean() > 210
        assert pct(g > 180) > 50


def test_high_variability_is_unstable(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "high_variability"):
        _, _, g = cgm(patient)
        assert 100 * g.std(ddof=1) / g.mean() > 36  # %CV threshold, Battelino 2019


def test_pregnancy_is_tight(clinics: dict[int, list[DemoPatient]]) -> None:
    for patient in of_archetype(clinics, "pregnancy"):
        assert patient.target_preset in {"pregnancy_t1", "pregnancy_gdm_t2"}
        _, _, g = cgm(patient)
        assert g.mean() < 130
        assert pct((g >= 63) & (g <= 140)) > 60


def test_mdi_control_slips_in_the_last_two_weeks(clinics: dict[int, list[DemoPatient]]) -> None:
    end = int(END.timestamp())
    for patient in of_archetype(clinics, "mdi"):
        times, _, g = cgm(patient)
        recent = times >= end - 14 * 86_400
        previous = (times < end - 14 * 86_400) & (times >= end - 28 * 86_400)
        in_range = (g >= 70) & (g <= 180)
        # TIDE's "large drop in time in range" is a fall of more than 15 points.
        assert pct(in_range[previous]) - pct(in_range[recent]) > 15
