"""Pump/pen/meter metrics against hand-computed values on constructed records."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from clinic_portal.analytics.pump import (
    PatientEvents,
    basal_intervals,
    carb_intake,
    pump_metrics,
    site_change_times,
    suspend_intervals,
)
from clinic_portal.records import (
    BasalKind,
    BasalSegment,
    Bolus,
    BolusKind,
    BolusSource,
    CarbEntry,
    DeviceEvent,
    DeviceEventKind,
    MeterReading,
    PumpSettings,
)

H = 3600
DAY = 86400
SERIAL = "PUMP1"
# 2024-03-04 00:00 UTC: a local midnight for offset 0.
DAY0 = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp())


def basal(t: int, hours: float, rate: float, kind: BasalKind = BasalKind.SCHEDULED, **kw):
    return BasalSegment(
        device_serial=SERIAL, time=t, duration=int(hours * H), rate=rate, kind=kind, **kw
    )


def bolus(t: int, delivered: float, source: BolusSource = BolusSource.MANUAL, **kw):
    return Bolus(device_serial=SERIAL, time=t, delivered=delivered, source=source, **kw)


def event(t: int, kind: DeviceEventKind, **kw):
    return DeviceEvent(device_serial=SERIAL, time=t, kind=kind, **kw)


def metrics(records, start=DAY0, end=DAY0 + DAY):
    return pump_metrics(PatientEvents.from_records(records), start, end)


def test_flat_basal_one_unit_per_hour_is_24_units_a_day():
    m = metrics([basal(DAY0, 24, 1.0)])
    assert m.days_with_insulin_data == 1
    assert m.basal_u_per_day == pytest.approx(24.0)
    assert m.total_daily_dose_u == pytest.approx(24.0)
    assert m.bolus_u_per_day == pytest.approx(0.0)
    assert m.basal_percent == pytest.approx(100.0)
    assert m.suspend_minutes_per_day == 0.0
    assert m.suspend_count == 0
    assert m.automated_mode_percent == pytest.approx(0.0)
    assert m.daily[0].day == date(2024, 3, 4)
    assert m.daily[0].total_u == pytest.approx(24.0)


def test_two_hour_suspend_removes_two_units():
    # The pump keeps the scheduled rate on the suspended segment; suspended delivers nothing.
    m = metrics(
        [
            basal(DAY0, 10, 1.0),
            basal(DAY0 + 10 * H, 2, 1.0, BasalKind.SUSPENDED),
            basal(DAY0 + 12 * H, 12, 1.0),
        ]
    )
    assert m.basal_u_per_day == pytest.approx(22.0)
    assert m.suspend_count == 1
    assert m.suspend_minutes_per_day == pytest.approx(120.0)


def test_bolus_split_counts_and_wizard_overrides():
    t = DAY0 + 8 * H
    records = [
        basal(DAY0, 24, 0.5),  # 12 U basal
        # Wizard boluses: followed, overridden up, within pump rounding, overridden down.
        bolus(t, 5.0, BolusSource.WIZARD, programmed=5.0, recommended=5.0, wizard_carbs=50),
        bolus(t + H, 6.0, BolusSource.WIZARD, programmed=6.0, recommended=5.0),
        bolus(t + 2 * H, 4.97, BolusSource.WIZARD, programmed=4.97, recommended=5.0),
        bolus(t + 3 * H, 2.5, BolusSource.WIZARD, programmed=2.5, recommended=3.0),
        # Interrupted (occlusion): programmed as suggested, 3 U delivered. Not an override.
        bolus(t + 4 * H, 3.0, BolusSource.WIZARD, programmed=5.0, recommended=5.0),
        bolus(t + 5 * H, 1.0, BolusSource.MANUAL),
        bolus(t + 6 * H, 0.2, BolusSource.AUTOMATIC),
        bolus(t + 7 * H, 0.3, BolusSource.AUTOMATIC),
    ]
    m = metrics(records)
    bolus_total = 5 + 6 + 4.97 + 2.5 + 3 + 1 + 0.2 + 0.3
    assert m.bolus_u_per_day == pytest.approx(bolus_total)
    assert m.total_daily_dose_u == pytest.approx(12 + bolus_total)
    assert m.basal_percent == pytest.approx(100 * 12 / (12 + bolus_total))
    assert m.bolus_percent == pytest.approx(100 * bolus_total / (12 + bolus_total))
    assert m.boluses_per_day == 6  # patient-initiated only
    assert m.automated_boluses_per_day == 2
    assert m.wizard_bolus_percent == pytest.approx(100 * 5 / 6)
    assert (m.wizard_overrides_up, m.wizard_overrides_down) == (1, 1)
    assert m.wizard_override_percent == pytest.approx(100 * 2 / 5)


def test_dual_bolus_programmed_includes_the_extended_part():
    # 2 U now + 3 U extended = 5 U programmed, as suggested: not an override.
    m = metrics(
        [
            bolus(
                DAY0 + H,
                5.0,
                BolusSource.WIZARD,
                kind=BolusKind.DUAL,
                programmed=2.0,
                extended=3.0,
                recommended=5.0,
            )
        ]
    )
    assert m.wizard_override_percent == 0.0


def test_carbs_per_day_counts_a_meal_written_twice_once():
    t = DAY0 + 12 * H
    records = [
        basal(DAY0, 48, 1.0),
        CarbEntry(device_serial=SERIAL, time=t, carbs=60.0),
        bolus(t + 60, 6.0, BolusSource.WIZARD, wizard_carbs=60.0),  # same meal, logged twice
        bolus(t + 6 * H, 4.0, BolusSource.WIZARD, wizard_carbs=40.0),
        CarbEntry(device_serial=SERIAL, time=t + DAY, carbs=30.0),
    ]
    m = metrics(records, DAY0, DAY0 + 2 * DAY)
    assert m.days_with_carb_data == 2
    assert m.carbs_g_per_day == pytest.approx((60 + 40 + 30) / 2)
    times, _, grams = carb_intake(PatientEvents.from_records(records))
    assert list(grams) == [60.0, 40.0, 30.0]
    assert list(times) == [t, t + 6 * H, t + DAY]


def test_records_outside_the_window_are_ignored_and_basal_is_clipped():
    records = [
        basal(DAY0 - 6 * H, 12, 2.0),  # 6 h before the window, 6 h inside: 12 U counted
        basal(DAY0 + 6 * H, 18, 1.0),  # 18 U
        bolus(DAY0 - 60, 10.0),  # before
        bolus(DAY0 + DAY, 10.0),  # at the (exclusive) end
        bolus(DAY0 + 3 * H, 2.0),
        MeterReading(device_serial=SERIAL, time=DAY0 - 1, glucose=100.0),
        MeterReading(device_serial=SERIAL, time=DAY0 + H, glucose=100.0),
        event(DAY0 - 3 * DAY, DeviceEventKind.SITE_CHANGE),
        event(DAY0 + 2 * H, DeviceEventKind.SITE_CHANGE),
    ]
    m = metrics(records)
    assert m.basal_u_per_day == pytest.approx(30.0)
    assert m.bolus_u_per_day == pytest.approx(2.0)
    assert m.boluses_per_day == 1
    assert m.meter_readings_per_day == pytest.approx(1.0)
    assert m.site_change_intervals_days == ()  # the earlier change is outside the window


def test_empty_input_gives_none_and_zero_with_their_meaning():
    m = pump_metrics(PatientEvents(), DAY0, DAY0 + 14 * DAY)
    assert m.days_in_window == 14
    assert m.days_with_insulin_data == 0
    for name in (
        "total_daily_dose_u",
        "basal_u_per_day",
        "bolus_u_per_day",
        "basal_percent",
        "bolus_percent",
        "boluses_per_day",
        "automated_boluses_per_day",
        "wizard_bolus_percent",
        "wizard_override_percent",
        "carbs_g_per_day",
        "suspend_minutes_per_day",
        "automated_mode_percent",
        "site_change_interval_mean_days",
        "site_change_interval_max_days",
    ):
        assert getattr(m, name) is None, name
    assert m.meter_readings_per_day == 0.0  # measured: no check in 14 days
    assert (m.suspend_count, m.wizard_overrides_up, m.days_with_carb_data) == (0, 0, 0)
    assert m.site_change_intervals_days == ()
    assert m.daily == ()


def test_meter_only_window_has_no_pump_metrics():
    readings = [
        MeterReading(device_serial="METER", time=DAY0 + i * 6 * H, glucose=120.0)
        for i in range(8)  # 8 readings in 2 days
    ]
    m = metrics(readings, DAY0, DAY0 + 2 * DAY)
    assert m.meter_readings_per_day == pytest.approx(4.0)
    assert m.total_daily_dose_u is None
    assert m.suspend_minutes_per_day is None


def test_pen_long_acting_dose_counts_as_basal():
    m = metrics(
        [
            bolus(DAY0 + 22 * H, 20.0, BolusSource.PEN, long_acting=True),
            bolus(DAY0 + 8 * H, 6.0, BolusSource.PEN),
        ]
    )
    assert m.basal_u_per_day == pytest.approx(20.0)
    assert m.bolus_u_per_day == pytest.approx(6.0)
    assert m.boluses_per_day == 1
    assert m.automated_mode_percent is None  # no basal segments: no pump time


def test_time_in_automated_mode():
    m = metrics([basal(DAY0, 6, 1.0), basal(DAY0 + 6 * H, 18, 0.8, BasalKind.AUTOMATED)])
    assert m.automated_mode_percent == pytest.approx(75.0)
    assert m.basal_u_per_day == pytest.approx(6 + 18 * 0.8)


def test_site_change_intervals_3_3_6_days():
    start = DAY0
    records = [basal(DAY0, 15 * 24, 1.0)]
    for day in (0, 3, 6, 12):
        # Rewind and prime of one change minutes apart: one change.
        records.append(event(start + day * DAY + 9 * H, DeviceEventKind.REWIND))
        records.append(event(start + day * DAY + 9 * H + 300, DeviceEventKind.PRIME))
    m = metrics(records, DAY0, DAY0 + 14 * DAY)
    assert m.site_change_intervals_days == (3.0, 3.0, 6.0)
    assert m.site_change_interval_mean_days == pytest.approx(4.0)
    assert m.site_change_interval_max_days == pytest.approx(6.0)
    # The rewind is the site-change source; the prime 5 min later is the same change.
    assert len(site_change_times(PatientEvents.from_records(records))) == 4


def test_dst_day_has_23_hours_of_basal_and_local_day_boundaries():
    # Europe/Berlin, 2024-03-31: 01:00 UTC clocks jump from +01:00 to +02:00.
    change = int(datetime(2024, 3, 31, 1, tzinfo=UTC).timestamp())
    start = int(datetime(2024, 3, 29, 23, tzinfo=UTC).timestamp())  # Mar 30 00:00 local (+60)
    end = int(datetime(2024, 3, 31, 22, tzinfo=UTC).timestamp())  # Apr 1 00:00 local (+120)
    records = [
        BasalSegment(
            device_serial=SERIAL, time=start, duration=change - start, rate=1.0, utc_offset=60
        ),
        BasalSegment(
            device_serial=SERIAL, time=change, duration=end - change, rate=1.0, utc_offset=120
        ),
        # 23:30 UTC on Mar 30 is 00:30 local on Mar 31.
        bolus(int(datetime(2024, 3, 30, 23, 30, tzinfo=UTC).timestamp()), 2.0, utc_offset=60),
    ]
    m = metrics(records, start, end)
    assert [(d.day, d.basal_u, d.bolus_u) for d in m.daily] == [
        (date(2024, 3, 30), pytest.approx(24.0), 0.0),
        (date(2024, 3, 31), pytest.approx(23.0), 2.0),
    ]
    assert m.total_daily_dose_u == pytest.approx((24 + 23 + 2) / 2)


def test_basal_segments_without_duration_run_until_the_next_segment():
    records = [
        BasalSegment(device_serial=SERIAL, time=DAY0, rate=1.0),
        BasalSegment(device_serial=SERIAL, time=DAY0 + 6 * H, rate=2.0),
        BasalSegment(device_serial=SERIAL, time=DAY0 + 12 * H, rate=1.0, duration=12 * H),
        # A final start-only segment: nothing is known after its start.
        BasalSegment(device_serial=SERIAL, time=DAY0 + 30 * H, rate=5.0),
    ]
    b = basal_intervals(PatientEvents.from_records(records))
    assert list(b.stop - b.start) == [6 * H, 6 * H, 12 * H, 0]
    m = metrics(records, DAY0, DAY0 + 2 * DAY)
    assert m.basal_u_per_day == pytest.approx(6 + 12 + 12)  # one day with insulin data


def test_overlapping_segment_is_superseded_by_the_next_start():
    # A scheduled segment claims 24 h, but a temp basal starts after 2 h and runs 1 h.
    records = [
        basal(DAY0, 24, 1.0),
        basal(DAY0 + 2 * H, 1, 0.0, BasalKind.TEMP, percent=0.0),
        basal(DAY0 + 3 * H, 21, 1.0),
    ]
    assert metrics(records).basal_u_per_day == pytest.approx(23.0)


def test_suspends_from_device_events_when_no_suspended_basal():
    records = [
        event(DAY0 + H, DeviceEventKind.SUSPEND, duration=30 * 60),
        event(DAY0 + 5 * H, DeviceEventKind.SUSPEND),
        event(DAY0 + 7 * H, DeviceEventKind.RESUME),
        event(DAY0 + 20 * H, DeviceEventKind.SUSPEND),  # never resumed: length unknown
        basal(DAY0, 24, 1.0),
    ]
    ev = PatientEvents.from_records(records)
    assert suspend_intervals(ev) == [(DAY0 + H, DAY0 + H + 1800), (DAY0 + 5 * H, DAY0 + 7 * H)]
    m = pump_metrics(ev, DAY0, DAY0 + DAY)
    assert m.suspend_count == 2
    assert m.suspend_minutes_per_day == pytest.approx(150.0)


def test_from_records_collapses_duplicates_and_reads_active_insulin_time():
    b = bolus(DAY0 + H, 1.0)
    ev = PatientEvents.from_records(
        [
            b,
            b,
            PumpSettings(device_serial=SERIAL, time=DAY0 - DAY, active_insulin_time=3 * H),
            PumpSettings(device_serial=SERIAL, time=DAY0, active_insulin_time=4 * H),
        ]
    )
    assert len(ev.bolus_time) == 1
    assert ev.active_insulin_time_s == 4 * H


def test_patient_events_validates_arrays():
    with pytest.raises(ValueError, match="differ in length"):
        PatientEvents(cgm_time=np.array([1, 2]), cgm_glucose=np.array([100.0]))
    with pytest.raises(ValueError, match="not sorted"):
        PatientEvents(
            carb_time=np.array([5, 1]),
            carb_offset=np.array([0, 0]),
            carb_grams=np.array([10.0, 20.0]),
        )


def test_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty report window"):
        pump_metrics(PatientEvents(), DAY0, DAY0)
