"""Benchmark of the CGM analytics: numba cohort kernels vs vectorised numpy vs a memory floor.

Run: ``NUMBA_CACHE_DIR=.numba_cache .venv/bin/python bench/analytics.py [--quick]``.
Cohort: N patients x 14 days of 5-min readings (integer mg/dL 39..401, ~96 % present), the
model of shared/reference/metrics.md §7.1 in simplified form. Prints medians of several runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from clinic_portal.analytics import api
from clinic_portal.analytics import kernels as k

DAY = 86_400
START = 1_704_067_200  # 2024-01-01 00:00 UTC
DAYS = 14
SLOTS = DAYS * 288


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


def numpy_metrics(values: np.ndarray, times: np.ndarray, indptr: np.ndarray) -> dict:
    """The same metric set, vectorised numpy (no numba): dense grid + reductions.

    Stats, ranges, LBGI/HBGI, wear, days, episode counts (run lengths on the dense grid, the
    consensus start/end rules) and AGP percentiles (np.nanpercentile per slot across days).
    MAGE is not vectorisable in numpy and is left out of this side of the comparison.
    """
    n = indptr.shape[0] - 1
    starts = indptr[:-1]
    cnt = np.diff(indptr)
    r = np.rint(values)
    s1 = np.add.reduceat(values, starts)
    s2 = np.add.reduceat(values * values, starts)
    mean = s1 / cnt
    sd = np.sqrt((s2 - s1 * mean) / (cnt - 1))
    edges = np.add.reduceat(
        np.stack([r < 54, r < 70, r <= 180, r <= 250], axis=1).astype(np.int64), starts
    )
    f = 1.509 * (np.log(values) ** 1.084 - 5.381)
    risk = 10 * f * f
    lbgi = np.add.reduceat(np.where(f < 0, risk, 0), starts) / cnt
    hbgi = np.add.reduceat(np.where(f > 0, risk, 0), starts) / cnt
    patient = np.repeat(np.arange(n), cnt)
    slot = (times - START) // 300
    grid = np.full((n, SLOTS), np.nan)
    grid[patient, slot] = values
    days = (~np.isnan(grid.reshape(n, DAYS, 288))).any(axis=2).sum(axis=1)
    agp = np.nanpercentile(grid.reshape(n, DAYS, 288), [5, 25, 50, 75, 95], axis=1)
    episodes = {}
    for name, below in (("hypo_l1", grid < 70), ("hypo_l2", grid < 54), ("hyper_l1", grid > 180)):
        # run starts of >= 3 consecutive qualifying points (missing points count as not below)
        b = below.astype(np.int8)
        run3 = b[:, 2:] & b[:, 1:-1] & b[:, :-2]
        first = np.concatenate([run3[:, :1], run3[:, 1:] & ~run3[:, :-1]], axis=1)
        episodes[name] = first.sum(axis=1)
    return {
        "mean": mean,
        "sd": sd,
        "edges": edges,
        "lbgi": lbgi,
        "hbgi": hbgi,
        "days": days,
        "agp": agp,
        "episodes": episodes,
    }


def median_time(fn: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def load_timing_hook(n_patients: int) -> float | None:
    """Seconds to load ``n_patients`` x 14 days through ``loader.load_cgm``; None = not measured.

    Placeholder for the database benchmark (SQLite/PostgreSQL) owned by the upload engineer.
    """
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 patients only")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes = [100, 1000] if args.quick else [100, 1000, 10_000]
    t0 = time.perf_counter()
    v, t, o, ip = make_cohort(3)
    api.compute_cohort(v, t, o, ip, start=START, end=START + DAYS * DAY)
    print(f"warm-up (compile or cache load): {time.perf_counter() - t0:.2f} s")
    print(f"threads: {api._workers()}")
    header = (
        "patients",
        "readings",
        "numba s",
        "objects s",
        "numpy s",
        "floor ms",
        "numpy/numba",
        "numba/floor",
    )
    print("{:>9} {:>11} {:>9} {:>10} {:>9} {:>9} {:>12} {:>12}".format(*header))
    for n in sizes:
        v, t, o, ip = make_cohort(n, seed=n)
        end = START + DAYS * DAY
        data = api.prepare(v, t, o, ip)

        def kernels(data: api.CgmArrays = data, end: int = end) -> api.CohortResult:
            return api.compute_cohort(data, None, None, None, start=START, end=end)

        def from_long(v=v, t=t, o=o, ip=ip, end=end) -> api.CohortResult:  # type: ignore[no-untyped-def]
            return api.compute_cohort(v, t, o, ip, start=START, end=end)

        runs = args.runs if n <= 1000 else max(3, args.runs // 2)
        numba_s = median_time(from_long, runs)
        result = kernels()
        objects_s = median_time(lambda r=result: api.metrics_from_cohort(r), max(1, runs // 2))
        numpy_s = median_time(lambda v=v, t=t, ip=ip: numpy_metrics(v, t, ip), max(1, runs // 2))
        floor_bytes = v.nbytes + t.nbytes + o.nbytes
        blob = np.ones(floor_bytes // 8)
        floor_s = median_time(lambda b=blob: np.sum(b), 20)
        print(
            f"{n:>9} {v.shape[0]:>11,} {numba_s:>9.4f} {objects_s:>10.3f} {numpy_s:>9.3f} "
            f"{floor_s * 1e3:>9.2f} {numpy_s / numba_s:>12.1f} {numba_s / floor_s:>12.1f}"
        )
        load_s = load_timing_hook(n)
        if load_s is not None:
            print(f"    loader: {load_s:.3f} s")
        del result, data
    print("numba s: api.compute_cohort from long arrays (validation, episodes, AGP, MAGE, daily)")
    print("objects s: building the per-patient CgmMetrics/Episode objects from that result")
    print("floor: np.sum over the bytes of values + times + utc_offsets")
    print(f"kernel episode kinds: {k.N_KINDS}; numpy side omits MAGE and extended episodes")


if __name__ == "__main__":
    main()
