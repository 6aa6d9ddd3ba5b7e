"""Every kernel output against the pure-Python reference (tests/analytics/reference.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic_portal.analytics import api
from clinic_portal.analytics import kernels as k
from tests.analytics.reference import quantile7, reference, smooth

START = 1_704_067_200  # 2024-01-01 00:00 UTC
DAY = 86_400


def close(a: float, b: float, tol: float = 1e-9) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


def check_against_reference(patients, start=START, end=START + 3 * DAY, preset="standard"):
    values = np.concatenate([p[0] for p in patients]) if patients else np.empty(0)
    times = np.concatenate([p[1] for p in patients]) if patients else np.empty(0, np.int64)
    offsets = np.concatenate([p[2] for p in patients]) if patients else np.empty(0, np.int64)
    indptr = np.concatenate([[0], np.cumsum([len(p[0]) for p in patients])]).astype(np.int64)
    result = api.compute_cohort(values, times, offsets, indptr, start=start, end=end, preset=preset)
    metrics = api.metrics_from_cohort(result)
    spec = api.target_spec(preset)
    for p, (v, t, o) in enumerate(patients):
        ref = reference(list(v), list(t), list(o), start, end, (spec.target_low, spec.target_high))
        m = metrics[p]
        assert m.n_readings == ref.n
        assert close(m.mean, ref.mean)
        assert close(m.sd, ref.sd, 1e-7)
        ist = result.istats[p]
        assert list(ist[k.I_LT54 : k.I_GT250 + 1]) == ref.ranges
        assert [ist[k.I_BELOW_TARGET], ist[k.I_IN_TARGET], ist[k.I_ABOVE_TARGET]] == ref.target
        assert close(m.lbgi, ref.lbgi) and close(m.hbgi, ref.hbgi)
        assert ist[k.I_ACTIVE_SLOTS] == ref.active_slots
        assert m.days_with_data == ref.days
        np.testing.assert_allclose(m.agp.percentiles, np.array(ref.agp), rtol=1e-12)
        assert list(m.agp.days) == ref.agp_days
        np.testing.assert_allclose(m.agp.hourly, np.array(ref.hourly), rtol=1e-12)
        days = sorted(ref.daily)
        assert list(m.daily.days) == days
        assert list(m.daily.n_readings) == [ref.daily[d][0] for d in days]
        np.testing.assert_allclose(m.daily.mean, [ref.daily[d][1] / ref.daily[d][0] for d in days])
        np.testing.assert_allclose(
            m.daily.pct_70_180, [100.0 * ref.daily[d][2] / ref.daily[d][0] for d in days]
        )
        got = sorted(
            (
                api._KINDS.index(next(x for x in api._KINDS if x[0] == e.kind)),
                e.start,
                e.end,
                e.extreme,
            )
            for e in m.episodes
        )
        assert got == ref.episodes
        for i in range(len(days)):
            local, vals = m.daily.trace(i)
            assert len(vals) == ref.daily[days[i]][0]
            assert np.all(local // DAY == days[i])
    return metrics


@st.composite
def patient(draw, max_len: int = 400):
    """Random readings: 5-min cadence with gaps, jitter, duplicates, NaN, unsorted order."""
    n = draw(st.integers(0, max_len))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    step = rng.choice(
        [300, 300, 300, 600, 60, 3000, 4 * 3600], size=n, p=[0.5, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05]
    )
    t = START - 3600 + np.cumsum(step) + rng.integers(-20, 20, n)
    level = draw(st.sampled_from(["random", "walk", "constant", "boundaries"]))
    if level == "boundaries":  # runs of values at the range and episode thresholds
        edges = np.array([53, 54, 55, 69, 70, 71, 140, 141, 179, 180, 181, 249, 250, 251, 260.0])
        v = np.repeat(rng.choice(edges, n // 3 + 1), rng.integers(1, 6, n // 3 + 1))[:n]
        v = np.concatenate([v, np.full(n - len(v), 100.0)])
    elif level == "random":
        v = rng.integers(39, 402, n).astype(float)
    elif level == "walk":
        v = np.clip(np.rint(150 + np.cumsum(rng.normal(0, 15, n))), 39, 401)
    else:
        v = np.full(n, float(draw(st.integers(39, 401))))
    if n and draw(st.booleans()):
        v = v + rng.choice([0.0, 0.5, 0.25], n)  # non-integer mg/dL (converted mmol/L input)
    if n and draw(st.booleans()):
        v[rng.random(n) < 0.05] = np.nan
    offset = draw(st.sampled_from([0, 60, -300, 330, 840, -720]))
    o = np.full(n, offset, dtype=np.int64)
    if n and draw(st.booleans()):
        dup = rng.integers(0, n, n // 10)
        t = np.concatenate([t, t[dup]])
        v = np.concatenate([v, v[dup] + 1])
        o = np.concatenate([o, o[dup]])
    if draw(st.booleans()):
        perm = rng.permutation(len(t))
        t, v, o = t[perm], v[perm], o[perm]
    return v, t.astype(np.int64), o


@settings(max_examples=150, deadline=None)
@given(st.lists(patient(), min_size=0, max_size=4))
def test_random_cohorts_match_reference(patients):
    check_against_reference(patients)


def test_empty_cohort_and_empty_patient():
    assert check_against_reference([]) == []
    (m,) = check_against_reference([(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64))])
    assert m.n_readings == 0 and math.isnan(m.mean) and m.gri_zone is None
    assert np.isnan(m.agp.percentiles).all() and m.episodes == ()


def test_single_reading():
    (m,) = check_against_reference([(np.array([65.0]), np.array([START + 600]), np.array([0]))])
    assert m.mean == 65.0 and math.isnan(m.sd) and m.pct_54_69 == 100.0
    assert m.hypo_l1_episodes == 0  # one reading is 5 min, not 15
    assert m.agp.p50[2] == 65.0 and m.agp.days[2] == 1


def test_constant_day():
    t = START + np.arange(288) * 300
    (m,) = check_against_reference([(np.full(288, 120.0), t, np.zeros(288, np.int64))])
    assert m.sd == 0.0 and m.cv == 0.0 and m.pct_70_180 == 100.0 and math.isnan(m.mage)
    assert m.active_percent == pytest.approx(100 / 3)


def test_quantile_and_smoothing_helpers_match_reference():
    rng = np.random.default_rng(1)
    for n in (1, 2, 5, 14):
        xs = np.sort(rng.normal(150, 40, n))
        for q in (0.05, 0.5, 0.95):
            assert k.type7_quantile(xs, 0, n, q) == pytest.approx(quantile7(list(xs), q))
            assert k.type7_quantile(xs, 0, n, q) == pytest.approx(np.quantile(xs, q))
    series = rng.normal(150, 30, 24)
    series[[3, 4, 10, 23]] = np.nan
    np.testing.assert_allclose(k.smooth_cyclic_141(series), smooth(list(series)))


def test_risk_table_matches_direct_formula():
    low, high = k.risk_table(1024)
    for g in (40, 100, 112, 113, 250, 400):
        assert (low[g], high[g]) == k.risk_terms(float(g))
