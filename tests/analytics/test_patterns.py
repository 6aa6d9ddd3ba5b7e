"""Pattern detection on hand-built scenarios whose findings and evidence are known exactly.

Each scenario builds records (CGM traces as piecewise-linear shapes, boluses, basal segments,
carbs, device events) and passes the matching consensus episodes as plain
``(kind, start, end, extreme)`` tuples, so the rules are tested independently of the episode
detector; one test runs the real detector (``analytics.api.episodes``) end to end.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import numpy as np
import pytest

from clinic_portal.analytics.api import Episode, EpisodeKind
from clinic_portal.analytics.pattern_thresholds import PatternThresholds
from clinic_portal.analytics.patterns import (
    Contributing,
    Finding,
    FindingCode,
    Severity,
    as_episode_spans,
    detect_patterns,
    episode_summary,
)
from clinic_portal.analytics.pump import PatientEvents
from clinic_portal.records import (
    BasalKind,
    BasalSegment,
    Bolus,
    BolusSource,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    PumpSettings,
)

H = 3600
M = 60
DAY = 86400
DAY0 = int(datetime(2024, 3, 4, tzinfo=UTC).timestamp())  # Monday 00:00, offset 0
PUMP = "PUMP1"


def at(day: int, hh: int, mm: int = 0) -> int:
    """Epoch s of local ``hh:mm`` on ``day`` days after DAY0 (offset 0)."""
    return DAY0 + day * DAY + hh * H + mm * M


def d(day: int) -> date:
    return date(2024, 3, 4 + day)


Shape = Sequence[tuple[int, float]]


def trace(start: int, end: int, shapes: Sequence[Shape] = (), base: float = 120.0, offset=0):
    """5-min CGM from ``start`` to ``end``: ``base`` except inside each piecewise-linear shape."""
    out = []
    for t in range(start, end, 300):
        g = base
        for shape in shapes:
            if shape[0][0] <= t <= shape[-1][0]:
                g = float(np.interp(t, [k[0] for k in shape], [k[1] for k in shape]))
        out.append(CgmReading(device_serial="CGM1", time=t, glucose=g, utc_offset=offset))
    return out


def bolus(t: int, units: float, source: BolusSource = BolusSource.MANUAL, **kw) -> Bolus:
    return Bolus(device_serial=PUMP, time=t, delivered=units, programmed=units, source=source, **kw)


def basal(t: int, hours: float, rate: float, kind=BasalKind.SCHEDULED, **kw) -> BasalSegment:
    return BasalSegment(
        device_serial=PUMP, time=t, duration=int(hours * H), rate=rate, kind=kind, **kw
    )


def carbs(t: int, grams: float) -> CarbEntry:
    return CarbEntry(device_serial=PUMP, time=t, carbs=grams)


def site_change(t: int) -> DeviceEvent:
    return DeviceEvent(device_serial=PUMP, time=t, kind=DeviceEventKind.SITE_CHANGE)


def patterns(records, start=DAY0, end=None, episodes=(), **settings) -> list[Finding]:
    return detect_patterns(
        PatientEvents.from_records(records),
        start,
        end if end is not None else DAY0 + 14 * DAY,
        episodes=list(episodes),
        settings=PatternThresholds(**settings),
    )


def only(findings: list[Finding], code: FindingCode) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, [f.code for f in findings]
    return matching[0]


# --- recurring lows -------------------------------------------------------------------------------


def overnight_low_nights(days=(0, 1, 2)):
    """Lows at 03:00 after a 150 % temp basal from 01:00 to 03:00 on each night in ``days``."""
    records = trace(
        DAY0,
        DAY0 + 4 * DAY,
        [[(at(i, 2), 120), (at(i, 3), 60), (at(i, 3, 30), 60), (at(i, 4), 120)] for i in days],
    )
    episodes = []
    for i in range(4):
        records += [
            basal(at(i, 0), 1, 0.8),
            basal(at(i, 1), 2, 1.2, BasalKind.TEMP, percent=150.0),
            basal(at(i, 3), 21, 0.8),
        ]
    for i in days:
        episodes.append(("hypo_l1", at(i, 3), at(i, 3, 35), 60.0))
    return records, episodes


def test_three_nights_of_lows_at_3am_are_recurring_overnight_lows():
    records, episodes = overnight_low_nights()
    findings = patterns(records, episodes=episodes)
    assert [f.code for f in findings] == [FindingCode.RECURRING_OVERNIGHT_LOWS]
    f = findings[0]
    assert f.title == "Recurring overnight lows between 02:00 and 04:00"
    assert f.window_local == (time(2, 0), time(4, 0))
    assert f.days == [d(0), d(1), d(2)]
    assert f.count == 3
    assert f.severity == Severity.MEDIUM  # 60 mg/dL: level 1
    for occ, i in zip(f.occurrences, range(3), strict=True):
        assert (occ.day, occ.start, occ.end, occ.extreme) == (d(i), at(i, 3), at(i, 3, 35), 60.0)
        assert occ.contributing == ["nocturnal", "temp basal increase before"]
    assert "nocturnal (3)" in f.summary
    assert "lowest 60 mg/dL" in f.summary


def test_recurring_lows_with_the_real_episode_detector():
    records, _ = overnight_low_nights()
    findings = detect_patterns(PatientEvents.from_records(records), DAY0, DAY0 + 4 * DAY)
    f = only(findings, FindingCode.RECURRING_OVERNIGHT_LOWS)
    assert f.window_local == (time(2, 0), time(4, 0))
    assert f.days == [d(0), d(1), d(2)]
    assert all(o.extreme == pytest.approx(60.0) for o in f.occurrences)
    assert all("temp basal increase before" in o.contributing for o in f.occurrences)


def test_level_2_low_makes_the_pattern_high_severity():
    records, episodes = overnight_low_nights()
    episodes[1] = ("hypo_l1", at(1, 3), at(1, 3, 35), 50.0)
    f = only(patterns(records, episodes=episodes), FindingCode.RECURRING_OVERNIGHT_LOWS)
    assert f.severity == Severity.HIGH


def test_two_nights_are_overnight_lows_not_a_recurring_pattern():
    records = trace(DAY0, DAY0 + 3 * DAY)
    episodes = [
        ("hypo_l1", at(0, 1), at(0, 1, 30), 62.0),
        ("hypo_l1", at(1, 4, 30), at(1, 5), 65.0),
    ]
    findings = patterns(records, episodes=episodes)
    assert [f.code for f in findings] == [FindingCode.OVERNIGHT_LOWS]
    f = findings[0]
    assert f.title == "Overnight lows (00:00–06:00)"
    assert f.window_local == (time(0, 0), time(6, 0))
    assert f.days == [d(0), d(1)]
    assert all(o.contributing == ["nocturnal"] for o in f.occurrences)


def test_lows_outside_the_window_do_not_count():
    records, episodes = overnight_low_nights()
    # The first night is before the window: two nights remain, not three.
    findings = patterns(records, start=at(1, 0), end=at(4, 0), episodes=episodes)
    assert [f.code for f in findings] == [FindingCode.OVERNIGHT_LOWS]
    assert findings[0].days == [d(1), d(2)]


def test_recurring_lows_follow_local_time_across_a_dst_change():
    # Europe/Berlin: +01:00 until 2024-03-31 01:00 UTC, +02:00 after. Lows at 03:00 local each
    # night are at 02:00 UTC, then 01:00 UTC.
    def utc(y, mo, dd, hh, mm=0):
        return int(datetime(y, mo, dd, hh, mm, tzinfo=UTC).timestamp())

    change = utc(2024, 3, 31, 1)
    lows = [utc(2024, 3, 30, 2), utc(2024, 3, 31, 1), utc(2024, 4, 1, 1)]
    start, end = utc(2024, 3, 29, 23), utc(2024, 4, 1, 22)
    records = [
        r for r in trace(start, change, base=120.0, offset=60) + trace(change, end, offset=120)
    ]
    episodes = [("hypo_l1", t, t + 30 * M, 61.0) for t in lows]
    f = only(patterns(records, start, end, episodes), FindingCode.RECURRING_OVERNIGHT_LOWS)
    assert f.window_local == (time(2, 0), time(4, 0))
    assert f.days == [date(2024, 3, 30), date(2024, 3, 31), date(2024, 4, 1)]


def test_recurring_daytime_highs():
    records = trace(DAY0, DAY0 + 5 * DAY, base=150.0)
    episodes = [("hyper_l1", at(i, 15), at(i, 16), 240.0) for i in (0, 2, 3)]
    findings = patterns(records, episodes=episodes)
    f = only(findings, FindingCode.RECURRING_HIGHS)
    assert f.title == "Recurring highs between 14:00 and 16:00"
    assert f.severity == Severity.LOW
    assert f.days == [d(0), d(2), d(3)]


# --- meals ----------------------------------------------------------------------------------------


def test_carbs_without_bolus_followed_by_a_rise_is_a_missed_meal_bolus():
    rise = [(at(0, 12), 110), (at(0, 13, 30), 250), (at(0, 14, 30), 250), (at(0, 16, 30), 110)]
    records = [*trace(DAY0, DAY0 + DAY, [rise], base=110.0), carbs(at(0, 12), 60)]
    episodes = [("hyper_l1", at(0, 12, 45), at(0, 15, 40), 250.0)]
    findings = patterns(records, episodes=episodes)
    assert [f.code for f in findings] == [FindingCode.MISSED_MEAL_BOLUS]
    f = findings[0]
    assert f.title == "Rises with no bolus (possible missed meal bolus)"
    (occ,) = f.occurrences
    assert (occ.start, occ.end, occ.extreme) == (at(0, 12, 45), at(0, 15, 40), 250.0)
    assert occ.contributing == ["rise with no bolus", "carbs without bolus"]
    assert "1 high followed a rise with no bolus; 1 of them after carbs" in f.summary


def test_the_same_rise_with_a_meal_bolus_is_no_missed_bolus():
    rise = [(at(0, 12), 110), (at(0, 13, 30), 250), (at(0, 14, 30), 250), (at(0, 16, 30), 110)]
    records = [
        *trace(DAY0, DAY0 + DAY, [rise], base=110.0),
        bolus(at(0, 11, 50), 6.0, BolusSource.WIZARD, wizard_carbs=60.0, recommended=6.0),
    ]
    episodes = [("hyper_l1", at(0, 12, 45), at(0, 15, 40), 250.0)]
    assert patterns(records, episodes=episodes) == []


def post_meal_days(days=(0, 1, 2)):
    records = trace(
        DAY0,
        DAY0 + 4 * DAY,
        [[(at(i, 8), 120), (at(i, 9, 30), 220), (at(i, 11, 30), 120)] for i in days],
    )
    for i in days:
        # Day 1: the patient took 4 U where the calculator suggested 5 U.
        given = 4.0 if i == 1 else 5.0
        records.append(
            bolus(at(i, 8), given, BolusSource.WIZARD, wizard_carbs=50.0, recommended=5.0)
        )
    return records


def test_highs_one_to_two_hours_after_bolused_meals():
    findings = patterns(post_meal_days())
    assert [f.code for f in findings] == [FindingCode.POST_MEAL_HIGHS]
    f = findings[0]
    assert f.count == 3 and f.days == [d(0), d(1), d(2)]
    assert [(o.start, o.end, o.extreme) for o in f.occurrences] == [
        (at(i, 8), at(i, 9, 30), 220.0) for i in range(3)
    ]
    assert [o.contributing for o in f.occurrences] == [
        [],
        ["wizard suggestion overridden downwards"],
        [],
    ]
    assert "1 h to 2 h after 3 of 3 meals with a bolus, on 3 days" in f.summary


def test_post_meal_highs_on_two_days_are_not_a_pattern():
    assert patterns(post_meal_days((0, 1))) == []


def test_rebound_high_after_a_treated_low():
    shape = [
        (at(0, 9, 30), 120),
        (at(0, 10), 60),
        (at(0, 10, 20), 60),
        (at(0, 11, 30), 230),
        (at(0, 13, 30), 120),
    ]
    records = [*trace(DAY0, DAY0 + DAY, [shape]), carbs(at(0, 10, 5), 40)]
    episodes = [
        ("hypo_l1", at(0, 9, 55), at(0, 10, 30), 60.0),
        ("hyper_l1", at(0, 11), at(0, 12, 30), 230.0),
    ]
    findings = patterns(records, episodes=episodes)
    assert [f.code for f in findings] == [FindingCode.REBOUND_HIGHS]
    (occ,) = findings[0].occurrences
    assert occ.contributing == ["rebound after a low", "carbs taken for the low"]
    assert "1 with carbs logged for the low" in findings[0].summary


def test_dawn_rise_on_three_mornings():
    shapes = [[(at(i, 3), 110), (at(i, 7, 30), 200), (at(i, 10), 120)] for i in range(3)]
    records = trace(DAY0, DAY0 + 3 * DAY, shapes, base=110.0)
    records += [
        bolus(at(i, 7, 30), 4.0, BolusSource.WIZARD, wizard_carbs=40.0, recommended=4.0)
        for i in range(3)
    ]
    findings = patterns(records)
    assert [f.code for f in findings] == [FindingCode.DAWN_RISE]
    f = findings[0]
    assert f.window_local == (time(0, 0), time(8, 0))
    assert f.days == [d(0), d(1), d(2)]
    # Pre-breakfast value: mean of the readings 07:15, 07:20, 07:25, 07:30.
    pre = np.mean([110 + 90 * (m / 270) for m in (255, 260, 265, 270)])
    for i, occ in enumerate(f.occurrences):
        assert (occ.start, occ.end) == (at(i, 0), at(i, 7, 30))
        assert occ.extreme == pytest.approx(pre)
        assert occ.contributing == ["dawn period"]


def test_a_rise_after_a_night_low_is_not_dawn_phenomenon():
    shapes = [
        [(at(i, 2), 110), (at(i, 3), 60), (at(i, 3, 30), 60), (at(i, 7, 30), 200), (at(i, 10), 120)]
        for i in range(3)
    ]
    records = trace(DAY0, DAY0 + 3 * DAY, shapes, base=110.0)
    assert patterns(records) == []


# --- insulin and pump use -------------------------------------------------------------------------


def stacked_scenario(low: bool):
    shape = [(at(0, 15), 200), (at(0, 16, 30), 58), (at(0, 17), 58), (at(0, 18), 120)]
    records = trace(DAY0, DAY0 + DAY, [shape] if low else [], base=200.0)
    # A logged breakfast tells that the patient records carbs on this day, so boluses without
    # carbs are corrections.
    records += [carbs(at(0, 8), 40), bolus(at(0, 8), 4.0, BolusSource.WIZARD, wizard_carbs=40.0)]
    records += [bolus(at(0, 14), 2.0), bolus(at(0, 14, 40), 2.0)]
    episodes = [("hypo_l1", at(0, 16, 25), at(0, 17, 20), 58.0)] if low else []
    return records, episodes


def test_two_corrections_40_min_apart_are_stacked():
    records, episodes = stacked_scenario(low=False)
    findings = patterns(records, episodes=episodes)
    assert [f.code for f in findings] == [FindingCode.STACKED_CORRECTIONS]
    f = findings[0]
    assert f.severity == Severity.LOW
    (occ,) = f.occurrences
    assert (occ.start, occ.end, occ.extreme) == (at(0, 14), at(0, 14, 40), None)
    assert occ.contributing == ["correction boluses stacked within active insulin time"]
    assert "less than 4 h (the active insulin time)" in f.summary


def test_stacked_corrections_followed_by_a_low():
    records, episodes = stacked_scenario(low=True)
    f = only(patterns(records, episodes=episodes), FindingCode.STACKED_CORRECTIONS)
    assert f.severity == Severity.MEDIUM
    (occ,) = f.occurrences
    assert occ.extreme == 58.0
    assert occ.contributing == [
        "correction boluses stacked within active insulin time",
        "followed by a low",
    ]
    (review,) = episode_summary(
        PatientEvents.from_records(records), DAY0, DAY0 + DAY, episodes=episodes
    )
    assert review.kind == "hypo"
    assert review.occurrence.contributing == [
        "manual bolus (no wizard)",
        "correction boluses stacked within active insulin time",
    ]


def test_corrections_outside_the_pumps_active_insulin_time_are_not_stacked():
    records, episodes = stacked_scenario(low=False)
    records.append(PumpSettings(device_serial=PUMP, time=DAY0 - DAY, active_insulin_time=30 * M))
    assert patterns(records, episodes=episodes) == []


def test_pen_boluses_on_a_day_without_carb_records_are_not_called_corrections():
    # Meal boluses of a patient who does not log carbs: 40 min apart, but nothing says they
    # are corrections.
    records = trace(DAY0, DAY0 + DAY, base=150.0)
    records += [bolus(at(0, 12), 4.0, BolusSource.PEN), bolus(at(0, 12, 40), 2.0, BolusSource.PEN)]
    assert patterns(records) == []


def test_three_hour_suspend_is_a_long_suspend():
    records = [
        *trace(DAY0, DAY0 + DAY),
        basal(at(0, 0), 10, 1.0),
        basal(at(0, 10), 3, 1.0, BasalKind.SUSPENDED),
        basal(at(0, 13), 11, 1.0),
    ]
    f = only(patterns(records), FindingCode.LONG_SUSPENDS)
    assert f.title == "Long pump suspends (1 h or more)"
    (occ,) = f.occurrences
    assert (occ.day, occ.start, occ.end, occ.extreme) == (d(0), at(0, 10), at(0, 13), None)
    assert "longest 3 h" in f.summary
    assert f.severity == Severity.LOW
    # With a high starting after the pump resumed, the suspend is "followed by a high".
    high = [("hyper_l1", at(0, 14), at(0, 15), 260.0)]
    f = only(patterns(records, episodes=high), FindingCode.LONG_SUSPENDS)
    assert f.occurrences[0].contributing == ["followed by a high"]
    assert f.occurrences[0].extreme == 260.0
    assert f.severity == Severity.MEDIUM


def test_short_suspend_is_not_reported():
    records = [basal(at(0, 0), 10, 1.0), basal(at(0, 10), 0.5, 1.0, BasalKind.SUSPENDED)]
    assert patterns(records) == []


def test_site_change_intervals_3_3_6_days_flag_the_6():
    records = [site_change(at(i, 9)) for i in (0, 3, 6, 12)]
    findings = patterns(records)
    assert [f.code for f in findings] == [FindingCode.OVERDUE_SITE_CHANGES]
    f = findings[0]
    (occ,) = f.occurrences
    assert (occ.day, occ.start, occ.end) == (d(12), at(6, 9), at(12, 9))
    assert "1 site change came more than 3.5 days" in f.summary
    assert "longest 6.0 days" in f.summary


# --- contributing events --------------------------------------------------------------------------


def test_hypo_contributing_events():
    fall = [(at(0, 9, 45), 160), (at(0, 10, 15), 130), (at(0, 10, 45), 55), (at(0, 11, 30), 120)]
    records = trace(DAY0, DAY0 + DAY, [fall], base=160.0)
    records += [
        basal(at(0, 0), 9, 0.8),
        basal(at(0, 9), 1.5, 1.2),  # scheduled rate up from 0.8 to 1.2 U/h at 09:00
        basal(at(0, 10, 30), 0.5, 1.2, BasalKind.SUSPENDED),  # suspend before low
        basal(at(0, 11), 13, 1.2),
        # Food bolus while falling 1 mg/dL/min, 1 U above the calculator's suggestion.
        bolus(at(0, 10), 5.0, BolusSource.WIZARD, wizard_carbs=30.0, recommended=4.0),
    ]
    episodes = [("hypo_l1", at(0, 10, 40), at(0, 11, 15), 55.0)]
    (review,) = episode_summary(
        PatientEvents.from_records(records), DAY0, DAY0 + DAY, episodes=episodes
    )
    assert review.occurrence.contributing == [
        "rapidly falling glucose",
        "basal rate increase before",
        "bolus while glucose falling",
        "bolus wizard food bolus",
        "wizard suggestion overridden upwards",
        "suspend before low",
    ]


def test_hyper_contributing_events():
    records = trace(
        DAY0,
        DAY0 + 6 * DAY,
        [[(at(5, 11, 55), 170), (at(5, 12), 200), (at(5, 13), 200), (at(5, 13, 5), 170)]],
        base=170.0,
    )
    records += [
        site_change(at(0, 8)),  # 5 days before the high
        basal(at(5, 0), 8, 1.0),
        basal(at(5, 8), 2, 1.0, BasalKind.SUSPENDED),  # 2 h suspend ending 2 h before the high
        basal(at(5, 10), 2, 0.5, BasalKind.TEMP, percent=50.0),
        basal(at(5, 12), 12, 1.0),
    ]
    episodes = [("hyper_l1", at(5, 12), at(5, 13, 5), 200.0)]
    (review,) = episode_summary(
        PatientEvents.from_records(records), DAY0, DAY0 + 6 * DAY, episodes=episodes
    )
    assert review.kind == "hyper"
    assert review.occurrence.contributing == [
        "delayed site change",
        "temp basal decrease before",
        "long pump suspend before",
    ]


# --- negative and edge cases ----------------------------------------------------------------------


def well_controlled_week():
    start, end = DAY0, DAY0 + 7 * DAY
    records = [
        CgmReading(
            device_serial="CGM1", time=t, glucose=125 + 25 * np.sin(2 * np.pi * (t - start) / DAY)
        )
        for t in range(start, end, 300)
    ]
    for i in range(7):
        records.append(basal(at(i, 0), 24, 0.9))
        for hh, grams in ((7, 40), (12, 60), (19, 70)):
            records.append(
                bolus(
                    at(i, hh),
                    grams / 10,
                    BolusSource.WIZARD,
                    wizard_carbs=grams,
                    recommended=grams / 10,
                )
            )
    records += [site_change(at(i, 9)) for i in (0, 3, 6)]
    return records, start, end


def test_well_controlled_week_has_no_findings():
    records, start, end = well_controlled_week()
    assert patterns(records, start, end) == []
    # ...also with the real episode detector finding the (absent) episodes itself.
    assert detect_patterns(PatientEvents.from_records(records), start, end) == []


def test_empty_inputs():
    assert detect_patterns(PatientEvents(), DAY0, DAY0 + DAY) == []
    assert detect_patterns(PatientEvents(), DAY0, DAY0 + DAY, episodes=[]) == []
    assert episode_summary(PatientEvents(), DAY0, DAY0 + DAY, episodes=[]) == []
    with pytest.raises(ValueError, match="empty report window"):
        detect_patterns(PatientEvents(), DAY0, DAY0, episodes=[])


def test_findings_are_sorted_by_severity():
    records, episodes = overnight_low_nights()
    records += [site_change(at(i, 9)) for i in (0, 6)]
    findings = patterns(records, episodes=episodes)
    assert [f.code for f in findings] == [
        FindingCode.RECURRING_OVERNIGHT_LOWS,
        FindingCode.OVERDUE_SITE_CHANGES,
    ]


# --- the episode adapter --------------------------------------------------------------------------


def test_adapter_merges_nested_levels_of_one_low():
    spans = as_episode_spans(
        [
            ("hypo_l1", 1000, 5000, 60.0),
            ("hypo_l2", 2000, 3000, 50.0),
            ("hyper_l1", 9000, 9900, 200.0),
            ("hyper_l1", 20000, 21000, 190.0),
        ]
    )
    assert [(s.kind, s.start, s.end, s.extreme) for s in spans] == [
        ("hypo", 1000, 5000, 50.0),
        ("hyper", 9000, 9900, 200.0),
        ("hyper", 20000, 21000, 190.0),
    ]


def test_adapter_reads_api_episodes():
    ep = Episode(
        kind=EpisodeKind.HYPER_L2,
        start=100,
        end=400,
        duration=300,
        extreme=260.0,
        level=2,
        extended=False,
        utc_offset=0,
        n_readings=3,
    )
    (span,) = as_episode_spans([ep.in_units("mmol/L")])
    assert (span.kind, span.start, span.end) == ("hyper", 100, 400)
    assert span.extreme == pytest.approx(260.0)


def test_adapter_rejects_malformed_episodes():
    with pytest.raises(ValueError, match="neither hypo nor hyper"):
        as_episode_spans([("sensor_gap", 0, 10, 0.0)])
    with pytest.raises(ValueError, match="ends before it starts"):
        as_episode_spans([("hypo_l1", 10, 0, 60.0)])


def test_contributing_vocabulary_is_clinical_words():
    assert str(Contributing.NOCTURNAL) == "nocturnal"
    assert str(Contributing.TEMP_BASAL_INCREASE) == "temp basal increase before"
