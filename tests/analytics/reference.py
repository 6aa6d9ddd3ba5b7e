"""Slow, obviously-correct pure-Python versions of the CGM metrics, one patient at a time.

The numba kernels are checked against these on random and edge-case inputs. They follow the
written rules of docs/analytics.md directly (lists, sets, sorted()), not the kernels' tricks.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

SLOT = 300
DAY = 86_400
GAP = 45 * 60
MIN_DUR = 15 * 60


def clean(
    values: list[float], times: list[int], offsets: list[int]
) -> list[tuple[int, float, int]]:
    """(time, value, offset) sorted by time, NaN dropped, first of equal times kept."""
    rows = [
        (t, i, v, o)
        for i, (v, t, o) in enumerate(zip(values, times, offsets, strict=True))
        if not math.isnan(v)
    ]
    rows.sort()
    out: list[tuple[int, float, int]] = []
    for t, _, v, o in rows:
        if out and out[-1][0] == t:
            continue
        out.append((t, v, o))
    return out


def rint(v: float) -> int:
    return round(v)  # Python rounds half to even, like numpy.rint


def quantile7(xs: list[float], q: float) -> float:
    if not xs:
        return math.nan
    xs = sorted(xs)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    if lo + 1 >= len(xs):
        return xs[-1]
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


def smooth(series: list[float]) -> list[float]:
    n = len(series)
    out = list(series)
    for h in range(n):
        cur, prev, nxt = series[h], series[(h - 1) % n], series[(h + 1) % n]
        if math.isnan(cur) or (math.isnan(prev) and math.isnan(nxt)):
            continue
        if math.isnan(prev):
            out[h] = (4 * cur + nxt) / 5
        elif math.isnan(nxt):
            out[h] = (prev + 4 * cur) / 5
        else:
            out[h] = (prev + 4 * cur + nxt) / 6
    return out


@dataclass
class Reference:
    n: int = 0
    mean: float = math.nan
    sd: float = math.nan
    ranges: list[int] = field(default_factory=lambda: [0] * 5)
    target: list[int] = field(default_factory=lambda: [0] * 3)
    lbgi: float = math.nan
    hbgi: float = math.nan
    active_slots: int = 0
    days: int = 0
    agp: list[list[float]] = field(default_factory=list)  # 5 x 288
    agp_days: list[int] = field(default_factory=list)
    hourly: list[list[float]] = field(default_factory=list)  # 5 x 24
    daily: dict[int, tuple[int, float, int]] = field(default_factory=dict)  # day: n, sum, tir
    episodes: list[tuple[int, int, int, float]] = field(default_factory=list)  # kind, s, e, x


def _runs(rows: list[tuple[int, float, int]], inside) -> list[tuple[bool, int, int]]:
    """Maximal runs (is_inside, first, last) of consecutive readings."""
    runs: list[tuple[bool, int, int]] = []
    for i, (_, v, _) in enumerate(rows):
        flag = bool(inside(rint(v)))
        if runs and runs[-1][0] == flag:
            runs[-1] = (flag, runs[-1][1], i)
        else:
            runs.append((flag, i, i))
    return runs


def run_episodes(rows, inside, begin_min: int, dt: int) -> list[tuple[int, int, float]]:
    """Episodes (first, last, extreme) of one gap-free segment, pairing candidate runs."""

    def dur(a: int, b: int) -> int:
        return rows[b][0] - rows[a][0] + dt

    runs = _runs(rows, inside)
    out = []
    r = 0
    while r < len(runs):
        flag, a, b = runs[r]
        if not (flag and dur(a, b) >= begin_min):
            r += 1
            continue
        # the first later non-qualifying run lasting >= 15 min closes the episode
        close = next(
            (
                q
                for q in range(r + 1, len(runs))
                if not runs[q][0] and dur(runs[q][1], runs[q][2]) >= MIN_DUR
            ),
            None,
        )
        last = (
            runs[close][1] - 1
            if close is not None
            else max(q_b for q_flag, _, q_b in runs[r:] if q_flag)
        )
        vals = [rows[i][1] for i in range(a, last + 1) if inside(rint(rows[i][1]))]
        hypo = inside(0)
        out.append((a, last, min(vals) if hypo else max(vals)))
        r = close + 1 if close is not None else len(runs)
    return out


def extended_hyper(rows, dt: int) -> list[tuple[int, int, float]]:
    out = []
    barrier = 0
    i = 0
    while i < len(rows):
        t = rows[i][0]
        window = [j for j in range(barrier, i + 1) if rows[j][0] >= t - 7200 + dt]
        high = [j for j in window if rint(rows[j][1]) > 250]
        if len(high) * dt >= 90 * 60:
            first = high[0]
            last = i
            out_first = None
            j = i + 1
            closed_at = None
            while j < len(rows):
                r = rint(rows[j][1])
                if r > 180:
                    last = j
                    out_first = None
                else:
                    out_first = j if out_first is None else out_first
                    if rows[j][0] - rows[out_first][0] + dt >= MIN_DUR:
                        closed_at = j
                        break
                j += 1
            out.append((first, last, max(rows[m][1] for m in range(first, last + 1))))
            if closed_at is None:
                break
            barrier = closed_at + 1
            i = closed_at + 1
            continue
        i += 1
    return out


def segments(rows):
    seg: list = []
    for row in rows:
        if seg and row[0] - seg[-1][0] > GAP:
            yield seg
            seg = []
        seg.append(row)
    if seg:
        yield seg


def reference(
    values, times, offsets, start: int, end: int, target=(70, 180), dt: int = 300
) -> Reference:
    rows = [r for r in clean(values, times, offsets) if start <= r[0] < end]
    ref = Reference()
    ref.n = len(rows)
    ref.agp = [[math.nan] * 288 for _ in range(5)]
    ref.agp_days = [0] * 288
    ref.hourly = [[math.nan] * 24 for _ in range(5)]
    if not rows:
        return ref
    vals = [v for _, v, _ in rows]
    ref.mean = sum(vals) / len(vals)
    ref.sd = statistics.stdev(vals) if len(vals) > 1 else math.nan
    for v in vals:
        r = rint(v)
        ref.ranges[0 if r < 54 else 1 if r < 70 else 2 if r <= 180 else 3 if r <= 250 else 4] += 1
        ref.target[0 if r < target[0] else 1 if r <= target[1] else 2] += 1
    lows, highs = [], []
    for v in vals:
        f = 1.509 * (math.log(v) ** 1.084 - 5.381)
        lows.append(10 * f * f if f < 0 else 0.0)
        highs.append(10 * f * f if f > 0 else 0.0)
    ref.lbgi = sum(lows) / len(vals)
    ref.hbgi = sum(highs) / len(vals)
    ref.active_slots = len({(t - start) // SLOT for t, _, _ in rows})
    slot_vals: dict[int, list[float]] = {}
    slot_days: dict[int, set[int]] = {}
    hour_vals: dict[int, list[float]] = {}
    for t, v, o in rows:
        local = t + 60 * o
        day, sod = divmod(local, DAY)
        slot = sod // SLOT
        slot_vals.setdefault(slot, []).append(v)
        slot_days.setdefault(slot, set()).add(day)
        hour_vals.setdefault(slot // 12, []).append(v)
        n, s, tir = ref.daily.get(day, (0, 0.0, 0))
        ref.daily[day] = (n + 1, s + v, tir + (70 <= rint(v) <= 180))
    ref.days = len(ref.daily)
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    for s, xs in slot_vals.items():
        ref.agp_days[s] = len(slot_days[s])
        for q, p in enumerate(qs):
            ref.agp[q][s] = quantile7(xs, p)
    for q, p in enumerate(qs):
        ref.hourly[q] = smooth([quantile7(hour_vals.get(h, []), p) for h in range(24)])
    kinds = (
        (0, lambda r: r < 70, MIN_DUR),
        (1, lambda r: r < 54, MIN_DUR),
        (2, lambda r: r < 70, 120 * 60 + 1),
        (3, lambda r: r > 180, MIN_DUR),
        (4, lambda r: r > 250, MIN_DUR),
    )
    for seg in segments(rows):
        for kind, inside, begin in kinds:
            for a, b, x in run_episodes(seg, inside, begin, dt):
                ref.episodes.append((kind, seg[a][0], min(seg[b][0] + dt, end), x))
        for a, b, x in extended_hyper(seg, dt):
            ref.episodes.append((5, seg[a][0], min(seg[b][0] + dt, end), x))
    ref.episodes.sort()
    return ref
