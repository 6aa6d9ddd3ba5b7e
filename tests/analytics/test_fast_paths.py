"""The kernels' fast paths against their general counterparts and the pure-Python reference.

The cohort kernels take shortcuts that must not change any number: input validation inside the
kernels instead of ``api.prepare``, a sorting network for AGP slots of integer readings (the
general sort otherwise), and episode objects built in bulk.
"""

from __future__ import annotations

import gc
import itertools

import numpy as np
import pytest

from clinic_portal.analytics import api
from clinic_portal.analytics import kernels as k
from tests.analytics.test_kernels import START, check_against_reference

DAY = 86_400


def test_sorting_network_sorts_every_zero_one_input():
    # 0-1 principle (Knuth, TAOCP 5.3.4): a comparator network that sorts all 2**n zero-one
    # sequences sorts every sequence.
    columns = np.array(list(itertools.product((0.0, 1.0), repeat=k.NET_SIZE))).T.copy()
    for a, b in k.SORT_NET:
        lo = np.minimum(columns[a], columns[b])
        columns[b] = np.maximum(columns[a], columns[b])
        columns[a] = lo
    assert np.all(np.diff(columns, axis=0) >= 0)


def _cohort(rng, n_patients, days, step, fractional=False):
    patients = []
    for _ in range(n_patients):
        m = days * DAY // step
        t = START + np.arange(m) * step
        keep = rng.random(m) > 0.05
        g = np.clip(np.rint(150 + np.cumsum(rng.normal(0, 8, m))), 39, 401)
        if fractional:
            g = g + rng.choice([0.0, 0.25, 0.5], m)
        patients.append((g[keep], t[keep], np.full(int(keep.sum()), 60, dtype=np.int64)))
    return patients


@pytest.mark.parametrize(
    ("days", "step", "fractional"),
    [
        (3, 300, False),  # integer readings, <= 16 per slot: sorting network + histogram
        (3, 300, True),  # non-integer readings: general sort
        (4, 60, False),  # 1-min readings, 20 per slot: general sort
        (18, 300, False),  # 18 days, 18 per slot: general sort
    ],
)
def test_agp_paths_match_reference(days, step, fractional):
    rng = np.random.default_rng(days * step + fractional)
    check_against_reference(_cohort(rng, 2, days, step, fractional), end=START + days * DAY + DAY)


def _flat(patients):
    values = np.concatenate([p[0] for p in patients])
    times = np.concatenate([p[1] for p in patients])
    offsets = np.concatenate([p[2] for p in patients])
    indptr = np.concatenate([[0], np.cumsum([len(p[0]) for p in patients])]).astype(np.int64)
    return values, times, offsets, indptr


def _same(a: api.CohortResult, b: api.CohortResult) -> None:
    for name in (
        "istats", "fstats", "agp", "agp_days", "hourly", "day_count", "day_sum",
        "day_in_range", "day_first", "day_last", "episode_rows", "episode_extreme",
    ):  # fmt: skip
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("defect", ["clean", "nan", "unsorted", "duplicate", "outside"])
def test_validation_in_kernels_equals_prepare(defect):
    rng = np.random.default_rng(3)
    values, times, offsets, indptr = _flat(_cohort(rng, 3, 2, 300))
    if defect == "nan":
        values[indptr[1] + 5] = np.nan
    elif defect == "unsorted":
        times[[indptr[2] + 3, indptr[2] + 4]] = times[[indptr[2] + 4, indptr[2] + 3]]
    elif defect == "duplicate":
        times[indptr[1] + 7] = times[indptr[1] + 6]
    elif defect == "outside":  # unsorted readings outside the window only
        times[:2] = [START - 100, START - 200]
    end = START + 2 * DAY
    fast = api.compute_cohort(values, times, offsets, indptr, start=START + 600, end=end)
    prepared = api.prepare(values, times, offsets, indptr)
    general = api.compute_cohort(prepared, None, None, None, start=START + 600, end=end)
    _same(fast, general)
    assert (fast.data.values is values) == (defect == "clean")  # clean input is not copied


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"values": -1.0}, "positive"),
        ({"values": np.inf}, "positive"),
        ({"offsets": 900}, "utc_offsets"),
    ],
)
def test_invalid_readings_raise_through_the_fast_path(patch, message):
    rng = np.random.default_rng(4)
    values, times, offsets, indptr = _flat(_cohort(rng, 2, 1, 300))
    if "values" in patch:
        values[indptr[1] + 2] = patch["values"]
    else:
        offsets[indptr[1] + 2] = patch["offsets"]
    with pytest.raises(ValueError, match=message):
        api.compute_cohort(values, times, offsets, indptr, start=START, end=START + DAY)


