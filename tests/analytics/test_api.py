"""Clinical reference values, the boundary convention, episode rules and input validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clinic_portal.analytics import api
from clinic_portal.analytics.targets import TargetPreset, target_spec

START = 1_704_067_200  # 2024-01-01 00:00 UTC
END = START + 14 * 86_400


def one(values, step=300, offset=0, start=START, end=END, **kw):
    values = np.asarray(values, dtype=float)
    times = start + np.arange(values.size) * step
    (m,) = api.cgm_metrics(
        values, times, np.full(values.size, offset), [0, values.size], start=start, end=end, **kw
    )
    return m


def test_gmi_of_mean_154_is_7_percent():
    # Bergenstal et al., Diabetes Care 2018;41:2275, Table 1: mean 154 mg/dL -> GMI 7.0 %.
    m = one([154.0] * 10)
    assert round(m.gmi, 1) == 7.0
    # same table: 100 mg/dL -> 5.7 %, 250 mg/dL -> 9.3 %
    assert round(one([100.0] * 10).gmi, 1) == 5.7
    assert round(one([250.0] * 10).gmi, 1) == 9.3
    assert m.gmi_mmol_mol == pytest.approx(52.9, abs=0.2)  # 7.0 % = 53 mmol/mol (IFCC)


def test_gri_formula_and_zone():
    # Klonoff et al. JDST 2022: GRI = 3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High.
    # 1 % < 54, 3 % 54-69, 20 % 181-250, 5 % > 250 -> 3 + 7.2 + 8 + 16 = 34.2, zone B.
    values = [50.0] * 1 + [60.0] * 3 + [200.0] * 20 + [300.0] * 5 + [120.0] * 71
    m = one(values)
    assert m.gri == pytest.approx(34.2)
    assert m.gri_zone == "B"
    assert m.gri_hypo == pytest.approx(1 + 0.8 * 3) and m.gri_hyper == pytest.approx(5 + 10)
    assert one([40.0] * 10).gri == 100.0  # capped at 100
    assert [api.gri_zone(x) for x in (0, 20, 20.1, 40, 60, 80, 80.5)] == list("AABBCDE")


def test_range_boundaries_round_half_to_even():
    # 53.4 -> 53, 53.5 -> 54 (54-69), 69.5 -> 70 (in range), 180.5 -> 180 (in range),
    # 180.6 -> 181, 250.5 -> 250 (181-250), 250.6 -> 251; 10.0 mmol/L = 180.16 mg/dL stays in
    # range, as the consensus table (3.9-10.0 mmol/L) says.
    m = one([53.4, 53.5, 69.5, 180.5, 180.6, 250.5, 250.6, 10.0 * 18.01559])
    assert (m.pct_below_54, m.pct_54_69, m.pct_70_180, m.pct_181_250, m.pct_above_250) == (
        pytest.approx(12.5),
        pytest.approx(12.5),
        pytest.approx(37.5),
        pytest.approx(25.0),
        pytest.approx(12.5),
    )


def test_lbgi_hbgi_zero_point():
    # f(BG) = 0 at about 112.5 mg/dL (Kovatchev): both risks near zero.
    m = one([112.5] * 5)
    assert m.lbgi < 0.01 and m.hbgi < 0.01


@pytest.mark.parametrize(("lows", "expected"), [(2, 0), (3, 1), (24, 1)])
def test_hypo_begins_after_15_minutes(lows, expected):
    m = one([100.0] * 5 + [65.0] * lows + [100.0] * 5)
    assert m.hypo_l1_episodes == expected
    if expected:
        (e,) = [e for e in m.episodes if e.kind == "hypo_l1"]
        assert e.duration == lows * 300 and e.extreme == 65.0 and e.level == 1


def test_short_recovery_does_not_end_an_episode():
    m = one([100.0] * 3 + [60.0] * 3 + [80.0] * 2 + [60.0] * 3 + [80.0] * 3)
    (e,) = [e for e in m.episodes if e.kind == "hypo_l1"]
    assert e.start == START + 3 * 300 and e.end == START + 11 * 300


def test_extended_hypo_needs_more_than_120_minutes():
    assert one([60.0] * 24 + [100.0] * 3).hypo_extended_episodes == 0  # exactly 120 min
    m = one([60.0] * 25 + [100.0] * 3)
    assert m.hypo_extended_episodes == 1
    (e,) = [e for e in m.episodes if e.extended]
    assert e.kind == api.EpisodeKind.HYPO_EXTENDED and e.duration == 125 * 60


def test_level_2_ends_at_54():
    m = one([100.0] * 2 + [50.0] * 3 + [60.0] * 3 + [100.0] * 3)
    (l2,) = [e for e in m.episodes if e.kind == "hypo_l2"]
    (l1,) = [e for e in m.episodes if e.kind == "hypo_l1"]
    assert l2.duration == 15 * 60 and l1.duration == 30 * 60 and l2.extreme == 50.0


def test_extended_hyper_90_of_120_minutes():
    # 18 readings > 250 (90 min) among 24 (120 min), then 3 readings <= 180 end it.
    pattern = ([260.0] * 6 + [200.0] * 2) * 3  # 18 high of 24
    m = one([150.0] * 2 + pattern + [150.0] * 3)
    (e,) = [e for e in m.episodes if e.kind == "hyper_extended"]
    assert e.start == START + 2 * 300 and e.end == START + 26 * 300  # last > 180 + 5 min
    assert e.extreme == 260.0
    assert (
        one([150.0] * 2 + ([260.0] * 5 + [200.0] * 3) * 3 + [150.0] * 3).hyper_extended_episodes
        == 0
    )  # 15 of 24: 75 min


def test_gap_over_45_minutes_closes_an_episode():
    values = np.array([60.0] * 6 + [60.0] * 6)
    times = START + np.concatenate([np.arange(6) * 300, 6 * 300 + 3600 + np.arange(6) * 300])
    eps = api.episodes(values, times, np.zeros(12, np.int64), [0, 12], start=START, end=END)
    assert [e.kind for e in eps[0]].count("hypo_l1") == 2


def test_active_percent_and_days_use_the_window():
    m = one([120.0] * (7 * 288))  # 7 of 14 days worn
    assert m.active_percent == pytest.approx(50.0)
    assert m.days_with_data == 7 and not m.gmi_sufficient
    assert len(m.daily.days) == 7 and np.allclose(m.daily.pct_70_180, 100.0)


def test_agp_uses_local_time():
    # one reading at 23:00 UTC on 1 January = 00:00 on 2 January local in UTC+1: slot 0
    m = one([150.0], offset=60, start=START + 23 * 3600)
    assert m.agp.days[0] == 1 and m.agp.p50[0] == 150.0
    assert m.daily.dates()[0].isoformat() == "2024-01-02"


def test_units_conversion():
    m = one([90.0, 180.0, 270.0] * 10)
    mm = m.in_units("mmol/L")
    assert mm.mean == pytest.approx(180.0 / 18.01559)
    assert mm.agp.p50[0] == pytest.approx(m.agp.p50[0] / 18.01559)
    assert mm.in_units(api.GlucoseUnit.MGDL).mean == pytest.approx(180.0)
    assert mm.gmi == m.gmi and mm.gmi_mmol_mol == pytest.approx(m.gmi_mmol_mol)
    assert api.convert_glucose(180.0, "mmol/L") == pytest.approx(9.991, abs=1e-3)


def test_pregnancy_preset_uses_63_140():
    m = one([62.0, 63.0, 140.0, 141.0], preset="pregnancy_t1")
    assert (m.pct_below_target, m.pct_in_target, m.pct_above_target) == (25.0, 50.0, 25.0)
    assert m.preset is TargetPreset.PREGNANCY_T1
    assert dict(m.goals())["63–140 mg/dL > 70 %"] is False
    assert target_spec("older_high_risk").goals[0].limit == 50.0


def test_prepare_sorts_dedupes_and_drops_nan():
    data = api.prepare([3.0, 1.0, np.nan, 9.0, 2.0], [30, 10, 20, 10, 20], [0] * 5, [0, 5])
    assert list(data.values) == [1.0, 2.0, 3.0] and list(data.times) == [10, 20, 30]


@pytest.mark.parametrize(
    ("values", "times", "offsets", "indptr", "message"),
    [
        ([1.0], [1, 2], [0], [0, 1], "same length"),
        ([1.0], [1], [0], [0, 2], "indptr"),
        ([-1.0], [1], [0], [0, 1], "positive"),
        ([np.inf], [1], [0], [0, 1], "positive"),
        ([100.0], [1], [900], [0, 1], "utc_offsets"),
        ([100.0], [1.5], [0], [0, 1], "whole numbers"),
    ],
)
def test_invalid_input(values, times, offsets, indptr, message):
    with pytest.raises(ValueError, match=message):
        api.prepare(values, times, offsets, indptr)


def test_invalid_window():
    with pytest.raises(ValueError, match="window"):
        api.cgm_metrics([100.0], [START], [0], [0, 1], start=END, end=START)
    assert math.isnan(
        api.cgm_metrics([100.0], [START], [0], [0, 1], start=START + 1, end=END)[0].mean
    )


@pytest.mark.parametrize("interval", [0, -300, api.MAX_SAMPLE_INTERVAL + 1])
def test_invalid_sample_interval(interval):
    # Episode durations count each reading as sample_interval seconds; beyond an hour the
    # 120-min extended-hyper window would hold fewer than two readings.
    with pytest.raises(ValueError, match="sample_interval"):
        api.cgm_metrics(
            [100.0], [START], [0], [0, 1], start=START, end=END, sample_interval=interval
        )
