"""Benchmark of the CGM analytics: numba cohort kernels vs vectorised numpy vs a memory floor.

Run: ``NUMBA_CACHE_DIR=.numba_cache .venv/bin/python bench/analytics.py [--quick] [--runs N]
[--no-pg | --no-loader]``; the last figures are ``loader.load_cgm`` for 1,000 patients x 14 days
from scratch SQLite and PostgreSQL databases (bench/loader.py).
Cohort: N patients x 14 days of 5-min readings (integer mg/dL 39..401, ~96 % present), the
model of shared/reference/metrics.md §7.1 in simplified form. Every figure is the median of
``--runs`` (default 5) timed runs after a warm-up run. Wall time is what the target is about;
CPU time (all threads) and the load average are printed because the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from clinic_portal.analytics import api
from clinic_portal.analytics import kernels as k

DAY = 86_400
START = 1_704_067_200  # 2024-01-01 00:00 UTC
DAYS = 14
SLOTS = DAYS * 288
TARGET_SECONDS = 0.25  # the issue: 10,000 patients x 14 days, full metric set, 2 cores
AGP_Q = np.array(k.AGP_QUANTILES)


def make_cohort(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Long arrays (values, times, utc_offsets, indptr) of a synthetic cohort."""
    rng = np.random.default_rng(seed)
    hours = (np.arange(SLOTS) * 300 % DAY) / 3600.0
    base = np.clip(rng.normal(150, 28, n), 95, 230)[:, None]
    circ = rng.uniform(5, 25, n)[:, None] * np.sin(2 * np.pi * (hours - 4) / 24)[None, :]
    meals = np.zeros((n, SLOTS), dtype=np.float32)
    for meal_hour in (7.5, 12.5, 19.0):
        phase = ((hours - meal_hour) % 24) * 60  # minutes since the meal
        tp = 60.0
        shape = (phase / tp) * np.exp(1 - phase / tp) * (phase < 480)
        meals += (rng.uniform(20, 120, n)[:, None] * shape[None, :]).astype(np.float32)
    noise = np.zeros((n, SLOTS), dtype=np.float32)
    eps = rng.normal(0, 3, (n, SLOTS)).astype(np.float32)
    for i in range(1, SLOTS):  # AR(1) physiological noise
        noise[:, i] = 0.95 * noise[:, i - 1] + eps[:, i]
    dips = (rng.random((n, SLOTS)) < 0.6 / 288 * 0.02).astype(np.float32)
    glucose = base + circ + meals + noise - 90 * np.minimum(np.cumsum(dips, axis=1) % 2, 1)
    glucose = np.clip(np.rint(glucose), 39, 401)
    present = rng.random((n, SLOTS)) > 0.04
    counts = present.sum(axis=1)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    values = glucose[present].astype(np.float64)
    times = np.broadcast_to(START + np.arange(SLOTS, dtype=np.int64) * 300, (n, SLOTS))[present]
    offsets = np.zeros(values.shape[0], dtype=np.int64)
    return values, np.ascontiguousarray(times), offsets, indptr