def test_bulk_built_episodes_equal_constructed_ones():
    values = np.array([100.0] * 3 + [60.0] * 4 + [100.0] * 3)
    times = START + np.arange(values.size) * 300
    (eps,) = api.episodes(
        values, times, np.full(values.size, 60), [0, values.size], start=START, end=START + DAY
    )
    (e,) = eps
    built = api.Episode(
        kind=api.EpisodeKind.HYPO_L1,
        start=START + 900,
        end=START + 2100,
        duration=1200,
        extreme=60.0,
        level=1,
        extended=False,
        utc_offset=60,
        n_readings=4,
    )
    assert e == built and hash(e) == hash(built) and repr(e) == repr(built)
    assert e.in_units("mmol/L").extreme == pytest.approx(60.0 / 18.01559)


def test_output_arrays_are_reused_only_when_nothing_refers_to_them():
    rng = np.random.default_rng(5)
    values, times, offsets, indptr = _flat(_cohort(rng, 3, 2, 300))
    window = {"start": START, "end": START + 2 * DAY}
    first = api.compute_cohort(values, times, offsets, indptr, **window)
    second = api.compute_cohort(values + 1.0, times, offsets, indptr, **window)
    assert not np.shares_memory(first.agp, second.agp)  # both results alive
    address = second.agp.__array_interface__["data"][0]
    del first, second
    third = api.compute_cohort(values, times, offsets, indptr, **window)
    assert third.agp.__array_interface__["data"][0] == address  # the pooled array, reused
    kept = api.metrics_from_cohort(third)[1].agp.percentiles  # a view into third.agp
    snapshot = kept.copy()
    del third
    fourth = api.compute_cohort(values + 2.0, times, offsets, indptr, **window)
    assert not np.shares_memory(kept, fourth.agp)
    np.testing.assert_array_equal(kept, snapshot)
    assert np.all(fourth.day_count.sum(axis=1) == np.diff(indptr))  # zeroed, not accumulated


def test_object_building_restores_the_garbage_collector_state():
    values = np.array([100.0] * 3 + [60.0] * 4 + [100.0] * 3)
    times = START + np.arange(values.size) * 300
    args = (values, times, np.zeros(values.size, np.int64), [0, values.size])
    assert gc.isenabled()
    api.cgm_metrics(*args, start=START, end=START + DAY)
    assert gc.isenabled()
    gc.disable()
    try:
        api.episodes(*args, start=START, end=START + DAY)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_window_sums_and_signs_are_the_moving_average_signs():
    # The pairwise 4- and 8-point sums behind MAGE's moving averages on gap-free segments,
    # and the sign codes of short MA - long MA formed from them.
    rng = np.random.default_rng(5)
    gl = rng.uniform(40, 400, 100)
    w4, w8 = np.empty(100), np.empty(100)
    k._four_eight_sums(gl, w4, w8)
    np.testing.assert_allclose(w4[:97], np.convolve(gl, np.ones(4), "valid"), rtol=1e-13)
    np.testing.assert_allclose(w8[:93], np.convolve(gl, np.ones(8), "valid"), rtol=1e-13)
    signs = np.zeros(100 + 64, np.uint8)
    k._delta_signs(gl, w4, w8, signs)
    short = np.convolve(gl, np.ones(k.MAGE_SHORT_MA) / k.MAGE_SHORT_MA, "valid")[27:]
    long = np.convolve(gl, np.ones(k.MAGE_LONG_MA) / k.MAGE_LONG_MA, "valid")
    want = np.where(short > long, k.SIGN_POS, k.SIGN_NEG)
    np.testing.assert_array_equal(signs[31:100], want)


def _mage(values: np.ndarray, times: np.ndarray) -> float:
    n = (int(times[-1]) - int(times[0])) // k.MAGE_GRID + 3
    grid, scratch, cross = np.empty(n), np.empty((6, n)), np.empty((5, n), dtype=np.int64)
    return k.patient_mage(values, times, 0, values.shape[0], grid, scratch, cross)


