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
their sources; the comments here only point at them. Short fixed-width vector steps (8 or 64
neighbouring elements) come from ``analytics/simd.py``; the only plain Python here builds
constant tables at import (the sorting network, the quantile indices).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from clinic_portal.analytics.simd import (
    GRID_STEP,
    copy8,
    differ_mask64,
    equal_mask8,
    max8,
    min8,
    step_breaks8,
    trailing_zeros,
)

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

MAGE_GRID = GRID_STEP  # MAGE grid step, 300 s (iglu interpolates to 5 min)
MAGE_INTER_GAP = 45 * 60  # interpolate across gaps up to 45 min
MAGE_MAX_GAP = 180 * 60  # split segments at gaps over 180 min
MAGE_SHORT_MA = 5
MAGE_LONG_MA = 32
# A moving-average difference within MAGE_TIE mg/dL of zero is a tie (iglu treats a zero
# difference as missing). The sums behind the averages round differently depending on the order
# of their additions (~1e-13 mg/dL); without this band a crossing that sits on an exact tie
# could appear or vanish with the summation order.
MAGE_TIE = 1e-9

AGP_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@njit(cache=True, nogil=True, error_model="numpy")
def risk_terms(glucose: float) -> tuple[float, float]:
    """Kovatchev low/high BG risk of one reading (mg/dL): (rl, rh), one of them 0.

    f = 1.509 * (ln(BG)**1.084 - 5.381), r = 10 f**2 (Kovatchev 1997; iglu lbgi.R/hbgi.R).
    """
    f = 1.509 * (np.log(glucose) ** 1.084 - 5.381)
    r = 10.0 * f * f
    if f < 0.0:
        return r, 0.0
    return 0.0, r


@njit(cache=True, nogil=True, error_model="numpy")
def risk_table(size: int) -> tuple[np.ndarray, np.ndarray]:
    """rl and rh of every integer mg/dL 0..size-1 (index 0 unused), to avoid log/pow per reading."""
    low = np.zeros(size)
    high = np.zeros(size)
    for g in range(1, size):
        low[g], high[g] = risk_terms(float(g))
    return low, high


@njit(cache=True, nogil=True, error_model="numpy")
def _table_risk_sums(
    rounded: np.ndarray, risk_low: np.ndarray, risk_high: np.ndarray
) -> tuple[float, float]:
    # Sums, in reading order, of the tabled Kovatchev risk of integer readings (every index
    # within the tables). Kept sequential: a reassociated (vectorised) form needs gathers,
    # which measured slower on the benchmark machine.
    rl_sum = 0.0
    rh_sum = 0.0
    for k in range(rounded.shape[0]):
        rl_sum += risk_low[rounded[k]]
        rh_sum += risk_high[rounded[k]]
    return rl_sum, rh_sum


@njit(cache=True, nogil=True, error_model="numpy")
def is_clean(values: np.ndarray, times: np.ndarray, indptr: np.ndarray) -> bool:
    """True when no value is NaN and times strictly increase within every patient."""
    for p in range(indptr.shape[0] - 1):
        for i in range(indptr[p], indptr[p + 1]):
            if np.isnan(values[i]):
                return False
            if i > indptr[p] and times[i] <= times[i - 1]:
                return False
    return True