def _type7(sorted_rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Type-7 quantiles AGP_Q along the last axis of NaN-last sorted rows with counts values."""
    h = (np.maximum(counts, 1) - 1)[..., None] * AGP_Q  # (..., 5)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(counts, 1)[..., None] - 1)
    below = np.take_along_axis(sorted_rows, lo, axis=-1)
    above = np.take_along_axis(sorted_rows, hi, axis=-1)
    out = below + (h - lo) * (above - below)
    out[counts == 0] = np.nan
    return np.moveaxis(out, -1, -2)  # quantile axis before the slot/hour axis


def _run_episodes(qualifies: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Consensus episodes on a dense (n, T) grid: begin with >= 3 qualifying points, end with
    >= 3 non-qualifying points (missing points do not qualify). Returns patient, first, last."""
    n, t = qualifies.shape
    q = np.zeros((n, t + 2), dtype=bool)
    q[:, 1:-1] = qualifies
    flat = q.ravel()
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # run starts in the padded flat grid
    starts = np.concatenate(([0], change))
    ends = np.concatenate((change, [flat.size]))
    run_q = flat[starts]
    row = starts // (t + 2)
    long_run = (ends - starts) >= 3
    begins = run_q & long_run
    closes = ~run_q & long_run
    # An episode: a long qualifying run with a long non-qualifying run (or a new patient row)
    # since the previous episode began.
    closed_before: np.ndarray = np.cumsum(closes) - closes
    cand = np.flatnonzero(begins)
    new_row = np.ones(cand.size, dtype=bool)
    new_row[1:] = row[cand[1:]] != row[cand[:-1]]
    fresh = np.ones(cand.size, dtype=bool)
    fresh[1:] = closed_before[cand[1:]] > closed_before[cand[:-1]]
    first_run = cand[new_row | fresh]
    # It lasts until the last qualifying run before the next long non-qualifying run.
    next_close = np.searchsorted(np.flatnonzero(closes), first_run)
    close_idx = np.append(np.flatnonzero(closes), starts.size)[next_close]
    close_idx = np.minimum(close_idx, np.searchsorted(row, row[first_run], side="right"))
    last = ends[close_idx - 1 - (~run_q[close_idx - 1]).astype(np.int64)] - 1
    off = row[first_run] * (t + 2) + 1
    return row[first_run], starts[first_run] - off, last - off


def numpy_metrics(values: np.ndarray, times: np.ndarray, indptr: np.ndarray) -> dict:
    """The metric set in vectorised numpy (no numba), on the dense (patients x 5-min) grid.

    Mean, SD, CV, GMI, the five ranges, GRI, LBGI/HBGI, % active, days with data, episodes
    (hypo L1/L2/extended, hyper L1/L2 with start/end/duration/nadir/peak, on the grid, where a
    missing point does not qualify; extended hyper counted as 18-of-24 windows starting, no end
    rule), AGP percentiles per slot + hourly smoothed + days per slot,
    daily profiles. MAGE (a sequential walk over extrema) has no vectorised form and is left
    out, so this side does less work than the kernels.
    """
    n = indptr.shape[0] - 1
    starts = indptr[:-1]
    cnt = np.diff(indptr)
    r = np.rint(values)
    s1 = np.add.reduceat(values, starts)
    mean = s1 / cnt
    sd = np.sqrt((np.add.reduceat(values * values, starts) - s1 * mean) / (cnt - 1))
    edges = np.add.reduceat(
        np.stack([r < 54, r < 70, r <= 180, r <= 250], axis=1).astype(np.int64), starts
    )
    pct = 100.0 * np.diff(edges, axis=1, prepend=0, append=cnt[:, None]) / cnt[:, None]
    gri = np.minimum(3.0 * pct[:, 0] + 2.4 * pct[:, 1] + 1.6 * pct[:, 4] + 0.8 * pct[:, 3], 100)
    f = 1.509 * (np.log(values) ** 1.084 - 5.381)
    risk = 10 * f * f
    lbgi = np.add.reduceat(np.where(f < 0, risk, 0), starts) / cnt
    hbgi = np.add.reduceat(np.where(f > 0, risk, 0), starts) / cnt
    patient = np.repeat(np.arange(n), cnt)
    grid = np.full((n, SLOTS), np.nan)
    grid[patient, (times - START) // 300] = values
    present = ~np.isnan(grid)
    active = 100.0 * present.sum(axis=1) / SLOTS
    by_day = grid.reshape(n, DAYS, 288)
    day_n = present.reshape(n, DAYS, 288).sum(axis=2)
    days = (day_n > 0).sum(axis=1)
    rg = np.rint(by_day)
    with np.errstate(invalid="ignore", divide="ignore"):
        daily_mean = np.nansum(by_day, axis=2) / day_n
        daily_tir = 100.0 * ((rg >= 70) & (rg <= 180)).sum(axis=2) / day_n
    slot_sorted = np.sort(by_day.transpose(0, 2, 1), axis=2)  # NaN last
    slot_n = present.reshape(n, DAYS, 288).sum(axis=1)
    agp = _type7(slot_sorted, slot_n)
    hour_sorted = np.sort(by_day.reshape(n, DAYS, 24, 12).transpose(0, 2, 1, 3).reshape(n, 24, -1))
    hour_n = slot_n.reshape(n, 24, 12).sum(axis=2)
    hourly = _type7(hour_sorted, hour_n)
    prev, nxt = np.roll(hourly, 1, axis=2), np.roll(hourly, -1, axis=2)
    smooth = np.where(
        np.isnan(prev) & np.isnan(nxt),
        hourly,
        (np.nan_to_num(prev) + 4 * hourly + np.nan_to_num(nxt))
        / (4 + ~np.isnan(prev) + ~np.isnan(nxt)),
    )
    rgrid = np.rint(grid)
    episodes: dict[str, object] = {}
    for name, mask, sign in (
        ("hypo_l1", rgrid < 70, 1),
        ("hypo_l2", rgrid < 54, 1),
        ("hyper_l1", rgrid > 180, -1),
        ("hyper_l2", rgrid > 250, -1),
    ):
        pat, first, last = _run_episodes(mask)
        # nadir (peak) over each episode's qualifying points: reduceat over [first, last + 1)
        span = np.append(np.where(mask, grid, np.inf * sign).ravel() * sign, np.inf)
        bounds = np.stack((pat * SLOTS + first, pat * SLOTS + last + 1), axis=1).ravel()
        extreme = sign * np.minimum.reduceat(span, bounds)[::2] if bounds.size else bounds
        episodes[name] = (pat, START + first * 300, START + (last + 1) * 300, extreme)
        if name == "hypo_l1":
            long = (last - first + 1) >= 25  # > 120 min
            episodes["hypo_extended"] = (pat[long], first[long], last[long])
    high: np.ndarray = np.cumsum(np.nan_to_num(rgrid) > 250, axis=1)
    window: np.ndarray = high[:, 23:] - np.pad(high, ((0, 0), (1, 0)))[:, :-24]
    hit: np.ndarray = window >= 18
    episodes["hyper_extended"] = (hit[:, 1:] & ~hit[:, :-1]).sum(axis=1) + hit[:, 0]
    return {
        "mean": mean,
        "sd": sd,
        "cv": 100 * sd / mean,
        "gmi": 3.31 + 0.02392 * mean,
        "pct": pct,
        "gri": gri,
        "lbgi": lbgi,
        "hbgi": hbgi,
        "active": active,
        "days": days,
        "daily": (day_n, daily_mean, daily_tir),
        "agp": agp,
        "agp_days": slot_n,
        "hourly": smooth,
        "episodes": episodes,
    }


def timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall seconds and median CPU seconds (all threads) of ``runs`` calls."""
    wall, cpu = [], []
    for _ in range(runs):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def loader_seconds(n_patients: int, runs: int, pg_url: str | None) -> dict[str, float]:
    """``loader.load_cgm`` for ``n_patients`` x 14 days from scratch SQLite and PostgreSQL
    databases (bench/loader.py fills them; median of ``runs``): engine name -> seconds."""
    import loader as loader_bench  # bench/loader.py, next to this script

    results = loader_bench.run(n_patients, DAYS, runs, pg_url)
    return {engine: figures[0] for engine, figures in results.items()}


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 patients only")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument(
        "--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server for the loader figure",
    )  # fmt: skip
    parser.add_argument("--no-pg", action="store_true", help="loader figure from SQLite only")
    parser.add_argument("--no-loader", action="store_true", help="skip the database loader figure")
    args = parser.parse_args()
    runs = max(1, args.runs)
    sizes = [100, 1000] if args.quick else [100, 1000, 10_000]
    t0 = time.perf_counter()
    v, t, o, ip = make_cohort(3)
    api.compute_cohort(v, t, o, ip, start=START, end=START + DAYS * DAY)
    print(f"warm-up (compile or cache load): {time.perf_counter() - t0:.2f} s")
    print(f"machine: {_machine()}")
    print(
        f"threads: {api._workers()} (CLINIC_PORTAL_ANALYTICS_THREADS); threading layer: none - "
        "the kernels are serial nogil functions run on a ThreadPoolExecutor, numba's "
        "parallel layers (omp/tbb/workqueue) are not used"
    )
    print(f"load average before (1/5/15 min): {_load()}")
    print(f"runs per figure: {runs} (median), after one warm-up run per size")
    header = (
        "patients",
        "readings",
        "numba s",
        "numba cpu",
        "objects s",
        "numpy s",
        "floor ms",
        "numpy/numba",
        "numba/floor",
    )
    print("{:>9} {:>11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11}".format(*header))
    end = START + DAYS * DAY
    for n in sizes:
        v, t, o, ip = make_cohort(n, seed=n)

        # Warm-up at this size: the first call also pays the page faults of fresh output arrays
        # (later calls reuse the arrays of dropped results, see api._OutputBuffers).
        first_s, _ = timed(partial(api.compute_cohort, v, t, o, ip, start=START, end=end), 1)
        numba_s, numba_cpu = timed(
            partial(api.compute_cohort, v, t, o, ip, start=START, end=end), runs
        )
        result = api.compute_cohort(v, t, o, ip, start=START, end=end)
        objects_s, _ = timed(partial(api.metrics_from_cohort, result), runs)
        del result
        numpy_metrics(v, t, ip)
        numpy_s, _ = timed(partial(numpy_metrics, v, t, ip), runs)
        blob = np.ones((v.nbytes + t.nbytes + o.nbytes) // 8)
        floor_s, _ = timed(partial(np.sum, blob), max(20, runs))
        print(
            f"{n:>9} {v.shape[0]:>11,} {numba_s:>9.4f} {numba_cpu:>9.4f} {objects_s:>9.3f} "
            f"{numpy_s:>9.3f} {floor_s * 1e3:>9.2f} {numpy_s / numba_s:>11.1f} "
            f"{numba_s / floor_s:>11.1f}"
        )
        print(f"    first call at this size (fresh output pages): {first_s:.4f} s")
        if n == 10_000:
            verdict = "met" if numba_s <= TARGET_SECONDS else "NOT met"
            print(f"    target <= {TARGET_SECONDS} s at 10,000 patients: {verdict}")
        del blob
    print(f"load average after: {_load()}")
    if not args.no_loader:
        # The loader's figure comes after the kernels' so that filling the scratch databases
        # does not disturb them.
        n = 1000
        seconds = loader_seconds(n, runs, None if args.no_pg else args.pg)
        for engine, load_s in seconds.items():
            print(f"loader.load_cgm, {n:,} patients x {DAYS} days from {engine}: {load_s:.2f} s")
    print(
        "numba s: api.compute_cohort from long arrays, wall (validation, stats, ranges, GRI, "
        "LBGI/HBGI, wear, days, 6 episode kinds, MAGE, AGP slots/hourly/days, daily profiles)"
    )
    print("numba cpu: CPU seconds of all threads for the same call (cpu/wall = cores used)")
    print("objects s: per-patient CgmMetrics/Episode objects from that result (not in numba s)")
    print("numpy s: the same set vectorised with numpy on the dense grid, without MAGE")
    print("floor: one np.sum over as many bytes as values + times + utc_offsets (single thread)")


if __name__ == "__main__":
    main()