def test_mage_on_grid_runs_split_segments_at_long_gaps():
    # Runs of on-grid readings 300 s apart take a tight loop in the grid build; a gap over
    # 180 min after such a run must still split the segments, so MAGE of the whole is the
    # duration-weighted mean of the halves' MAGE (each half: mean of MAGE+ and MAGE-). One
    # reading missing in each half takes the interpolating step inside a segment.
    steps = np.arange(300)
    glucose = np.rint(150 + 80 * np.sin(2 * np.pi * steps / 36)).astype(float)
    t0 = START + 7 * 300
    first = t0 + steps * 300
    second = first[-1] + 4 * 3600 + steps[:200] * 300
    keep1 = np.ones(300, dtype=bool)
    keep1[100] = False
    keep2 = np.ones(200, dtype=bool)
    keep2[50] = False
    v1, t1 = glucose[keep1], first[keep1]
    smaller = np.rint(150 + 40 * np.sin(2 * np.pi * steps[:200] / 36))  # other MAGE
    v2, t2 = smaller[keep2], second[keep2]
    m1, m2 = _mage(v1, t1), _mage(v2, t2)
    h1, h2 = (t1[-1] - t1[0]) / 3600, (t2[-1] - t2[0]) / 3600
    whole = _mage(np.concatenate([v1, v2]), np.concatenate([t1, t2]))
    assert m1 > 100 and 50 < m2 < 100
    assert whole == pytest.approx((m1 * h1 + m2 * h2) / (h1 + h2), rel=1e-12)


def _grid_patient(rng, days, phase, offset, missing=0.05, edges=False):
    m = days * 288
    t = START + phase + np.arange(m) * 300
    keep = rng.random(m) > missing
    if edges:  # runs at the range, target and episode thresholds
        g = np.repeat(rng.choice([53.0, 54, 69, 70, 180, 181, 250, 251], m // 6 + 1), 6)[:m]
    else:
        g = np.clip(np.rint(150 + np.cumsum(rng.normal(0, 8, m))), 39, 401)
    return g[keep], t[keep], np.full(int(keep.sum()), offset, dtype=np.int64)


@pytest.mark.parametrize(
    ("phase", "offset", "window_shift", "edges"),
    [
        (0, 0, 0, False),
        (137, 60, 0, False),  # readings on a 300-s grid with a phase (e.g. 10:02:17, 10:07:17)
        (0, 330, 7 * 3600, False),  # UTC+05:30, window starting mid-day
        (240, 345, 0, True),  # UTC+05:45, values at the thresholds
        (0, -720, 3 * 3600, False),
        (0, 840, 0, True),
    ],
)
def test_grid_path_matches_reference(phase, offset, window_shift, edges):
    # Integer readings on one 5-min grid with one offset take the day x slot grid path; every
    # output must equal the pure-Python reference.
    rng = np.random.default_rng(phase + offset + 1000)
    patients = [_grid_patient(rng, 14, phase, offset, edges=edges) for _ in range(3)]
    start = START + window_shift
    check_against_reference(patients, start=start, end=start + 14 * DAY)


def _grid_profile(values, times, offset):
    n = values.shape[0]
    out = {
        name: np.zeros((1, 20), dtype)
        for name, dtype in (
            ("day_count", np.int64), ("day_sum", float), ("day_in_range", np.int64),
            ("day_first", np.int64), ("day_last", np.int64),
        )
    }  # fmt: skip
    rounded = np.rint(values).astype(np.int64)
    done, rl, rh = k._grid_profile(
        times, rounded, n, offset, 0, 0, (START + k.MIN_OFFSET_SECONDS) // DAY,
        int(rounded.min()), int(rounded.max()), np.empty(k.NET_SIZE * k.N_SLOTS, np.int16),
        np.zeros(k.N_SLOTS, np.int64), np.zeros(k.N_HOURS * k.HIST_BINS, np.uint8),
        np.empty(k.HIST_BINS, np.int32), np.empty(k.N_SLOTS, np.int16),
        np.empty(k.N_SLOTS, np.int16), np.empty(k.N_SLOTS, np.int16), api._RISK_LOW,
        api._RISK_HIGH, np.zeros((1, 5, k.N_SLOTS)), np.zeros((1, k.N_SLOTS), np.int32),
        np.zeros((5, k.N_HOURS)), out["day_count"], out["day_sum"], out["day_in_range"],
        out["day_first"], out["day_last"],
    )  # fmt: skip
    return done, rl, rh, out


def test_grid_path_is_taken_only_for_readings_on_one_grid():
    rng = np.random.default_rng(8)
    values, times, _ = _grid_patient(rng, 14, 0, 60)
    done, rl, rh, out = _grid_profile(values, times, 60)
    assert done and out["day_count"].sum() == values.size
    assert rl == pytest.approx(sum(k.risk_terms(v)[0] for v in values), rel=1e-12)
    assert rh == pytest.approx(sum(k.risk_terms(v)[1] for v in values), rel=1e-12)
    off_grid = times.copy()
    off_grid[100] += 1  # one reading one second off the grid
    done, _, _, out = _grid_profile(values, off_grid, 60)
    assert not done and not out["day_count"].any()  # nothing written
    values, times, _ = _grid_patient(rng, 17, 0, 60)  # more local days than the network sorts
    done, _, _, out = _grid_profile(values, times, 60)
    assert not done and not out["day_count"].any()