@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy")
def smooth_cyclic_141(series: np.ndarray) -> np.ndarray:
    """Tidepool's AGP smoothing of an hourly series: (prev + 4 cur + next) / 6, midnight wraps.

    An empty neighbour drops out (weights 0-4-1 or 1-4-0, divisor 5); an empty bin, or one
    whose neighbours are both empty, is left as is (viz AGPUtils.js).
    """
    out = np.empty_like(series)
    _smooth_into(series, out)
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def _grow(ep_int: np.ndarray, ep_ext: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cap = ep_int.shape[0] * 2
    new_int = np.empty((cap, N_ECOLS), dtype=np.int64)
    new_ext = np.empty(cap)
    new_int[: ep_int.shape[0]] = ep_int
    new_ext[: ep_ext.shape[0]] = ep_ext
    return new_int, new_ext


@njit(cache=True, nogil=True, error_model="numpy")
def _smooth_into(series: np.ndarray, out: np.ndarray) -> None:
    # smooth_cyclic_141 into a caller-owned row (no allocation per patient).
    n = series.shape[0]
    for h in range(n):
        cur = series[h]
        out[h] = cur
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


# Bits of the per-reading class byte (rounded mg/dL), one per episode threshold.
BIT_LT54 = 1
BIT_LT70 = 2
BIT_GT180 = 4
BIT_GT250 = 8


# Set by patient_episodes on reading k (> 0) of the patient when the time since reading k - 1
# exceeds EPISODE_MAX_GAP: a run of either kind stops there and an open episode closes there.
BIT_GAP = 16

_ONES = np.uint64(0x0101010101010101)
_ALL = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _find(cls64: np.ndarray, i: int, n: int, flip: np.uint64, mask: np.uint64) -> int:
    # First reading k in [i, n) whose class byte, XOR-ed with ``flip``, has a bit of ``mask``
    # (n if none). Flip 0 finds the next reading with a bit set; flip = the class bit finds
    # the end of a run of that class (mask adds BIT_GAP to stop at a gap too). Eight class
    # bytes are tested at a time and the byte found by a trailing-zero count. Bytes from n up
    # to the end of the last word are zero (patient_episodes' contract).
    if i >= n:
        return n
    # Unsigned word indices: no negative-index fix-up in the loop.
    w = np.uint64(i) >> np.uint64(3)
    last_w = np.uint64(n - 1) >> np.uint64(3)
    x = (cls64[w] ^ flip) & mask & (_ALL << ((np.uint64(i) & np.uint64(7)) << np.uint64(3)))
    while x == np.uint64(0):
        w += np.uint64(1)
        if w > last_w:
            return n
        x = (cls64[w] ^ flip) & mask
    k = np.int64((w << np.uint64(3)) + (trailing_zeros(x) >> np.uint64(3)))
    return min(int(k), n)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _range_extreme(values: np.ndarray, a: int, b: int, sign: float) -> float:
    # min (sign 1) or max (sign -1) of values[a..b] (inclusive). Four running extremes break the
    # dependency chain of the comparisons (the compiler does not vectorise a floating-point
    # min); values are finite and positive (validated by the API), so the result is the same
    # float whichever way the comparisons are grouped.
    w = values[a : b + 1]
    n = w.shape[0]
    m0 = w[0]
    m1 = m0
    m2 = m0
    m3 = m0
    k = 0
    while k + 4 <= n:
        x = w[k]
        m0 = x if sign * x < sign * m0 else m0
        x = w[k + 1]
        m1 = x if sign * x < sign * m1 else m1
        x = w[k + 2]
        m2 = x if sign * x < sign * m2 else m2
        x = w[k + 3]
        m3 = x if sign * x < sign * m3 else m3
        k += 4
    while k < n:
        x = w[k]
        m0 = x if sign * x < sign * m0 else m0
        k += 1
    m0 = m1 if sign * m1 < sign * m0 else m0
    m2 = m3 if sign * m3 < sign * m2 else m2
    return m2 if sign * m2 < sign * m0 else m0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _put(
    out_int: np.ndarray,
    out_ext: np.ndarray,
    out_key: np.ndarray,
    n_ep: int,
    kind: int,
    first: int,
    last: int,
    extreme: float,
    closed_at: int,
) -> int:
    out_int[n_ep, 0] = kind
    out_int[n_ep, 1] = first
    out_int[n_ep, 2] = last
    out_ext[n_ep] = extreme
    # Episodes are reported in the order they close, kinds in kind order at the same reading.
    out_key[n_ep] = closed_at * 8 + kind
    return n_ep + 1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _follow_open(
    times: np.ndarray,
    cls: np.ndarray,
    cls64: np.ndarray,
    n: int,
    sample_interval: int,
    bit: int,
    e: int,
) -> tuple[int, int]:
    # An episode is open and its qualifying run (no gap inside) ends before reading e. Follow
    # it to its close: returns (last qualifying reading, reading at which it closes; n when it
    # is still open after the last reading). It closes at a gap, or at the first reading of a
    # non-qualifying stretch lasting >= 15 min; a shorter stretch followed by a qualifying
    # reading only extends it.
    run_end = np.uint64(bit) * _ONES
    stop = np.uint64(bit | BIT_GAP) * _ONES
    stop_byte = bit | BIT_GAP
    last = e - 1
    while e < n:
        if cls[e] & BIT_GAP:
            return last, e
        # Non-qualifying stretch from e: it reaches 15 min at the first reading at or after
        # ``due`` (a few readings on, so a short walk) unless a gap or a qualifying reading
        # comes first.
        due = times[e] + EPISODE_MIN_SECONDS - sample_interval
        j = e
        while True:
            if times[j] >= due:
                return last, j
            j += 1
            if j >= n:
                return last, n
            if cls[j] & stop_byte:
                break
        if cls[j] & BIT_GAP:
            return last, j
        # Qualifying again: the episode goes on to the end of this run.
        e = _find(cls64, j + 1, n, run_end, stop)
        last = e - 1
    return last, n


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _threshold_kind(
    values: np.ndarray,
    times: np.ndarray,
    cls: np.ndarray,
    cls64: np.ndarray,
    n: int,
    base: int,
    sample_interval: int,
    kind: int,
    bit: int,
    hypo: bool,
    begin_after: int,
    out_int: np.ndarray,
    out_ext: np.ndarray,
    out_key: np.ndarray,
    n_ep: int,
) -> int:
    # One kind, qualifying when the class byte has ``bit``. With no episode open only a
    # qualifying run can matter: find it, measure it, and open an episode if it lasts long
    # enough (its first reading begins the episode); then follow the episode to its close.
    # ``values``/``times`` are 0-based views of the patient, indices recorded + base.
    qual = np.uint64(bit) * _ONES
    run_end = qual
    stop = np.uint64(bit | BIT_GAP) * _ONES
    i = 0
    while True:
        s = _find(cls64, i, n, np.uint64(0), qual)
        if s >= n:
            break
        e = _find(cls64, s + 1, n, run_end, stop)
        if times[e - 1] - times[s] + sample_interval < begin_after:
            i = e
            continue
        last, closed = _follow_open(times, cls, cls64, n, sample_interval, bit, e)
        ext = _range_extreme(values, s, last, 1.0 if hypo else -1.0)
        n_ep = _put(
            out_int, out_ext, out_key, n_ep, kind, base + s, base + last, ext, base + closed
        )
        # After a gap close the gap's reading may begin the next run; after a normal close the
        # closing reading does not qualify.
        i = closed
    return n_ep


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _high_count(cls64: np.ndarray, a: int, b: int) -> int:
    # Readings > 250 among [a, b) (a < b): the BIT_GT250 bits of the class words, summed a word
    # at a time (each byte holds 0 or 1 after the shift; a multiply adds the 8 bytes).
    ones = _ONES
    w = a >> 3
    wl = (b - 1) >> 3
    total = 0
    lo_mask = _ALL << np.uint64((a & 7) * 8)
    while w <= wl:
        x = (cls64[w] >> np.uint64(3)) & ones
        if w == a >> 3:
            x &= lo_mask
        if w == wl:
            x &= _ALL >> np.uint64((7 - ((b - 1) & 7)) * 8)
        total += int((x * ones) >> np.uint64(56))
        w += 1
    return total


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _window_start(times: np.ndarray, floor: int, i: int, sample_interval: int) -> int:
    # First reading k >= floor whose time is within the 120-min window ending at reading i
    # (t_k >= t_i - 120 min + one sample interval), by bisection over [floor, i].
    lim = times[i] - EXTENDED_HYPER_WINDOW + sample_interval
    a = floor
    b = i
    while a < b:
        m = (a + b) >> 1
        if times[m] >= lim:
            b = m
        else:
            a = m + 1
    return a


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _extended_hyper_kind(
    values: np.ndarray,
    times: np.ndarray,
    cls: np.ndarray,
    cls64: np.ndarray,
    n: int,
    base: int,
    sample_interval: int,
    out_int: np.ndarray,
    out_ext: np.ndarray,
    out_key: np.ndarray,
    n_ep: int,
) -> int:
    # The episode begins at the first reading i at which the 120-min window ending at i holds
    # enough > 250 readings; the window never reaches back before ``floor`` (the reading after
    # the last close, or the last gap). That count can only grow at a > 250 reading, so the
    # machine goes from run of > 250 readings to run, and tests a run reading by reading only
    # when the readings before it in the window plus the whole run could be enough.
    high = np.uint64(BIT_GT250) * _ONES
    high_or_gap = np.uint64(BIT_GT250 | BIT_GAP) * _ONES
    floor = 0
    i = 0
    while True:
        s = _find(cls64, i, n, np.uint64(0), high_or_gap)
        if s >= n:
            break
        if cls[s] & BIT_GAP:
            floor = s
            if not (cls[s] & BIT_GT250):
                i = s + 1
                continue
        e = _find(cls64, s + 1, n, high, high_or_gap)
        a = _window_start(times, floor, s, sample_interval)
        before = _high_count(cls64, a, s) if a < s else 0
        if (before + e - s) * sample_interval < EXTENDED_HYPER_SECONDS:
            i = e
            continue
        # Walk the run: count at reading k = readings > 250 in [a, k], a following the window.
        count = before
        opened = -1
        for k in range(s, e):
            count += 1
            lim = times[k] - EXTENDED_HYPER_WINDOW + sample_interval
            while times[a] < lim:
                count -= (cls[a] & BIT_GT250) != 0
                a += 1
            if count * sample_interval >= EXTENDED_HYPER_SECONDS:
                opened = k
                break
        if opened < 0:
            i = e
            continue
        first = _find(cls64, a, n, np.uint64(0), high)
        # Open from ``opened``: it goes on over the > 180 run that holds it.
        e180 = _find(
            cls64, opened + 1, n, np.uint64(BIT_GT180) * _ONES,
            np.uint64(BIT_GT180 | BIT_GAP) * _ONES,
        )  # fmt: skip
        last, closed = _follow_open(times, cls, cls64, n, sample_interval, BIT_GT180, e180)
        n_ep = _put(
            out_int, out_ext, out_key, n_ep, HYPER_EXTENDED, base + first, base + last,
            _range_extreme(values, first, last, -1.0), base + closed,
        )  # fmt: skip
        if closed < n and cls[closed] & BIT_GAP:
            # Closed by a gap: the window restarts at the gap's reading, which may count.
            floor = closed
            i = closed
        else:
            # Readings of a closed episode cannot start the next one.
            floor = closed + 1
            i = closed + 1
    return n_ep


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _mark_gaps(times: np.ndarray, cls: np.ndarray, cls64: np.ndarray, n: int) -> int:
    # BIT_GAP on every reading after a gap > EPISODE_MAX_GAP (branch-free, vectorises), and the
    # union of all class bits of the patient (a kind whose bit never occurs is skipped).
    for k in range(1, n):
        cls[k] |= np.uint8((times[k] - times[k - 1] > EPISODE_MAX_GAP) * BIT_GAP)
    seen = np.uint64(0)
    for w in range((n + 7) >> 3):
        seen |= cls64[w]
    seen |= seen >> np.uint64(32)
    seen |= seen >> np.uint64(16)
    seen |= seen >> np.uint64(8)
    return int(seen & np.uint64(0xFF))


@njit(cache=True, nogil=True, error_model="numpy")
def patient_episodes(
    values: np.ndarray,
    times: np.ndarray,
    rounded: np.ndarray,
    cls: np.ndarray,
    lo: int,
    hi: int,
    sample_interval: int,
    out_int: np.ndarray,
    out_ext: np.ndarray,
    out_key: np.ndarray,
) -> int:
    """Detect the six consensus episode kinds in one patient's readings ``[lo, hi)``.

    ``rounded[i - lo]`` is reading i rounded half-to-even to integer mg/dL (the classification
    value) and ``cls[i - lo]`` its class byte (BIT_* set for < 54, < 70, > 180, > 250; ``cls``
    is zero-padded to a multiple of 8 bytes). ``cls`` is also this function's scratch: it sets
    BIT_GAP on the readings that follow a gap (the caller rewrites the bytes for each patient).
    Each reading stands for ``sample_interval`` seconds, so a run of readings lasts ``t_last -
    t_first + sample_interval``; 3 readings 5 min apart make "15 minutes", as in iglu.
    A run begins an episode when it lasts >= 15 min (> 120 min for extended hypo); the episode
    ends with the first run of non-qualifying readings lasting >= 15 min, and ends at its last
    qualifying reading + ``sample_interval`` (clipped to ``window_end``). A gap over 45 min
    closes an open episode. Extended hyper: >= 90 min of > 250 readings within 120 min, ending
    with 15 min <= 180. Episode i is written to ``out_int[i] = (kind, first reading index, last
    qualifying reading index)`` and ``out_ext[i]`` (nadir/peak, mg/dL), in the order the
    episodes close (kind order at the same reading); the buffers need ``N_KINDS * (hi - lo)``
    rows and ``out_key`` is scratch of the same length. Returns the count.
    """
    n = hi - lo
    if n <= 0:
        return 0
    cls64 = cls.view(np.uint64)
    vv = values[lo:hi]
    tt = times[lo:hi]
    seen = _mark_gaps(tt, cls, cls64, n)
    n_ep = 0
    if seen & BIT_LT70:
        n_ep = _threshold_kind(
            vv, tt, cls, cls64, n, lo, sample_interval, HYPO_L1, BIT_LT70, True,
            EPISODE_MIN_SECONDS, out_int, out_ext, out_key, n_ep,
        )  # fmt: skip
        if seen & BIT_LT54:
            n_ep = _threshold_kind(
                vv, tt, cls, cls64, n, lo, sample_interval, HYPO_L2, BIT_LT54, True,
                EPISODE_MIN_SECONDS, out_int, out_ext, out_key, n_ep,
            )  # fmt: skip
        n_ep = _threshold_kind(
            vv, tt, cls, cls64, n, lo, sample_interval, HYPO_EXTENDED, BIT_LT70, True,
            EXTENDED_HYPO_SECONDS + 1, out_int, out_ext, out_key, n_ep,
        )  # fmt: skip
    if seen & BIT_GT180:
        n_ep = _threshold_kind(
            vv, tt, cls, cls64, n, lo, sample_interval, HYPER_L1, BIT_GT180, False,
            EPISODE_MIN_SECONDS, out_int, out_ext, out_key, n_ep,
        )  # fmt: skip
        if seen & BIT_GT250:
            n_ep = _threshold_kind(
                vv, tt, cls, cls64, n, lo, sample_interval, HYPER_L2, BIT_GT250, False,
                EPISODE_MIN_SECONDS, out_int, out_ext, out_key, n_ep,
            )  # fmt: skip
            n_ep = _extended_hyper_kind(
                vv, tt, cls, cls64, n, lo, sample_interval, out_int, out_ext, out_key, n_ep
            )
    # Each kind comes out in closing order; interleave the kinds by closing reading (stable
    # insertion sort: a patient has few episodes).
    for a in range(1, n_ep):
        key = out_key[a]
        if out_key[a - 1] <= key:
            continue
        kind, first, last, ext = out_int[a, 0], out_int[a, 1], out_int[a, 2], out_ext[a]
        b = a - 1
        while b >= 0 and out_key[b] > key:
            out_key[b + 1] = out_key[b]
            out_int[b + 1, 0] = out_int[b, 0]
            out_int[b + 1, 1] = out_int[b, 1]
            out_int[b + 1, 2] = out_int[b, 2]
            out_ext[b + 1] = out_ext[b]
            b -= 1
        out_key[b + 1] = key
        out_int[b + 1, 0] = kind
        out_int[b + 1, 1] = first
        out_int[b + 1, 2] = last
        out_ext[b + 1] = ext
    return n_ep


# Sign codes of short MA - long MA, one byte per grid point of a gap-free segment.
SIGN_TIE = 0
SIGN_POS = 1
SIGN_NEG = 2
SIGN_END = 8  # sentinel after the segment's last point
SIGN_PAD = 64  # sentinel bytes (the scan reads 64 sign bytes at a time)


@njit(cache=True, nogil=True, error_model="numpy")
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


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _sum(x: np.ndarray) -> float:
    # Sum of a gap-free segment's grid values, reassociated so that it vectorises (it only
    # gives the mean behind the SD: last-bit differences only, like _sum_squared_deviations).
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _sum_squared_deviations(x: np.ndarray, m: float) -> float:
    # Sum of (x - m)**2, reassociated so that it vectorises (last-bit differences only; the
    # SD only scales the excursion threshold).
    ss = 0.0
    for i in range(x.shape[0]):
        ss += (x[i] - m) ** 2
    return ss


@njit(cache=True, nogil=True, error_model="numpy")
def _four_eight_sums(gl: np.ndarray, w4: np.ndarray, w8: np.ndarray) -> None:
    # w4[j] = (gl[j] + gl[j+1]) + (gl[j+2] + gl[j+3]) and w8[j] = w4[j] + w4[j+4]: the window
    # sums in a fixed pairwise order (see _delta_signs), built from each other because loads,
    # not additions, bound these loops.
    n = gl.shape[0]
    m = n - 3
    a0, a1, a2, a3 = gl[0:m], gl[1 : m + 1], gl[2 : m + 2], gl[3 : m + 3]
    w = w4[:m]
    for j in range(m):
        w[j] = (a0[j] + a1[j]) + (a2[j] + a3[j])
    m = n - 7
    b0, b1 = w4[0:m], w4[4 : m + 4]
    w = w8[:m]
    for j in range(m):
        w[j] = b0[j] + b1[j]


@njit(cache=True, nogil=True, error_model="numpy")
def _sign_code(x: float) -> int:
    # Sign code of a moving-average difference: within MAGE_TIE of zero is a tie.
    if abs(x) <= MAGE_TIE:
        return SIGN_TIE
    return SIGN_POS if x > 0 else SIGN_NEG


@njit(cache=True, nogil=True, error_model="numpy")
def _delta_signs(gl: np.ndarray, w4: np.ndarray, w8: np.ndarray, signs: np.ndarray) -> None:
    # signs[i] for i >= 31: sign code of short MA - long MA over full windows, each average's
    # sum formed in one fixed pairwise order (5-point: (w4[i-4] + gl[i]) / 5; 32-point:
    # ((w8[i-31] + w8[i-23]) + (w8[i-15] + w8[i-7])) / 32), the order behind the MAGE figures
    # in docs/analytics.md; only the sign and the tie band matter from here on.
    n = gl.shape[0]
    m = n - 31
    s4, g = w4[27 : m + 27], gl[31:n]
    c0, c1, c2, c3 = w8[0:m], w8[8 : m + 8], w8[16 : m + 16], w8[24 : m + 24]
    out = signs[31:n]
    for j in range(m):
        x = (s4[j] + g[j]) / MAGE_SHORT_MA - ((c0[j] + c1[j]) + (c2[j] + c3[j])) / MAGE_LONG_MA
        code = SIGN_TIE
        if abs(x) > MAGE_TIE:
            code = SIGN_POS if x > 0 else SIGN_NEG
        out[j] = code


@njit(cache=True, nogil=True, error_model="numpy")
def _stretch_min(gl: np.ndarray, s1: int, s2: int) -> tuple[float, int]:
    # Minimum of gl[s1 .. s2] (no NaN) and its first index. Eight points at a time: blocks at
    # s1, s1 + 8, ... and a last one ending at s2 (overlapping the one before: harmless for a
    # minimum). The first block whose minimum is strictly lower than all before holds the first
    # index of the minimum, found by an equality mask: no branch per point.
    if s2 - s1 < 7:
        x = gl[s1 : s2 + 1]
        best = np.inf
        at = 0
        for j in range(x.shape[0]):
            better = x[j] < best
            best = x[j] if better else best
            at = j if better else at
        return best, s1 + at
    last = s2 - 7
    best = min8(gl, s1)
    blk = s1
    k = s1 + 8
    while k < last:
        v = min8(gl, k)
        better = v < best
        best = v if better else best
        blk = k if better else blk
        k += 8
    v = min8(gl, last)
    better = v < best
    best = v if better else best
    blk = last if better else blk
    return best, blk + trailing_zeros(equal_mask8(gl, blk, best))


@njit(cache=True, nogil=True, error_model="numpy")
def _stretch_max(gl: np.ndarray, s1: int, s2: int) -> tuple[float, int]:
    # _stretch_min for the maximum.
    if s2 - s1 < 7:
        x = gl[s1 : s2 + 1]
        best = -np.inf
        at = 0
        for j in range(x.shape[0]):
            better = x[j] > best
            best = x[j] if better else best
            at = j if better else at
        return best, s1 + at
    last = s2 - 7
    best = max8(gl, s1)
    blk = s1
    k = s1 + 8
    while k < last:
        v = max8(gl, k)
        better = v > best
        best = v if better else best
        blk = k if better else blk
        k += 8
    v = max8(gl, last)
    better = v > best
    best = v if better else best
    blk = last if better else blk
    return best, blk + trailing_zeros(equal_mask8(gl, blk, best))


@njit(cache=True, nogil=True, error_model="numpy")
def _excursions_walk(minmax: np.ndarray, n: int, sd: float, sign: float) -> tuple[float, int]:
    # _excursions(minmax, n, sd, plus) for extrema without NaN, in one pass (sign 1: MAGE+,
    # -1: MAGE-; the comparisons are made on sign * value, an exact negation). The largest
    # rise into point j from any point since prev_j is minmax[j] minus the lowest of them
    # (rounding is monotone), so a running extreme replaces the rescan per point; the rescan
    # (which picks the first nadir on rounding ties, as _excursions does) runs only for an
    # excursion that counts.
    total = 0.0
    count = 0
    j = 0
    prev_j = 0
    ext = minmax[0]
    while j < n:
        x = minmax[j]
        ext = x if sign * x < sign * ext else ext
        if sign * (x - ext) > sd:
            best = x - minmax[prev_j]
            i = prev_j
            for m in range(prev_j + 1, j + 1):
                d = x - minmax[m]
                if sign * d > sign * best:
                    best = d
                    i = m
            k = j
            while k < n:
                if sign * minmax[k] >= sign * minmax[j]:
                    j = k
                if sign * (minmax[k] - minmax[j]) < -sd or k == n - 1:
                    total += minmax[j] - minmax[i]
                    count += 1
                    # iglu moves MAGE+ on from the turning point k but MAGE- from the nadir j.
                    prev_j = k if sign > 0 else j
                    j = k
                    break
                k += 1
            ext = minmax[prev_j]
            for m in range(prev_j + 1, j + 1):
                ext = minmax[m] if sign * minmax[m] < sign * ext else ext
        else:
            j += 1
    return total, count


@njit(cache=True, nogil=True, error_model="numpy")
def _mage_gap_free(
    gl: np.ndarray,
    w4: np.ndarray,
    w8: np.ndarray,
    sign_row: np.ndarray,
    part_at: np.ndarray,
    cross: np.ndarray,
    cross_type: np.ndarray,
    minmax: np.ndarray,
) -> tuple[float, float]:
    """MAGE+ and MAGE- of a segment gl (0-based view) without missing grid points, n >= 7.

    The rules of _mage_segment's gap-free case, on sign codes of the moving-average difference
    (only its sign and its ties decide the crossings). ``w4``, ``w8``, ``sign_row`` and ``part_at``
    are float64 scratch rows of at least n + 8 elements (sign_row holds n + 64 sign bytes).
    """
    n = gl.shape[0]
    m = _sum(gl) / n
    ss = _sum_squared_deviations(gl, m)
    sd = np.sqrt(ss / (n - 1))
    if sd < 1.0:
        return np.nan, np.nan
    signs = sign_row.view(np.uint8)
    # The averages: iglu's rolling means over 5 and 32 points with the first `window` values
    # replaced by the one at position window - 1 (the whole-segment mean when n < 32).
    fill_s = (((gl[0] + gl[1]) + (gl[2] + gl[3])) + gl[4]) / MAGE_SHORT_MA
    if n >= MAGE_LONG_MA:
        _four_eight_sums(gl, w4, w8)
        fill_l = ((w8[0] + w8[8]) + (w8[16] + w8[24])) / MAGE_LONG_MA
        _delta_signs(gl, w4, w8, signs)
        head = MAGE_LONG_MA - 1
    else:
        s_l = 0.0
        for i in range(n):
            s_l += gl[i]
        fill_l = s_l / n
        head = n
    for i in range(head):
        ma_s = fill_s
        if i >= MAGE_SHORT_MA:
            ma_s = (((gl[i - 4] + gl[i - 3]) + (gl[i - 2] + gl[i - 1])) + gl[i]) / MAGE_SHORT_MA
        signs[i] = _sign_code(ma_s - fill_l)
    for i in range(n, n + SIGN_PAD):
        signs[i] = SIGN_END
    # Crossings (iglu): a sign change between neighbours, or across ties against the sign at the
    # last crossing. Once a crossing or a non-tie first point has set that sign, it is also the
    # last non-tie sign, so the scan only stops at bytes that differ from it (64 at a time:
    # crossings are some 30 points apart).
    cross[0] = 0
    state = signs[0]
    cross_type[0] = 1 if state == SIGN_POS else 0  # 1 = relative max, 0 = relative min
    nc = 1
    i = 1
    if state == SIGN_TIE:
        # A tie at the first point: until the first crossing only a change between two non-tie
        # neighbours counts.
        prev = SIGN_TIE
        while i < n:
            c = signs[i]
            i += 1
            if c != SIGN_TIE and prev != SIGN_TIE and c != prev:
                cross[nc] = i - 1
                cross_type[nc] = 1 if c == SIGN_POS else 0
                nc += 1
                state = c
                break
            prev = c
    if state != SIGN_TIE:
        while True:
            mask = differ_mask64(signs, i, state)
            while mask == 0:
                i += 64
                mask = differ_mask64(signs, i, state)
            i += trailing_zeros(mask)
            if i >= n:
                break
            c = signs[i]
            if c != SIGN_TIE and c != state:
                cross[nc] = i
                cross_type[nc] = 1 if c == SIGN_POS else 0
                nc += 1
                state = c
            i += 1
    cross[nc] = n - 1
    cross_type[nc] = 1 if signs[n - 1] == SIGN_POS else 0
    nc += 1
    # Extremes of the grid values between successive crossings (first one on ties); each search
    # starts at the previous extreme s1 <= cross[e]. Split at cross[e]: the part from cross[e]
    # to cross[e + 1] does not depend on the previous extreme, so it is found for all stretches
    # first (independent searches overlap in the CPU); the part before cross[e] (some 12
    # points) wins when its extreme is at least as extreme (it comes first).
    ne = nc - 1
    for e in range(ne):
        if cross_type[e] == 0:
            best, at = _stretch_min(gl, cross[e], cross[e + 1])
        else:
            best, at = _stretch_max(gl, cross[e], cross[e + 1])
        minmax[e] = best
        part_at[e] = at
    s1 = 0
    for e in range(ne):
        a = cross[e]
        best = minmax[e]
        at = int(part_at[e])
        if s1 < a:
            if cross_type[e] == 0:
                v, v_at = _stretch_min(gl, s1, a - 1)
                if v <= best:
                    best = v
                    at = v_at
            else:
                v, v_at = _stretch_max(gl, s1, a - 1)
                if v >= best:
                    best = v
                    at = v_at
        minmax[e] = best
        s1 = at
    plus_sum, plus_n = _excursions_walk(minmax, ne, sd, 1.0)
    minus_sum, minus_n = _excursions_walk(minmax, ne, sd, -1.0)
    mage_plus = plus_sum / plus_n if plus_n > 0 else np.nan
    mage_minus = abs(minus_sum / minus_n) if minus_n > 0 else np.nan
    return mage_plus, mage_minus


@njit(cache=True, nogil=True, error_model="numpy")
def _mage_segment(
    gl: np.ndarray,
    lo: int,
    hi: int,
    seg_count: int,
    ma_s: np.ndarray,
    ma_l: np.ndarray,
    cnt_s: np.ndarray,
    cnt_l: np.ndarray,
    cross: np.ndarray,
    cross_type: np.ndarray,
    minmax: np.ndarray,
) -> tuple[float, float]:
    """MAGE+ and MAGE- of one gap-free grid segment gl[lo:hi] (NaN where not interpolated).

    ``seg_count``: number of the segment's non-NaN points. Without missing points (the usual
    case) the work is done by _mage_gap_free; with missing points the means and the window
    sums are running sums in index order, as pandas does.
    """
    n = hi - lo
    if seg_count < 2 or n < 7 or n < MAGE_SHORT_MA:
        return np.nan, np.nan
    if seg_count == n:
        return _mage_gap_free(gl[lo:hi], cnt_l, ma_s, ma_l, cnt_s, cross, cross_type, minmax)
    # 0-based views: loops from 0 compile without negative-index handling.
    gl = gl[lo:hi]
    ma_s = ma_s[:n]
    ma_l = ma_l[:n]
    cnt_s = cnt_s[:n]
    cnt_l = cnt_l[:n]
    lo = 0
    hi = n
    seg_sum = 0.0
    for i in range(n):
        x = gl[i]
        seg_sum += 0.0 if np.isnan(x) else x
    m = seg_sum / seg_count
    # The SD (squared deviations from the segment mean) and pandas rolling(window,
    # min_periods=1).mean() over 5 and 32 points (the mean of the non-NaN values, NaN when there
    # are none).
    ss = 0.0
    s_s = 0.0
    c_s = 0
    s_l = 0.0
    c_l = 0
    for i in range(n):
        x = gl[i]
        if not np.isnan(x):
            ss += (x - m) ** 2
            s_s += x
            c_s += 1
            s_l += x
            c_l += 1
        if i >= MAGE_SHORT_MA:
            y = gl[i - MAGE_SHORT_MA]
            if not np.isnan(y):
                s_s -= y
                c_s -= 1
        if i >= MAGE_LONG_MA:
            y = gl[i - MAGE_LONG_MA]
            if not np.isnan(y):
                s_l -= y
                c_l -= 1
        ma_s[i] = s_s
        ma_l[i] = s_l
        cnt_s[i] = c_s
        cnt_l[i] = c_l
    sd = np.sqrt(ss / (seg_count - 1))
    if sd < 1.0:
        return np.nan, np.nan
    for i in range(n):
        ma_s[i] = ma_s[i] / cnt_s[i] if cnt_s[i] > 0.0 else np.nan
        ma_l[i] = ma_l[i] / cnt_l[i] if cnt_l[i] > 0.0 else np.nan
    # iglu: the first `window` values take the value at position window - 1 (or the last one
    # when the segment is shorter).
    fill = ma_s[lo + MAGE_SHORT_MA - 1] if n >= MAGE_SHORT_MA else ma_s[hi - 1]
    for i in range(lo, min(hi, lo + MAGE_SHORT_MA)):
        ma_s[i] = fill
    fill = ma_l[lo + MAGE_LONG_MA - 1] if n >= MAGE_LONG_MA else ma_l[hi - 1]
    for i in range(lo, min(hi, lo + MAGE_LONG_MA)):
        ma_l[i] = fill
    # Crossings of delta = short MA - long MA (a zero delta counts as missing, as in iglu):
    # a sign change between neighbours with all four values present, or else against the
    # delta at the last crossing.
    d = ma_s[lo] - ma_l[lo]
    d = np.nan if abs(d) <= MAGE_TIE else d
    nc = 0
    cross[nc] = lo
    cross_type[nc] = 1 if d > 0 else 0  # 1 = relative max, 0 = relative min
    nc += 1
    d_cross = d
    dp = d
    gl_prev_nan = np.isnan(gl[lo])
    for i in range(lo + 1, hi):
        d = ma_s[i] - ma_l[i]
        d = np.nan if abs(d) <= MAGE_TIE else d
        gl_nan = np.isnan(gl[i])
        if not np.isnan(d):
            if not (gl_nan or gl_prev_nan or np.isnan(dp)):
                if d * dp < 0:
                    cross[nc] = i
                    cross_type[nc] = 0 if d < dp else 1
                    nc += 1
                    d_cross = d
            elif d * d_cross < 0:
                cross[nc] = i
                cross_type[nc] = 0 if d < d_cross else 1
                nc += 1
                d_cross = d
        dp = d
        gl_prev_nan = gl_nan
    cross[nc] = hi - 1
    cross_type[nc] = 1 if dp > 0 else 0
    nc += 1
    # Extremes of the raw grid values between successive crossings (first one on ties, NaN
    # skipped); each search starts at the previous extreme.
    ne = nc - 1
    s1 = cross[0]
    for e in range(ne):
        s2 = cross[e + 1]
        best_at = s1
        if cross_type[e] == 0:
            best = np.inf
            for j in range(s1, s2 + 1):
                x = gl[j]
                better = x < best
                best = x if better else best
                best_at = j if better else best_at
        else:
            best = -np.inf
            for j in range(s1, s2 + 1):
                x = gl[j]
                better = x > best
                best = x if better else best
                best_at = j if better else best_at
        minmax[e] = best if np.isfinite(best) else np.nan
        s1 = best_at
    plus_sum, plus_n = _excursions(minmax, ne, sd, True)
    minus_sum, minus_n = _excursions(minmax, ne, sd, False)
    mage_plus = plus_sum / plus_n if plus_n > 0 else np.nan
    mage_minus = abs(minus_sum / minus_n) if minus_n > 0 else np.nan
    return mage_plus, mage_minus


@njit(cache=True, nogil=True, error_model="numpy")
def _close_segment(
    seg_bounds: np.ndarray,
    n_seg: int,
    seg_lo: int,
    last_valid: int,
    seg_count: int,
) -> int:
    seg_bounds[0, n_seg] = seg_lo
    seg_bounds[1, n_seg] = last_valid + 1
    seg_bounds[2, n_seg] = seg_count
    return n_seg + 1


@njit(cache=True, nogil=True, error_model="numpy")
def _mage_grid(
    values: np.ndarray, times: np.ndarray, g0: int, n: int, grid: np.ndarray, seg_bounds: np.ndarray
) -> int:
    """Interpolate one patient's readings (0-based views, >= 2) onto grid[0:n], grid point k at
    (g0 + k) * 300 s; writes the segments to seg_bounds (start, end exclusive, present points)
    and returns their number. grid may be written up to 7 points past n (within its length).
    """
    hi = values.shape[0]
    glen = grid.shape[0]
    # Grid points in [t_j, t_j+1) take reading j's value or the interpolation towards j + 1.
    # Grid index of the first point at or after t: ceil((t - base) / 300) - 1 with
    # base = (g0 - 1) * 300 < t, an unsigned division. The points are written in index order,
    # so the segments (split where > 180 min pass between present points) and their numbers of
    # present points are collected on the way (the sums are left to the segment kernels: a
    # running sum here would be one chain of dependent additions per reading).
    n_seg = 0
    last_valid = 0
    seg_lo = 0
    seg_count = 0
    base = (g0 - 1) * MAGE_GRID
    kb = 0  # grid index of the first point at or after times[j]
    max_gap_points = MAGE_MAX_GAP // MAGE_GRID
    j = -1
    while j + 1 < hi:
        j += 1
        tj = times[j]
        if (g0 + kb) * MAGE_GRID == tj and kb - last_valid <= max_gap_points:
            # Regular 5-min data on the grid (the usual case): a run of readings 300 s apart
            # maps one to one onto grid points (same values as the general step below; no
            # segment can start inside it). Eight readings at a time: copy their values (the
            # ones past the run are overwritten later, in index order) and advance over those
            # whose successor is 300 s later. The next block's position does not wait for
            # the test (it is taken as passed), so the loop is not one chain of loads.
            k0 = kb
            while j + 8 < hi and kb + 8 <= glen:
                copy8(values, j, grid, kb)
                breaks = step_breaks8(times, j)
                if breaks == 0:
                    j += 8
                    kb += 8
                    continue
                c = trailing_zeros(breaks)
                j += c
                kb += c
                # Reading j sits on grid point kb (its value is copied). When the next one is
                # on the grid too, at most 45 min later (a few missing readings), the points
                # between are interpolated here as the general step does (same formula,
                # same numbers) and the run goes on from reading j + 1.
                step = times[j + 1] - times[j]
                if step > MAGE_INTER_GAP or step % MAGE_GRID != 0:
                    break
                skip = step // MAGE_GRID
                vj = values[j]
                dv = values[j + 1] - vj
                for q in range(1, skip):
                    w = (q * MAGE_GRID) / step
                    grid[kb + q] = vj + w * dv
                j += 1
                kb += skip
            while j + 1 < hi and times[j + 1] - times[j] == MAGE_GRID:
                grid[kb] = values[j]
                kb += 1
                j += 1
            if kb > k0:
                # every grid point from k0 to kb - 1 holds a reading or an interpolation
                seg_count += kb - k0
                last_valid = kb - 1
                tj = times[j]
        ka = kb
        if j + 1 < hi:
            tn = times[j + 1]
            kb = int(np.uint64(tn - base + MAGE_GRID - 1) // np.uint64(MAGE_GRID)) - 1
        else:
            tn = tj
            kb = n
        if ka >= kb:
            continue
        vj = values[j]
        if (g0 + ka) * MAGE_GRID == tj:
            grid[ka] = vj
            if ka - last_valid > max_gap_points:
                n_seg = _close_segment(seg_bounds, n_seg, seg_lo, last_valid, seg_count)
                seg_lo = ka
                seg_count = 0
            seg_count += 1
            last_valid = ka
            ka += 1
            if ka == kb:
                continue
        if j + 1 == hi:
            break
        if tn - tj <= MAGE_INTER_GAP:
            dv = values[j + 1] - vj
            if ka - last_valid > max_gap_points:
                n_seg = _close_segment(seg_bounds, n_seg, seg_lo, last_valid, seg_count)
                seg_lo = ka
                seg_count = 0
            for kk in range(ka, kb):
                w = ((g0 + kk) * MAGE_GRID - tj) / (tn - tj)
                x = vj + w * dv
                grid[kk] = x
            seg_count += kb - ka
            last_valid = kb - 1
        else:
            for kk in range(ka, kb):
                grid[kk] = np.nan
    return _close_segment(seg_bounds, n_seg, seg_lo, last_valid, seg_count)


@njit(cache=True, nogil=True, error_model="numpy")
def _mage_from_grid(
    grid: np.ndarray, seg_bounds: np.ndarray, n_seg: int, scratch: np.ndarray, cross: np.ndarray
) -> float:
    """MAGE from the 5-min grid and its segments (seg_bounds rows: start, end exclusive,
    present points; it may be cross[2:5]): the mean of the segments' MAGE+ and MAGE- weighted
    by segment duration (iglu ``mage(direction='avg')``); NaN when nothing qualifies."""
    weighted = 0.0
    weight = 0.0
    for e in range(n_seg):
        seg_lo = seg_bounds[0, e]
        seg_hi = seg_bounds[1, e]
        plus, minus = _mage_segment(
            grid, seg_lo, seg_hi, seg_bounds[2, e], scratch[0], scratch[1], scratch[3],
            scratch[4], cross[0], cross[1], scratch[2],
        )  # fmt: skip
        hours = (seg_hi - 1 - seg_lo) * MAGE_GRID / 3600.0
        if not np.isnan(plus):
            weighted += plus * hours
            weight += hours
        if not np.isnan(minus):
            weighted += minus * hours
            weight += hours
    if weight == 0.0:
        return np.nan
    return weighted / weight


@njit(cache=True, nogil=True, error_model="numpy")
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
    changes) across gaps up to 45 min (grid points inside longer gaps are NaN), the grid is split
    into segments at gaps over 180 min, MAGE+ and MAGE- are computed per segment (Fernandes et
    al. 2022), and the result is the mean of all available segment values weighted by segment
    duration (iglu ``mage(direction='avg')``). ``grid``, ``scratch`` (6 x len) and ``cross``
    (5 x len, int64) are caller-owned buffers longer than the grid; NaN when nothing qualifies.
    """
    if hi - lo < 2:
        return np.nan
    g0 = -((-times[lo]) // MAGE_GRID)  # first grid point at or after the first reading
    g_last = times[hi - 1] // MAGE_GRID
    n = int(g_last - g0 + 1)
    if n < 7:
        return np.nan
    seg_bounds = cross[2:5]
    n_seg = _mage_grid(values[lo:hi], times[lo:hi], g0, n, grid, seg_bounds)
    return _mage_from_grid(grid, seg_bounds, n_seg, scratch, cross)


def _odd_even_merge_pairs(n: int) -> list[tuple[int, int]]:
    """Comparators (i, j), i < j, of Batcher's odd-even merge sort of n = 2**k inputs."""
    pairs = []
    p = 1
    while p < n:
        step = p
        while step >= 1:
            for j in range(step % p, n - step, 2 * step):
                for i in range(min(step, n - j - step)):
                    if (i + j) // (2 * p) == (i + j + step) // (2 * p):
                        pairs.append((i + j, i + j + step))
            step //= 2
        p *= 2
    return pairs


# AGP slots hold one reading per day of the window: up to 15 for 14 days. Such slots are sorted
# together, 288 at a time, by a sorting network (63 branch-free compare-exchanges that the
# compiler vectorises across slots); a patient with a fuller slot takes the general path.
NET_SIZE = 16
SORT_NET = np.array(_odd_even_merge_pairs(NET_SIZE), dtype=np.int64)


def _quantile_table(size: int) -> tuple[np.ndarray, np.ndarray]:
    # For n sorted values and each AGP quantile: the lower index k and the weight h - k of
    # type7_quantile (k = n - 1 with weight 0 where it returns the last value), same arithmetic.
    index = np.zeros((size + 1, len(AGP_QUANTILES)), dtype=np.int64)
    weight = np.zeros((size + 1, len(AGP_QUANTILES)))
    for n in range(1, size + 1):
        for q, quantile in enumerate(AGP_QUANTILES):
            h = (n - 1) * quantile
            k = int(np.floor(h))
            if k + 1 >= n:
                index[n, q] = n - 1
                weight[n, q] = -1.0  # marker: the last value itself
            else:
                index[n, q] = k
                weight[n, q] = h - k
    return index, weight


Q_INDEX, Q_WEIGHT = _quantile_table(NET_SIZE)


@njit(cache=True, nogil=True, error_model="numpy")
def _agp_network(g16: np.ndarray, slot_count: np.ndarray, p: int, agp: np.ndarray) -> None:
    # g16[row * 288 + slot] holds slot's values in rows 0..count-1; pad, sort every column with
    # the network, read the type-7 quantiles.
    for row in range(NET_SIZE):
        values = g16[row * N_SLOTS : row * N_SLOTS + N_SLOTS]
        for s in range(N_SLOTS):
            values[s] = np.inf if row >= slot_count[s] else values[s]
    _sort_columns(g16)
    for s in range(N_SLOTS):
        n = slot_count[s]
        for q in range(5):
            if n == 0:
                agp[p, q, s] = np.nan
                continue
            k = Q_INDEX[n, q]
            below = g16[k * N_SLOTS + s]
            w = Q_WEIGHT[n, q]
            if w < 0.0:
                agp[p, q, s] = below
            else:
                agp[p, q, s] = below + w * (g16[(k + 1) * N_SLOTS + s] - below)


@njit(cache=True, nogil=True, error_model="numpy")
def _sort_columns(grid: np.ndarray) -> None:
    # Sorts each of the 288 columns of a (NET_SIZE x 288) grid (float64 with +inf padding, or
    # int16 with GRID_EMPTY) with the network: branch-free min/max over whole rows, which the
    # compiler vectorises across the columns (32 lanes wide in int16).
    for c in range(SORT_NET.shape[0]):
        row_a = grid[SORT_NET[c, 0] * N_SLOTS : SORT_NET[c, 0] * N_SLOTS + N_SLOTS]
        row_b = grid[SORT_NET[c, 1] * N_SLOTS : SORT_NET[c, 1] * N_SLOTS + N_SLOTS]
        for s in range(N_SLOTS):
            x = row_a[s]
            y = row_b[s]
            row_a[s] = min(x, y)
            row_b[s] = max(x, y)


@njit(cache=True, nogil=True, error_model="numpy")
def _hourly_quantiles(
    hist: np.ndarray,
    stride: int,
    base: int,
    slot_count: np.ndarray,
    columns: np.ndarray,
    hour_q: np.ndarray,
) -> None:
    # Pooled quantiles per local hour of integer readings from per-hour histograms: hour h's
    # bin h * stride + (g - base) counts its readings equal to g mg/dL, so the k-th smallest is
    # the bin where the running count passes k. The hour's smallest and largest values are read
    # off the slot columns the network has sorted (``columns``, rows 0..count-1). The walk
    # stops only where the running count passes the next wanted rank, so the usual step is one
    # add and one well-predicted compare. Clears the hour's bins (histograms are all zero
    # between patients).
    lo_pos = np.empty(5, dtype=np.int64)
    hi_pos = np.empty(5, dtype=np.int64)
    lo_val = np.empty(5)
    hi_val = np.empty(5)
    for h in range(N_HOURS):
        n = 0
        for s in range(h * 12, h * 12 + 12):
            n += slot_count[s]
        if n == 0:
            for q in range(5):
                hour_q[q, h] = np.nan
            continue
        for q in range(5):
            lo_pos[q] = int(np.floor((n - 1) * AGP_QUANTILES[q]))
            hi_pos[q] = min(lo_pos[q] + 1, n - 1)
        h_min = HIST_BINS
        h_max = 0
        for s in range(h * 12, h * 12 + 12):
            if slot_count[s] > 0:
                h_min = min(h_min, int(columns[s]))
                h_max = max(h_max, int(columns[(slot_count[s] - 1) * N_SLOTS + s]))
        bins = hist[h * stride + h_min - base : h * stride + h_max - base + 1]
        cum = 0
        t_lo = 0
        t_hi = 0
        next_rank = 0  # the smallest rank not yet found: min(lo_pos[t_lo], hi_pos[t_hi])
        i = 0
        while t_hi < 5:
            cum += bins[i]
            if cum > next_rank:
                b = h_min + i
                while t_lo < 5 and lo_pos[t_lo] < cum:
                    lo_val[t_lo] = b
                    t_lo += 1
                while t_hi < 5 and hi_pos[t_hi] < cum:
                    hi_val[t_hi] = b
                    t_hi += 1
                next_rank = hi_pos[t_hi] if t_hi < 5 else n
                if t_lo < 5:
                    next_rank = min(next_rank, lo_pos[t_lo])
            i += 1
        bins[:] = 0
        for q in range(5):
            hq = (n - 1) * AGP_QUANTILES[q]
            k = lo_pos[q]
            if k + 1 >= n:
                hour_q[q, h] = lo_val[q]
            else:
                below = lo_val[q]
                hour_q[q, h] = below + (hq - k) * (hi_val[q] - below)


@njit(cache=True, nogil=True, error_model="numpy")
def _agp_sorted(
    values: np.ndarray,
    lo: int,
    n: int,
    rounded: np.ndarray,
    slot_of: np.ndarray,
    slot_count: np.ndarray,
    order: np.ndarray,
    by_slot: np.ndarray,
    by_hour: np.ndarray,
    hist: np.ndarray,
    p: int,
    agp: np.ndarray,
    hour_q: np.ndarray,
) -> None:
    # General AGP path (non-integer values, or a slot with more than NET_SIZE readings):
    # counting sort by integer bin, then a stable scatter into slots and hours, so every slot's
    # (hour's) values come out sorted (an insertion pass fixes non-integer values).
    hist[:] = 0
    for k in range(n):
        hist[min(max(rounded[k], 0), HIST_BINS - 1) + 1] += 1
    for b in range(HIST_BINS):
        hist[b + 1] += hist[b]
    for k in range(n):
        b = min(max(rounded[k], 0), HIST_BINS - 1)
        order[hist[b]] = k
        hist[b] += 1
    slot_pos = np.empty(N_SLOTS + 1, dtype=np.int64)
    hour_pos = np.empty(N_HOURS + 1, dtype=np.int64)
    slot_pos[0] = 0
    for s in range(N_SLOTS):
        slot_pos[s + 1] = slot_pos[s] + slot_count[s]
    for h in range(N_HOURS + 1):
        hour_pos[h] = slot_pos[h * 12]
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
    h_lo = 0
    for h in range(N_HOURS):
        h_hi = hour_pos[h]
        _insertion_fix(by_hour, h_lo, h_hi)
        for q in range(5):
            hour_q[q, h] = type7_quantile(by_hour, h_lo, h_hi, AGP_QUANTILES[q])
        h_lo = h_hi


# Empty cell of the day x slot grid (int16; sorts after every reading, which are < HIST_BINS).
GRID_EMPTY = 32767


@njit(cache=True, nogil=True, error_model="numpy")
def _grid_profile(
    tt: np.ndarray,
    rr: np.ndarray,
    n: int,
    offset_minutes: int,
    lo: int,
    p: int,
    day_base: int,
    r_min: int,
    r_max: int,
    grid: np.ndarray,
    slot_count: np.ndarray,
    hour_hist: np.ndarray,
    value_count: np.ndarray,
    below: np.ndarray,
    above: np.ndarray,
    rank: np.ndarray,
    risk_low: np.ndarray,
    risk_high: np.ndarray,
    agp: np.ndarray,
    agp_days: np.ndarray,
    hour_q: np.ndarray,
    day_count: np.ndarray,
    day_sum: np.ndarray,
    day_in_range: np.ndarray,
    day_first: np.ndarray,
    day_last: np.ndarray,
) -> tuple[bool, float, float]:
    # Grid path of cohort_chunk for one patient's window readings tt/rr (0-based views, n > 0):
    # integer mg/dL in the risk tables, one UTC offset that is a multiple of 5 min. When every
    # reading lies on one 300-s grid and the readings span at most NET_SIZE local days, each
    # reading owns one cell of a (local day) x (5-min slot) grid, so AGP slot, local day and
    # wear slot follow from its cell and the per-reading bookkeeping of pass 3 becomes
    # vectorised loops over the grid: rows give the daily profiles, columns the AGP slots
    # (sorted by the network in int16), and the hourly histograms give the hourly quantiles
    # and the Kovatchev risk sums. Returns (done, low risk sum, high risk sum); when not done
    # (off-grid or too many days) nothing has been written to the outputs. ``hour_hist`` (bytes)
    # must be all zero on entry and is left so.
    shift = offset_minutes * 60
    loc0 = tt[0] + shift
    day0 = loc0 // DAY_SECONDS
    # Local midnight of the first day, moved to the readings' phase on the 300-s grid (the
    # offset is a multiple of 300 s, so local and UTC times share the phase).
    base = day0 * DAY_SECONDS - shift + loc0 % SLOT_SECONDS
    rows = (tt[n - 1] - base) // DAY_SECONDS + 1
    if rows > NET_SIZE:
        return False, 0.0, 0.0
    grid[:] = GRID_EMPTY
    off_grid = 0
    for k in range(n):
        d = tt[k] - base
        cell = int(np.uint64(d) // np.uint64(SLOT_SECONDS))
        off_grid |= d - cell * SLOT_SECONDS
        grid[cell] = rr[k]
    if off_grid:
        return False, 0.0, 0.0
    # Rows (local days, in reading order): count, sum, readings 70-180; columns: readings per
    # slot, which is also the number of days behind the slot (one reading per slot and day).
    slot_count[:] = 0
    n_days = day_count.shape[1]
    done = 0
    for row in range(rows):
        cells = grid[row * N_SLOTS : row * N_SLOTS + N_SLOTS]
        c = 0
        total = 0
        in_range = 0
        for s in range(N_SLOTS):
            x = int(cells[s])
            present = x != GRID_EMPTY
            c += present
            total += x if present else 0
            in_range += present & (x >= 70) & (x <= 180)
            slot_count[s] += present
        if c == 0:
            continue
        dcol = min(max(day0 + row - day_base, 0), n_days - 1)
        if day_count[p, dcol] == 0:
            day_first[p, dcol] = lo + done
        day_count[p, dcol] += c
        day_sum[p, dcol] += total
        day_in_range[p, dcol] += in_range
        day_last[p, dcol] = lo + done + c - 1
        done += c
    for s in range(N_SLOTS):
        agp_days[p, s] = slot_count[s]
    # Hourly histograms of the readings, one byte per bin (an hour holds at most 12 slots x
    # NET_SIZE days = 192 readings) over the patient's value range, so all 24 fit in L1 cache.
    # An empty cell adds 0 to the last bin.
    width = r_max - r_min + 1
    hist = hour_hist[: N_HOURS * width]
    for h in range(N_HOURS):
        hour = hist[h * width : h * width + width]
        for row in range(rows):
            cells = grid[row * N_SLOTS + h * 12 : row * N_SLOTS + h * 12 + 12]
            for s in range(12):
                x = cells[s]
                hour[min(x - r_min, width - 1)] += x != GRID_EMPTY
    # Kovatchev risk: count x tabled risk per value (the same terms as reading by reading,
    # added in another order).
    rl_sum = 0.0
    rh_sum = 0.0
    totals = value_count[:width]
    totals[:] = 0
    for h in range(N_HOURS):
        hour = hist[h * width : h * width + width]
        for j in range(width):
            totals[j] += hour[j]
    for j in range(width):
        rl_sum += totals[j] * risk_low[r_min + j]
        rh_sum += totals[j] * risk_high[r_min + j]
    _sort_columns(grid)
    _grid_quantiles(grid, slot_count, p, agp, below, above, rank)
    _hourly_quantiles(hist, width, r_min, slot_count, grid, hour_q)
    return True, rl_sum, rh_sum


@njit(cache=True, nogil=True, error_model="numpy")
def _grid_quantiles(
    grid: np.ndarray,
    slot_count: np.ndarray,
    p: int,
    agp: np.ndarray,
    below: np.ndarray,
    above: np.ndarray,
    rank: np.ndarray,
) -> None:
    # Type-7 quantiles of every column of the sorted grid, as _agp_network reads them (same
    # arithmetic), but the two order statistics of each quantile are picked row by row with
    # int16 selects instead of one indexed load per slot, so the loops vectorise across slots.
    for q in range(5):
        quantile = AGP_QUANTILES[q]
        k_min = NET_SIZE
        k_max = 0
        for s in range(N_SLOTS):
            k = int(np.floor((slot_count[s] - 1) * quantile))
            rank[s] = np.int16(k)
            k_min = min(k_min, k)
            k_max = max(k_max, k)
            below[s] = 0
            above[s] = 0
        # Only the rows that hold some slot's order statistics (a slot's count is the number of
        # days behind it, so the ranks of a quantile differ little between slots).
        for row in range(max(k_min, 0), min(k_max + 2, NET_SIZE)):
            cells = grid[row * N_SLOTS : row * N_SLOTS + N_SLOTS]
            r16 = np.int16(row)
            for s in range(N_SLOTS):
                x = cells[s]
                k = rank[s]
                below[s] = x if k == r16 else below[s]
                above[s] = x if k + np.int16(1) == r16 else above[s]
        out = agp[p, q]
        for s in range(N_SLOTS):
            c = slot_count[s]
            h = (c - 1) * quantile
            k = np.floor(h)
            lower = np.float64(below[s])
            value = lower if k + 1 >= c else lower + (h - k) * (np.float64(above[s]) - lower)
            out[s] = value if c > 0 else np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _valid_readings(
    values: np.ndarray, times: np.ndarray, offsets: np.ndarray, a: int, b: int
) -> bool:
    # Readings [a, b): positive finite values, offsets within UTC-12:00..UTC+14:00, times
    # strictly increasing (what api.prepare guarantees).
    bad = 0
    for i in range(a, b):
        v = values[i]
        bad += not ((v > 0.0) & (v < np.inf))
        bad += int(
            np.uint64(offsets[i] - MIN_OFFSET_SECONDS // 60)
            > np.uint64((MAX_OFFSET_SECONDS - MIN_OFFSET_SECONDS) // 60)
        )
    for i in range(a + 1, b):
        bad += times[i] <= times[i - 1]
    return bad == 0


@njit(cache=True, nogil=True, error_model="numpy")
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
    validate: bool,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """All metrics of patients ``[p0, p1)`` over the window ``[start, end)`` (epoch s UTC).

    Writes rows p of the per-patient outputs (callers give each chunk disjoint rows; the
    ``day_*`` arrays must be zero): ``istats``/``fstats`` (columns I_*/F_*), ``agp`` (p, 5, 288)
    type-7 quantiles ``AGP_QUANTILES`` per local 5-min slot, ``agp_days`` (p, 288) distinct local
    days per slot, ``hourly`` (p, 5, 24) pooled hourly quantiles after 1-4-1 smoothing, and per
    local day column ``d`` (local day number ``day_base + d``, ``day_base = (start - 12 h) //
    86400``): readings, glucose sum, readings 70-180, index of the first and last reading.

    With ``validate`` each patient's readings are checked first (values positive and finite,
    offsets within UTC-12:00..UTC+14:00, times strictly increasing); the chunk stops at the first
    patient that fails. Returns this chunk's episode rows (int columns E_*, extreme mg/dL,
    number of rows) and the failing patient (-1 if none).
    """
    day_base = (start + MIN_OFFSET_SECONDS) // DAY_SECONDS
    n_days = day_count.shape[1]
    n_slots_window = (end - start + SLOT_SECONDS - 1) // SLOT_SECONDS
    min_offset = MIN_OFFSET_SECONDS // 60
    max_offset = MAX_OFFSET_SECONDS // 60
    # Per-chunk scratch, sized to the longest patient: nothing is allocated per patient.
    max_n = 1
    for p in range(p0, p1):
        max_n = max(max_n, indptr[p + 1] - indptr[p])
    rounded = np.empty(max_n, dtype=np.int64)
    classes = np.zeros(max_n + 8 - max_n % 8, dtype=np.uint8)
    slot_of = np.empty(max_n, dtype=np.int64)
    order = np.empty(max_n, dtype=np.int64)
    by_slot = np.empty(max_n)
    by_hour = np.empty(max_n)
    hist = np.zeros(HIST_BINS + 1, dtype=np.int64)
    g16 = np.empty(NET_SIZE * N_SLOTS)
    grid16 = np.empty(NET_SIZE * N_SLOTS, dtype=np.int16)
    hour_bytes = np.zeros(N_HOURS * HIST_BINS, dtype=np.uint8)  # zero between patients
    value_count = np.empty(HIST_BINS, dtype=np.int32)
    grid_below = np.empty(N_SLOTS, dtype=np.int16)
    grid_above = np.empty(N_SLOTS, dtype=np.int16)
    grid_rank = np.empty(N_SLOTS, dtype=np.int16)
    slot_count = np.zeros(N_SLOTS, dtype=np.int64)
    hour_hist = np.zeros(N_HOURS * HIST_BINS, dtype=np.int32)
    last_day = np.empty(N_SLOTS, dtype=np.int64)
    hour_q = np.empty((5, N_HOURS))
    mage_len = 16
    mage_grid = np.empty(mage_len)
    mage_scratch = np.empty((6, mage_len))
    mage_cross = np.empty((5, mage_len), dtype=np.int64)
    pat_int = np.empty((N_KINDS * max_n, 3), dtype=np.int64)
    pat_ext = np.empty(N_KINDS * max_n)
    pat_key = np.empty(N_KINDS * max_n, dtype=np.int64)
    # A patient-fortnight has some 50 episodes (mostly hyper level 1); start near that.
    ep_cap = max(64, 32 * (p1 - p0))
    ep_int = np.empty((ep_cap, N_ECOLS), dtype=np.int64)
    ep_ext = np.empty(ep_cap)
    n_ep = 0
    for p in range(p0, p1):
        i0 = indptr[p]
        i1 = indptr[p + 1]
        # Binary search is monotone in the key for any array, so lo <= hi even before the
        # order of the times has been checked.
        lo = i0 + np.searchsorted(times[i0:i1], start)
        hi = i0 + np.searchsorted(times[i0:i1], end)
        n = hi - lo
        # Readings outside the window, and the pairs across its edges (the window's own readings
        # are checked in pass 1).
        if validate and not (
            _valid_readings(values, times, offsets, i0, min(lo + 1, i1))
            and _valid_readings(values, times, offsets, max(hi - 1, i0), i1)
        ):
            return ep_int, ep_ext, n_ep, p
        for c in range(N_ICOLS):
            istats[p, c] = 0
        istats[p, I_N] = n
        for c in range(N_FCOLS):
            fstats[p, c] = np.nan
        agp_days[p, :] = 0
        if n == 0:
            agp[p, :, :] = np.nan
            hourly[p, :, :] = np.nan
            continue
        # 0-based views: loops from 0 compile without negative-index handling (and vectorise).
        vv = values[lo:hi]
        tt = times[lo:hi]
        oo = offsets[lo:hi]
        rr = rounded[:n]
        cls = classes[:n]
        so = slot_of[:n]
        # Pass 1 (branch-free, vectorised): validity, rounding, consensus ranges on the reading
        # rounded half-to-even to integer mg/dL (docs/analytics.md "Range boundaries").
        bad = 0
        non_integer = 0
        lt54 = 0
        lt70 = 0
        le180 = 0
        le250 = 0
        below_t = 0
        above_t = 0
        r_min = HIST_BINS - 1
        r_max = 0
        # Sums of the rounded readings shifted by the first one (used when every reading is an
        # integer: then they equal the floating-point sums exactly, in any order).
        r0 = int(np.rint(vv[0]))
        s1i = 0
        s2i = 0
        off0 = oo[0]
        off_changes = 0
        for k in range(n):
            v = vv[k]
            bad += not ((v > 0.0) & (v < np.inf))
            bad += int(np.uint64(oo[k] - min_offset) > np.uint64(max_offset - min_offset))
            off_changes += oo[k] != off0
            r = int(np.rint(v))
            rr[k] = r
            s1i += r - r0
            s2i += (r - r0) * (r - r0)
            non_integer += (v != r) | (r >= HIST_BINS)
            rb = min(r, HIST_BINS - 1)
            r_min = min(r_min, rb)
            r_max = max(r_max, rb)
            lt54 += r < 54
            lt70 += r < 70
            le180 += r <= 180
            le250 += r <= 250
            cls[k] = (
                (r < 54) * BIT_LT54 + (r < 70) * BIT_LT70 + (r > 180) * BIT_GT180
                + (r > 250) * BIT_GT250
            )  # fmt: skip
            below_t += r < target_low
            above_t += r > target_high
        if validate:
            for k in range(1, n):
                bad += tt[k] <= tt[k - 1]
            if bad:
                return ep_int, ep_ext, n_ep, p
        all_integer = non_integer == 0
        tabled = all_integer and r_min > 0 and r_max < risk_low.shape[0]
        shift = values[lo]  # shifted sums keep the variance accurate
        s1 = 0.0
        s2 = 0.0
        rl_sum = 0.0
        rh_sum = 0.0
        on_grid = False
        if tabled and off_changes == 0 and off0 % 5 == 0:
            # Integer readings on one 5-min grid with one UTC offset (the usual device upload):
            # the day x slot grid path (docs/analytics.md "Grid path").
            on_grid, rl_sum, rh_sum = _grid_profile(
                tt, rr, n, off0, lo, p, day_base, r_min, r_max, grid16, slot_count, hour_bytes,
                value_count, grid_below, grid_above, grid_rank, risk_low, risk_high, agp,
                agp_days, hour_q, day_count, day_sum, day_in_range, day_first, day_last,
            )  # fmt: skip
        if on_grid:
            # Every reading sits on its own 300-s point, so on its own wear slot.
            active = n
            s1 = float(s1i)
            s2 = float(s2i)
        elif tabled:
            # Integer mg/dL (device data). The sums are taken in integers: they equal the
            # floating-point sums in reading order exactly (every partial sum is an integer
            # below 2**53) and vectorise; the risk comes from the tables.
            s1 = float(s1i)
            s2 = float(s2i)
            rl_sum, rh_sum = _table_risk_sums(rr, risk_low, risk_high)
        else:
            for k in range(n):
                v = vv[k]
                d = v - shift
                s1 += d
                s2 += d * d
                r = rr[k]
                if v == r and 0 < r < risk_low.shape[0]:
                    rl_sum += risk_low[r]
                    rh_sum += risk_high[r]
                else:
                    rl, rh = risk_terms(v)
                    rl_sum += rl
                    rh_sum += rh
        if not on_grid:
            # Pass 3 (any other input): wear slots, local days and AGP slots. Divisions by
            # constants on non-negative numbers (unsigned) and the local day tracked
            # incrementally (times are sorted).
            slot_count[:] = 0
            last_day[:] = -(1 << 62)
            active = 0
            prev_wear_slot = -1
            day = 0
            day_lo = 1 << 62
            # The current local day's accumulators live in registers; stored when the day changes
            # (its readings are k_day .. k - 1: count and last index follow from k at the switch).
            cur_col = -1
            k_day = 0
            run_sum = 0.0
            run_in_range = 0
            days_row = agp_days[p]
            for k in range(n):
                t = tt[k]
                wear_slot = int(np.uint64(t - start) // np.uint64(SLOT_SECONDS))
                if wear_slot != prev_wear_slot:
                    active += 1
                    prev_wear_slot = wear_slot
                loc = t + oo[k] * 60
                if loc < day_lo or loc - day_lo >= DAY_SECONDS:
                    day = loc // DAY_SECONDS
                    day_lo = day * DAY_SECONDS
                    dcol = min(max(day - day_base, 0), n_days - 1)
                    if dcol != cur_col:
                        if cur_col >= 0:
                            day_count[p, cur_col] += k - k_day
                            day_sum[p, cur_col] = run_sum
                            day_in_range[p, cur_col] = run_in_range
                            day_last[p, cur_col] = lo + k - 1
                        cur_col = dcol
                        k_day = k
                        if day_count[p, dcol] == 0:
                            day_first[p, dcol] = lo + k
                        run_sum = day_sum[p, dcol]
                        run_in_range = day_in_range[p, dcol]
                slot = int(np.uint64(loc - day_lo) // np.uint64(SLOT_SECONDS))
                v = vv[k]
                r = rr[k]
                so[k] = slot
                c = slot_count[slot]
                g16[min(c, NET_SIZE - 1) * N_SLOTS + slot] = v
                slot_count[slot] = c + 1
                if last_day[slot] != day:
                    last_day[slot] = day
                    days_row[slot] += 1
                hour_hist[(slot // 12) * HIST_BINS + min(r, HIST_BINS - 1)] += 1
                run_sum += v
                run_in_range += (r >= 70) & (r <= 180)
            day_count[p, cur_col] += n - k_day
            day_sum[p, cur_col] = run_sum
            day_in_range[p, cur_col] = run_in_range
            day_last[p, cur_col] = lo + n - 1
            # AGP (the grid path has done it). Integer mg/dL with at most NET_SIZE readings per
            # slot (device data, <= 15 days): sorting network per slot, integer histogram per
            # hour. Otherwise the general sort.
            max_count = 0
            for s in range(N_SLOTS):
                max_count = max(max_count, slot_count[s])
            if all_integer and max_count <= NET_SIZE:
                _agp_network(g16, slot_count, p, agp)
                _hourly_quantiles(hour_hist, HIST_BINS, 0, slot_count, g16, hour_q)
            else:
                for h in range(N_HOURS):
                    hour_hist[h * HIST_BINS + r_min : h * HIST_BINS + r_max + 1] = 0
                _agp_sorted(
                    values, lo, n, rounded, slot_of, slot_count, order, by_slot, by_hour, hist,
                    p, agp, hour_q,
                )  # fmt: skip
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
        for q in range(5):
            _smooth_into(hour_q[q], hourly[p, q])
        # Episodes (2023 consensus) on the rounded values.
        # The class bytes beyond n stay zero for the 8-at-a-time search.
        classes[n : n + 8 - n % 8] = 0
        found = patient_episodes(
            values, times, rounded, classes, lo, hi, sample_interval, pat_int, pat_ext, pat_key
        )
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
            mage_scratch = np.empty((6, mage_len))
            mage_cross = np.empty((5, mage_len), dtype=np.int64)
        fstats[p, F_MAGE] = patient_mage(values, times, lo, hi, mage_grid, mage_scratch, mage_cross)
    return ep_int, ep_ext, n_ep, -1
