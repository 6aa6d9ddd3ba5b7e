"""numba kernels for the CGM metrics: plain numpy arrays in, plain numpy arrays out.

Layout ("ragged", one patient after another, like a CSR matrix):

* ``values``  float64 glucose, mg/dL, no NaN;
* ``times``   int64 epoch seconds UTC, strictly increasing within a patient;
* ``offsets`` int64 local UTC offset of each reading, minutes (local = time + offset * 60);
* ``indptr``  int64, length n_patients + 1: patient p owns ``[indptr[p], indptr[p + 1])``.

``clinic_portal.analytics.api`` validates and cleans the input (sort, de-duplicate, drop NaN)
before calling anything here; these functions trust it. Every kernel is ``nogil``: the API runs
chunks of patients on a small thread pool, each chunk with its own episode buffer, and merges
the buffers serially (see docs/analytics.md for why this is not ``prange``).

Clinical rules (boundaries, episode rules, MAGE, AGP) are documented in docs/analytics.md with
their sources; the comments here only point at them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SLOT_SECONDS = 300  # AGP time-of-day slot and the wear grid: 5 min
N_SLOTS = 288
N_HOURS = 24
DAY_SECONDS = 86_400
HIST_BINS = 1024  # integer mg/dL bins for the AGP counting sort (values are clipped into it)
# Local offsets are limited to UTC-12:00 .. UTC+14:00 (the API checks); local days of a window
# [start, end) therefore lie within [start - 12 h, end + 14 h).
MIN_OFFSET_SECONDS = -12 * 3600
MAX_OFFSET_SECONDS = 14 * 3600

# Columns of the integer statistics (istats[p, :]).
I_N = 0  # readings in the window
I_LT54 = 1  # consensus ranges on readings rounded half-to-even to integer mg/dL
I_54_69 = 2
I_70_180 = 3
I_181_250 = 4
I_GT250 = 5
I_BELOW_TARGET = 6  # preset target range (targets.py)
I_IN_TARGET = 7
I_ABOVE_TARGET = 8
I_ACTIVE_SLOTS = 9  # distinct 5-min UTC slots of the window that hold a reading
I_DAYS = 10  # distinct local days with a reading
I_EPISODES = 11  # 6 columns, one per episode kind, in the order below
N_ICOLS = 17

# Columns of the float statistics (fstats[p, :]).
F_MEAN = 0
F_SD = 1
F_LBGI = 2
F_HBGI = 3
F_MAGE = 4
N_FCOLS = 5

# Episode kinds (2023 international consensus, Battelino et al., Lancet Diabetes Endocrinol).
HYPO_L1 = 0
HYPO_L2 = 1
HYPO_EXTENDED = 2
HYPER_L1 = 3
HYPER_L2 = 4
HYPER_EXTENDED = 5
N_KINDS = 6

# Columns of the integer episode records (one row per episode).
E_PATIENT = 0
E_KIND = 1
E_START = 2
E_END = 3
E_FIRST = 4  # index of the first reading of the episode in the patient-major arrays
E_LAST = 5  # index of its last qualifying reading
N_ECOLS = 6

EPISODE_MIN_SECONDS = 15 * 60  # "15 consecutive minutes" to begin and to end
EXTENDED_HYPO_SECONDS = 120 * 60  # extended hypo: "> 120 consecutive minutes" < 70
EXTENDED_HYPER_WINDOW = 120 * 60  # extended hyper: >= 90 cumulative min > 250 in 120 min
EXTENDED_HYPER_SECONDS = 90 * 60
EPISODE_MAX_GAP = 45 * 60  # a longer gap closes an episode (iglu's inter_gap)

MAGE_GRID = 300  # MAGE grid step, s (iglu interpolates to 5 min)
MAGE_INTER_GAP = 45 * 60  # interpolate across gaps up to 45 min
MAGE_MAX_GAP = 180 * 60  # split segments at gaps over 180 min
MAGE_SHORT_MA = 5
MAGE_LONG_MA = 32

AGP_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@njit(cache=True, nogil=True)
def risk_terms(glucose: float) -> tuple[float, float]:
    """Kovatchev low/high BG risk of one reading (mg/dL): (rl, rh), one of them 0.

    f = 1.509 * (ln(BG)**1.084 - 5.381), r = 10 f**2 (Kovatchev 1997; iglu lbgi.R/hbgi.R).
    """
    f = 1.509 * (np.log(glucose) ** 1.084 - 5.381)
    r = 10.0 * f * f
    if f < 0.0:
        return r, 0.0
    return 0.0, r


@njit(cache=True, nogil=True)
def risk_table(size: int) -> tuple[np.ndarray, np.ndarray]:
    """rl and rh of every integer mg/dL 0..size-1 (index 0 unused), to avoid log/pow per reading."""
    low = np.zeros(size)
    high = np.zeros(size)
    for g in range(1, size):
        low[g], high[g] = risk_terms(float(g))
    return low, high


@njit(cache=True, nogil=True)
def is_clean(values: np.ndarray, times: np.ndarray, indptr: np.ndarray) -> bool:
    """True when no value is NaN and times strictly increase within every patient."""
    for p in range(indptr.shape[0] - 1):
        for i in range(indptr[p], indptr[p + 1]):
            if np.isnan(values[i]):
                return False
            if i > indptr[p] and times[i] <= times[i - 1]:
                return False
    return True


@njit(cache=True, nogil=True)
def type7_quantile(sorted_values: np.ndarray, lo: int, hi: int, q: float) -> float:
    """Quantile q of sorted_values[lo:hi] by linear interpolation (R type 7, numpy 'linear')."""
    n = hi - lo
    if n <= 0:
        return np.nan
    h = (n - 1) * q
    k = int(np.floor(h))
    if k + 1 >= n:
        return sorted_values[lo + n - 1]
    below = sorted_values[lo + k]
    return below + (h - k) * (sorted_values[lo + k + 1] - below)


@njit(cache=True, nogil=True)
def _insertion_fix(a: np.ndarray, lo: int, hi: int) -> None:
    # The counting sort orders by integer bin only; values that share a bin (non-integer input)
    # may still be out of order. Insertion sort is linear on such nearly sorted runs.
    for i in range(lo + 1, hi):
        x = a[i]
        j = i - 1
        while j >= lo and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


@njit(cache=True, nogil=True)
def smooth_cyclic_141(series: np.ndarray) -> np.ndarray:
    """Tidepool's AGP smoothing of an hourly series: (prev + 4 cur + next) / 6, midnight wraps.

    An empty neighbour drops out (weights 0-4-1 or 1-4-0, divisor 5); an empty bin, or one
    whose neighbours are both empty, is left as is (viz AGPUtils.js).
    """
    n = series.shape[0]
    out = series.copy()
    for h in range(n):
        cur = series[h]
        if np.isnan(cur):
            continue
        prev = series[(h - 1) % n]
        nxt = series[(h + 1) % n]
        if np.isnan(prev) and np.isnan(nxt):
            continue
        if np.isnan(prev):
            out[h] = (4.0 * cur + nxt) / 5.0
        elif np.isnan(nxt):
            out[h] = (prev + 4.0 * cur) / 5.0
        else:
            out[h] = (prev + 4.0 * cur + nxt) / 6.0
    return out


@njit(cache=True, nogil=True)
def _grow(ep_int: np.ndarray, ep_ext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cap = ep_int.shape[0] * 2
    new_int = np.empty((cap, N_ECOLS), dtype=np.int64)
    new_ext = np.empty(cap)
    new_int[: ep_int.shape[0]] = ep_int
    new_ext[: ep_ext.shape[0]] = ep_ext
    return new_int, new_ext


@njit(cache=True, nogil=True)
def patient_episodes(
    values: np.ndarray,
    times: np.ndarray,
    rounded: np.ndarray,
    lo: int,
    hi: int,
    sample_interval: int,
    out_int: np.ndarray,
    out_ext: np.ndarray,
) -> int:
    """Detect the six consensus episode kinds in one patient's readings ``[lo, hi)``.

    ``rounded[i - lo]`` is reading i rounded half-to-even to integer mg/dL (the classification
    value). Each reading stands for ``sample_interval`` seconds, so a run of readings lasts
    ``t_last - t_first + sample_interval``; 3 readings 5 min apart make "15 minutes", as in iglu.
    A run begins an episode when it lasts >= 15 min (> 120 min for extended hypo); the episode
    ends with the first run of non-qualifying readings lasting >= 15 min, and ends at its last
    qualifying reading + ``sample_interval`` (clipped to ``window_end``). A gap over 45 min
    closes an open episode. Extended hyper: >= 90 min of > 250 readings within 120 min, ending
    with 15 min <= 180. Episode i is written to ``out_int[i] = (kind, first reading index, last
    qualifying reading index)`` and ``out_ext[i]`` (nadir/peak, mg/dL); the buffers need
    ``N_KINDS * (hi - lo)`` rows (no kind has more episodes than readings). Returns the count.
    """
    n_ep = 0
    # Run machines for kinds 0,1,2 (hypo: rounded < threshold) and 3,4 (hyper: > threshold).
    threshold = np.array([70, 54, 70, 180, 250], dtype=np.int64)
    begin_after = np.array(
        [
            EPISODE_MIN_SECONDS,
            EPISODE_MIN_SECONDS,
            EXTENDED_HYPO_SECONDS + 1,
            EPISODE_MIN_SECONDS,
            EPISODE_MIN_SECONDS,
        ],
        dtype=np.int64,
    )
    in_run = np.zeros(5, dtype=np.bool_)
    run_first = np.zeros(5, dtype=np.int64)
    run_extreme = np.zeros(5)
    open_ep = np.zeros(5, dtype=np.bool_)
    ep_first = np.zeros(5, dtype=np.int64)
    ep_extreme = np.zeros(5)
    last_in = np.zeros(5, dtype=np.int64)
    out_first = np.zeros(5, dtype=np.int64)
    # Extended hyper: sliding 120-min window of readings; count of > 250 inside it.
    win_first = lo
    win_high = 0
    x_open = False
    x_first = 0
    x_peak = 0.0
    x_last_in = 0
    x_out_first = -1

    hypo_active = False
    hyper_active = False
    prev_t = 0
    for i in range(lo, hi):
        t = times[i]
        v = values[i]
        r = rounded[i - lo]
        if i > lo and t - prev_t > EPISODE_MAX_GAP:
            # Gap: close what is open, restart every run (iglu splits its grid here).
            for k in range(5):
                if open_ep[k]:
                    n_ep = _record(
                        out_int, out_ext, n_ep, k, ep_first[k], last_in[k], ep_extreme[k]
                    )
                    open_ep[k] = False
                in_run[k] = False
            if x_open:
                n_ep = _record(out_int, out_ext, n_ep, HYPER_EXTENDED, x_first, x_last_in, x_peak)
                x_open = False
            win_first = i
            win_high = 0
            x_out_first = -1
        prev_t = t
        # Fast path: an in-range reading with nothing running changes no state.
        if hypo_active or r < 70:
            hypo_active = r < 70
            for k in range(3):
                if r < threshold[k]:
                    if not in_run[k]:
                        in_run[k] = True
                        run_first[k] = i
                        run_extreme[k] = v
                    elif v < run_extreme[k]:
                        run_extreme[k] = v
                    last_in[k] = i
                    if open_ep[k]:
                        if v < ep_extreme[k]:
                            ep_extreme[k] = v
                    elif t - times[run_first[k]] + sample_interval >= begin_after[k]:
                        open_ep[k] = True
                        ep_first[k] = run_first[k]
                        ep_extreme[k] = run_extreme[k]
                else:
                    if in_run[k] or i == lo:
                        in_run[k] = False
                        out_first[k] = i
                    if open_ep[k] and t - times[out_first[k]] + sample_interval >= (
                        EPISODE_MIN_SECONDS
                    ):
                        n_ep = _record(
                            out_int, out_ext, n_ep, k, ep_first[k], last_in[k], ep_extreme[k]
                        )
                        open_ep[k] = False
                hypo_active = hypo_active or open_ep[k]
        if hyper_active or r > 180:
            for k in range(3, 5):
                if r > threshold[k]:
                    if not in_run[k]:
                        in_run[k] = True
                        run_first[k] = i
                        run_extreme[k] = v
                    elif v > run_extreme[k]:
                        run_extreme[k] = v
                    last_in[k] = i
                    if open_ep[k]:
                        if v > ep_extreme[k]:
                            ep_extreme[k] = v
                    elif t - times[run_first[k]] + sample_interval >= begin_after[k]:
                        open_ep[k] = True
                        ep_first[k] = run_first[k]
                        ep_extreme[k] = run_extreme[k]
                else:
                    if in_run[k] or i == lo:
                        in_run[k] = False
                        out_first[k] = i
                    if open_ep[k] and t - times[out_first[k]] + sample_interval >= (
                        EPISODE_MIN_SECONDS
                    ):
                        n_ep = _record(
                            out_int, out_ext, n_ep, k, ep_first[k], last_in[k], ep_extreme[k]
                        )
                        open_ep[k] = False
            # Extended hyper: slide the window start past readings older than 120 min.
            if r > 250:
                win_high += 1
            while times[win_first] <= t - EXTENDED_HYPER_WINDOW + sample_interval - 1:
                if rounded[win_first - lo] > 250:
                    win_high -= 1
                win_first += 1
            if x_open:
                if r > 180:
                    x_last_in = i
                    x_out_first = -1
                    if v > x_peak:
                        x_peak = v
                else:
                    if x_out_first < 0:
                        x_out_first = i
                    if t - times[x_out_first] + sample_interval >= EPISODE_MIN_SECONDS:
                        n_ep = _record(
                            out_int, out_ext, n_ep, HYPER_EXTENDED, x_first, x_last_in, x_peak
                        )
                        x_open = False
                        # Readings of a closed episode cannot start the next one.
                        win_first = i + 1
                        win_high = 0
            elif win_high * sample_interval >= EXTENDED_HYPER_SECONDS:
                x_open = True
                x_first = win_first
                while rounded[x_first - lo] <= 250:
                    x_first += 1
                x_peak = values[x_first]
                for j in range(x_first, i + 1):
                    if values[j] > x_peak:
                        x_peak = values[j]
                x_last_in = i
                x_out_first = -1
            hyper_active = r > 180 or win_high > 0 or x_open or open_ep[3] or open_ep[4]
    for k in range(5):
        if open_ep[k]:
            n_ep = _record(out_int, out_ext, n_ep, k, ep_first[k], last_in[k], ep_extreme[k])
    if x_open:
        n_ep = _record(out_int, out_ext, n_ep, HYPER_EXTENDED, x_first, x_last_in, x_peak)
    return n_ep


@njit(cache=True, nogil=True)
def _record(
    out_int: np.ndarray,
    out_ext: np.ndarray,
    n_ep: int,
    kind: int,
    first: int,
    last: int,
    extreme: float,
) -> int:
    out_int[n_ep, 0] = kind
    out_int[n_ep, 1] = first
    out_int[n_ep, 2] = last
    out_ext[n_ep] = extreme
    return n_ep + 1


@njit(cache=True, nogil=True)
def _rolling_mean(gl: np.ndarray, lo: int, hi: int, window: int, out: np.ndarray) -> None:
    # pandas rolling(window, min_periods=1).mean(): mean of the non-NaN values in the window,
    # NaN when there are none.
    s = 0.0
    c = 0
    for i in range(lo, hi):
        x = gl[i]
        if not np.isnan(x):
            s += x
            c += 1
        if i - window >= lo:
            y = gl[i - window]
            if not np.isnan(y):
                s -= y
                c -= 1
        out[i] = s / c if c > 0 else np.nan
    # iglu: the first `window` values take the value at position window - 1 (or the last one
    # when the segment is shorter).
    fill = out[lo + window - 1] if hi - lo >= window else out[hi - 1]
    for i in range(lo, min(hi, lo + window)):
        out[i] = fill


@njit(cache=True, nogil=True)
def _nan_sd(gl: np.ndarray, lo: int, hi: int) -> float:
    s = 0.0
    c = 0
    for i in range(lo, hi):
        if not np.isnan(gl[i]):
            s += gl[i]
            c += 1
    if c < 2:
        return np.nan
    m = s / c
    ss = 0.0
    for i in range(lo, hi):
        if not np.isnan(gl[i]):
            ss += (gl[i] - m) ** 2
    return np.sqrt(ss / (c - 1))


@njit(cache=True, nogil=True)
def _excursions(minmax: np.ndarray, n: int, sd: float, plus: bool) -> tuple[float, int]:
    # Fernandes et al. 2022 / iglu mage_ma: walk the alternating extrema and keep excursions
    # larger than one SD, riding a peak (nadir) while it keeps rising (falling).
    total = 0.0
    count = 0
    j = 0
    prev_j = 0
    while j < n:
        if prev_j > j:
            j += 1
            continue
        best = minmax[j] - minmax[prev_j]
        i = prev_j
        for m in range(prev_j + 1, j + 1):
            d = minmax[j] - minmax[m]
            if (plus and d > best) or (not plus and d < best):
                best = d
                i = m
        if (plus and best > sd) or (not plus and best < -sd):
            k = j
            while k < n:
                if (plus and minmax[k] >= minmax[j]) or (not plus and minmax[k] <= minmax[j]):
                    j = k
                d = minmax[k] - minmax[j]
                if (plus and d < -sd) or (not plus and d > sd) or k == n - 1:
                    total += minmax[j] - minmax[i]
                    count += 1
                    # iglu moves MAGE+ on from the turning point k but MAGE- from the nadir j.
                    prev_j = k if plus else j
                    j = k
                    break
                k += 1
        else:
            j += 1
    return total, count


@njit(cache=True, nogil=True)
def _mage_segment(
    gl: np.ndarray,
    lo: int,
    hi: int,
    ma_s: np.ndarray,
    ma_l: np.ndarray,
    cross: np.ndarray,
    cross_type: np.ndarray,
    minmax: np.ndarray,
) -> tuple[float, float]:
    """MAGE+ and MAGE- of one gap-free grid segment gl[lo:hi] (NaN where not interpolated)."""
    n = hi - lo
    sd = _nan_sd(gl, lo, hi)
    if n < 7 or n < MAGE_SHORT_MA or np.isnan(sd) or sd < 1.0:
        return np.nan, np.nan
    _rolling_mean(gl, lo, hi, MAGE_SHORT_MA, ma_s)
    _rolling_mean(gl, lo, hi, MAGE_LONG_MA, ma_l)
    # delta = short MA - long MA; a zero delta counts as missing, as in iglu.
    d0 = ma_s[lo] - ma_l[lo]
    nc = 0
    cross[nc] = lo
    cross_type[nc] = 1 if d0 > 0 else 0  # 1 = relative max, 0 = relative min
    nc += 1
    for i in range(lo + 1, hi):
        d = ma_s[i] - ma_l[i]
        if d == 0.0:
            d = np.nan
        dp = ma_s[i - 1] - ma_l[i - 1]
        if dp == 0.0:
            dp = np.nan
        if not (np.isnan(gl[i]) or np.isnan(gl[i - 1]) or np.isnan(d) or np.isnan(dp)):
            if d * dp < 0:
                cross[nc] = i
                cross_type[nc] = 0 if d < dp else 1
                nc += 1
        elif not np.isnan(d):
            c = cross[nc - 1]
            dc = ma_s[c] - ma_l[c]
            if dc == 0.0:
                dc = np.nan
            if d * dc < 0:
                cross[nc] = i
                cross_type[nc] = 0 if d < dc else 1
                nc += 1
    d_last = ma_s[hi - 1] - ma_l[hi - 1]
    cross[nc] = hi - 1
    cross_type[nc] = 1 if d_last > 0 else 0
    nc += 1
    # Extremes of the raw grid values between successive crossings; each search starts at the
    # previous extreme.
    ne = nc - 1
    s1 = cross[0]
    for e in range(ne):
        s2 = cross[e + 1]
        best = np.nan
        best_at = s1
        for m in range(s1, s2 + 1):
            x = gl[m]
            if np.isnan(x):
                continue
            if (
                np.isnan(best)
                or (cross_type[e] == 0 and x < best)
                or (cross_type[e] == 1 and x > best)
            ):
                best = x
                best_at = m
        minmax[e] = best
        s1 = best_at
    plus_sum, plus_n = _excursions(minmax, ne, sd, True)
    minus_sum, minus_n = _excursions(minmax, ne, sd, False)
    mage_plus = plus_sum / plus_n if plus_n > 0 else np.nan
    mage_minus = abs(minus_sum / minus_n) if minus_n > 0 else np.nan
    return mage_plus, mage_minus


@njit(cache=True, nogil=True)
def patient_mage(
    values: np.ndarray,
    times: np.ndarray,
    lo: int,
    hi: int,
    grid: np.ndarray,
    scratch: np.ndarray,
    cross: np.ndarray,
) -> float:
    """MAGE (mg/dL) of readings ``[lo, hi)`` (times epoch s), iglu 'ma' method.

    The readings are interpolated linearly onto the 5-min grid (multiples of 300 s, which is
    local midnight-aligned for every real UTC offset; UTC keeps the grid monotonic across clock
    changes) across
    gaps up to 45 min (grid points inside longer gaps are NaN), the grid is split into segments
    at gaps over 180 min, MAGE+ and MAGE- are computed per segment (Fernandes et al. 2022), and
    the result is the mean of all available segment values weighted by segment duration
    (iglu ``mage(direction='avg')``). ``grid``, ``scratch`` (3 x len) and ``cross``
    (2 x len, int64) are caller-owned buffers longer than the grid; NaN when nothing qualifies.
    """
    if hi - lo < 2:
        return np.nan
    local = times  # grid arithmetic only; see the docstring
    g0 = -((-local[lo]) // MAGE_GRID)  # first grid point at or after the first reading
    g_last = local[hi - 1] // MAGE_GRID
    n = int(g_last - g0 + 1)
    if n < 7:
        return np.nan
    j = lo
    for k in range(n):
        g = (g0 + k) * MAGE_GRID
        while j + 1 < hi and local[j + 1] <= g:
            j += 1
        if local[j] == g:
            grid[k] = values[j]
        elif j + 1 < hi and local[j + 1] - local[j] <= MAGE_INTER_GAP:
            w = (g - local[j]) / (local[j + 1] - local[j])
            grid[k] = values[j] + w * (values[j + 1] - values[j])
        else:
            grid[k] = np.nan
    ma_s = scratch[0]
    ma_l = scratch[1]
    minmax = scratch[2]
    cross_type = cross[1]
    weighted = 0.0
    weight = 0.0
    seg_lo = 0
    last_valid = 0
    for k in range(1, n + 1):
        if k < n and np.isnan(grid[k]):
            continue
        if k == n or (k - last_valid) * MAGE_GRID > MAGE_MAX_GAP:
            seg_hi = last_valid + 1
            plus, minus = _mage_segment(
                grid, seg_lo, seg_hi, ma_s, ma_l, cross[0], cross_type, minmax
            )
            hours = (seg_hi - 1 - seg_lo) * MAGE_GRID / 3600.0
            if not np.isnan(plus):
                weighted += plus * hours
                weight += hours
            if not np.isnan(minus):
                weighted += minus * hours
                weight += hours
            seg_lo = k
        last_valid = k
    if weight == 0.0:
        return np.nan
    return weighted / weight


@njit(cache=True, nogil=True)
def cohort_chunk(
    values: np.ndarray,
    times: np.ndarray,
    offsets: np.ndarray,
    indptr: np.ndarray,
    p0: int,
    p1: int,
    start: int,
    end: int,
    sample_interval: int,
    target_low: int,
    target_high: int,
    risk_low: np.ndarray,
    risk_high: np.ndarray,
    istats: np.ndarray,
    fstats: np.ndarray,
    agp: np.ndarray,
    agp_days: np.ndarray,
    hourly: np.ndarray,
    day_count: np.ndarray,
    day_sum: np.ndarray,
    day_in_range: np.ndarray,
    day_first: np.ndarray,
    day_last: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int]:
    """All metrics of patients ``[p0, p1)`` over the window ``[start, end)`` (epoch s UTC).

    Writes rows p of the per-patient outputs (callers give each chunk disjoint rows):
    ``istats``/``fstats`` (columns I_*/F_*), ``agp`` (p, 5, 288) type-7 quantiles
    ``AGP_QUANTILES`` per local 5-min slot, ``agp_days`` (p, 288) distinct local days per slot,
    ``hourly`` (p, 5, 24) pooled hourly quantiles after 1-4-1 smoothing, and per local day
    column ``d`` (local day number ``day_base + d``, ``day_base = (start - 12 h) // 86400``):
    readings, glucose sum, readings 70-180, index of the first and last reading.
    Returns this chunk's episode rows (int columns E_*, extreme mg/dL, number of rows).
    """
    day_base = (start + MIN_OFFSET_SECONDS) // DAY_SECONDS
    n_days = day_count.shape[1]
    n_slots_window = (end - start + SLOT_SECONDS - 1) // SLOT_SECONDS
    max_n = 1
    for p in range(p0, p1):
        max_n = max(max_n, indptr[p + 1] - indptr[p])
    rounded = np.empty(max_n, dtype=np.int64)
    slot_of = np.empty(max_n, dtype=np.int64)
    order = np.empty(max_n, dtype=np.int64)
    by_slot = np.empty(max_n)
    by_hour = np.empty(max_n)
    hist = np.zeros(HIST_BINS + 1, dtype=np.int64)
    slot_pos = np.zeros(N_SLOTS + 1, dtype=np.int64)
    hour_pos = np.zeros(N_HOURS + 1, dtype=np.int64)
    last_day = np.empty(N_SLOTS, dtype=np.int64)
    hour_q = np.empty(N_HOURS)
    mage_len = 16
    mage_grid = np.empty(mage_len)
    mage_scratch = np.empty((3, mage_len))
    mage_cross = np.empty((2, mage_len), dtype=np.int64)
    pat_int = np.empty((N_KINDS * max_n, 3), dtype=np.int64)
    pat_ext = np.empty(N_KINDS * max_n)
    ep_int = np.empty((64, N_ECOLS), dtype=np.int64)
    ep_ext = np.empty(64)
    n_ep = 0
    for p in range(p0, p1):
        i0 = indptr[p]
        i1 = indptr[p + 1]
        lo = i0 + np.searchsorted(times[i0:i1], start)
        hi = i0 + np.searchsorted(times[i0:i1], end)
        n = hi - lo
        for c in range(N_ICOLS):
            istats[p, c] = 0
        istats[p, I_N] = n
        for c in range(N_FCOLS):
            fstats[p, c] = np.nan
        hist[:] = 0
        slot_pos[:] = 0
        last_day[:] = -(1 << 62)
        agp_days[p, :] = 0
        if n == 0:
            agp[p, :, :] = np.nan
            hourly[p, :, :] = np.nan
            continue
        # Pass 1: sums, ranges, risk, wear, days, slot/bin keys for the AGP sort.
        shift = values[lo]  # shifted sums keep the variance accurate
        s1 = 0.0
        s2 = 0.0
        rl_sum = 0.0
        rh_sum = 0.0
        lt54 = 0
        lt70 = 0
        le180 = 0
        le250 = 0
        below_t = 0
        above_t = 0
        active = 0
        prev_wear_slot = -1
        for i in range(lo, hi):
            v = values[i]
            t = times[i]
            d = v - shift
            s1 += d
            s2 += d * d
            # Consensus ranges on the reading rounded half-to-even to integer mg/dL
            # (docs/analytics.md "Range boundaries").
            r = int(np.rint(v))
            rounded[i - lo] = r
            lt54 += r < 54
            lt70 += r < 70
            le180 += r <= 180
            le250 += r <= 250
            below_t += r < target_low
            above_t += r > target_high
            if v == r and 0 < r < risk_low.shape[0]:
                rl_sum += risk_low[r]
                rh_sum += risk_high[r]
            else:
                rl, rh = risk_terms(v)
                rl_sum += rl
                rh_sum += rh
            wear_slot = (t - start) // SLOT_SECONDS
            if wear_slot != prev_wear_slot:
                active += 1
                prev_wear_slot = wear_slot
            loc = t + offsets[i] * 60
            day = loc // DAY_SECONDS
            slot = (loc - day * DAY_SECONDS) // SLOT_SECONDS
            slot_of[i - lo] = slot
            slot_pos[slot + 1] += 1
            if last_day[slot] != day:
                last_day[slot] = day
                agp_days[p, slot] += 1
            hist[min(max(r, 0), HIST_BINS - 1) + 1] += 1
            dcol = min(max(day - day_base, 0), n_days - 1)
            if day_count[p, dcol] == 0:
                day_first[p, dcol] = i
            day_count[p, dcol] += 1
            day_sum[p, dcol] += v
            day_in_range[p, dcol] += (r >= 70) & (r <= 180)
            day_last[p, dcol] = i
        mean = shift + s1 / n
        fstats[p, F_MEAN] = mean
        if n > 1:
            fstats[p, F_SD] = np.sqrt(max(s2 - s1 * s1 / n, 0.0) / (n - 1))
        fstats[p, F_LBGI] = rl_sum / n
        fstats[p, F_HBGI] = rh_sum / n
        istats[p, I_LT54] = lt54
        istats[p, I_54_69] = lt70 - lt54
        istats[p, I_70_180] = le180 - lt70
        istats[p, I_181_250] = le250 - le180
        istats[p, I_GT250] = n - le250
        istats[p, I_BELOW_TARGET] = below_t
        istats[p, I_ABOVE_TARGET] = above_t
        istats[p, I_IN_TARGET] = n - below_t - above_t
        istats[p, I_ACTIVE_SLOTS] = min(active, n_slots_window)
        days = 0
        for dcol in range(n_days):
            days += day_count[p, dcol] > 0
        istats[p, I_DAYS] = days
        # AGP: counting sort by integer bin, then a stable scatter into slots and hours, so every
        # slot's (hour's) values come out sorted (exactly so for integer mg/dL).
        for b in range(HIST_BINS):
            hist[b + 1] += hist[b]
        for k in range(n):
            b = min(max(rounded[k], 0), HIST_BINS - 1)
            order[hist[b]] = k
            hist[b] += 1
        for s in range(N_SLOTS):
            slot_pos[s + 1] += slot_pos[s]
        for h in range(N_HOURS):
            hour_pos[h] = slot_pos[h * 12]
        hour_pos[N_HOURS] = n
        for k in range(n):
            j = order[k]
            s = slot_of[j]
            v = values[lo + j]
            by_slot[slot_pos[s]] = v
            slot_pos[s] += 1
            h = s // 12
            by_hour[hour_pos[h]] = v
            hour_pos[h] += 1
        # slot_pos[s] now holds the end of slot s; hour_pos[h] the end of hour h.
        s_lo = 0
        for s in range(N_SLOTS):
            s_hi = slot_pos[s]
            _insertion_fix(by_slot, s_lo, s_hi)
            for q in range(5):
                agp[p, q, s] = type7_quantile(by_slot, s_lo, s_hi, AGP_QUANTILES[q])
            s_lo = s_hi
        for q in range(5):
            h_lo = 0
            for h in range(N_HOURS):
                h_hi = hour_pos[h]
                if q == 0:
                    _insertion_fix(by_hour, h_lo, h_hi)
                hour_q[h] = type7_quantile(by_hour, h_lo, h_hi, AGP_QUANTILES[q])
                h_lo = h_hi
            hourly[p, q, :] = smooth_cyclic_141(hour_q)
        # Episodes (2023 consensus) on the rounded values.
        found = patient_episodes(values, times, rounded, lo, hi, sample_interval, pat_int, pat_ext)
        while n_ep + found > ep_int.shape[0]:
            ep_int, ep_ext = _grow(ep_int, ep_ext)
        for e in range(found):
            kind = pat_int[e, 0]
            ep_int[n_ep, E_PATIENT] = p
            ep_int[n_ep, E_KIND] = kind
            ep_int[n_ep, E_START] = times[pat_int[e, 1]]
            ep_int[n_ep, E_END] = min(times[pat_int[e, 2]] + sample_interval, end)
            ep_int[n_ep, E_FIRST] = pat_int[e, 1]
            ep_int[n_ep, E_LAST] = pat_int[e, 2]
            ep_ext[n_ep] = pat_ext[e]
            istats[p, I_EPISODES + kind] += 1
            n_ep += 1
        # MAGE on the 5-min grid.
        grid_n = (times[hi - 1] - times[lo]) // MAGE_GRID + 3
        if grid_n > mage_len:
            mage_len = max(grid_n, 2 * mage_len)
            mage_grid = np.empty(mage_len)
            mage_scratch = np.empty((3, mage_len))
            mage_cross = np.empty((2, mage_len), dtype=np.int64)
        fstats[p, F_MAGE] = patient_mage(values, times, lo, hi, mage_grid, mage_scratch, mage_cross)
    return ep_int, ep_ext, n_ep
