"""Agreement with iglu-python 0.4.3 on a generated cohort (metrics.md §6.1).

The cohort is on an exact 5-min grid, starts at 00:05 (iglu drops a 00:00 reading of day one,
metrics.md §6.2 bug 5) and its gaps are either a missing reading inside a stable stretch or
longer than 45 min, so iglu's interpolated grid and our raw-reading rules see the same runs.
"""

from __future__ import annotations

import iglu_python as iglu
import numpy as np
import pandas as pd
import pytest

from clinic_portal.analytics import api

START = 1_704_067_200  # 2024-01-01 00:00 UTC
DAYS = 4
pytestmark = pytest.mark.filterwarnings("ignore::Warning")  # iglu's pandas deprecations


def cohort(n: int = 4, seed: int = 7):
    rng = np.random.default_rng(seed)
    slots = DAYS * 288 - 1
    t = START + 300 + np.arange(slots) * 300
    frames, vals, times, ip = [], [], [], [0]
    for p in range(n):
        x = np.zeros(slots)
        for i in range(1, slots):
            x[i] = 0.97 * x[i - 1] + rng.normal(0, 9)
        g = np.clip(np.rint(150 + 40 * np.sin(np.arange(slots) / (30 + 10 * p)) + 3 * x), 40, 400)
        keep = np.ones(slots, bool)
        keep[rng.integers(0, slots, 3)] = False
        keep[500 + 100 * p : 520 + 100 * p] = False  # a 100-min gap: splits episodes and MAGE
        frames.append(
            pd.DataFrame({"id": f"p{p}", "time": pd.to_datetime(t[keep], unit="s"), "gl": g[keep]})
        )
        vals.append(g[keep])
        times.append(t[keep])
        ip.append(ip[-1] + int(keep.sum()))
    values = np.concatenate(vals)
    ours = api.cgm_metrics(
        values,
        np.concatenate(times),
        np.zeros(values.size, np.int64),
        np.array(ip),
        start=START,
        end=START + DAYS * 86_400,
    )
    return pd.concat(frames, ignore_index=True), ours


@pytest.fixture(scope="module")
def both():
    return cohort()


def column(df: pd.DataFrame, name: str) -> np.ndarray:
    return df.sort_values("id")[name].to_numpy(dtype=float)


def test_basic_statistics(both):
    df, ours = both
    np.testing.assert_allclose([m.mean for m in ours], column(iglu.mean_glu(df), "mean"))
    np.testing.assert_allclose([m.sd for m in ours], column(iglu.sd_glu(df), "SD"))
    np.testing.assert_allclose([m.cv for m in ours], column(iglu.cv_glu(df), "CV"))
    np.testing.assert_allclose([m.gmi for m in ours], column(iglu.gmi(df), "GMI"))
    np.testing.assert_allclose([m.lbgi for m in ours], column(iglu.lbgi(df), "LBGI"))
    np.testing.assert_allclose([m.hbgi for m in ours], column(iglu.hbgi(df), "HBGI"))
    np.testing.assert_allclose([m.gri for m in ours], column(iglu.gri(df), "GRI"))


def test_consensus_ranges(both):
    df, ours = both
    below = iglu.below_percent(df, targets_below=[54, 70])
    above = iglu.above_percent(df, targets_above=[180, 250])
    inside = iglu.in_range_percent(df, target_ranges=[[70, 180]])
    np.testing.assert_allclose([m.pct_below_54 for m in ours], column(below, "below_54"))
    np.testing.assert_allclose(
        [m.pct_54_69 for m in ours], column(below, "below_70") - column(below, "below_54")
    )
    np.testing.assert_allclose([m.pct_70_180 for m in ours], column(inside, "in_range_70_180"))
    np.testing.assert_allclose(
        [m.pct_181_250 for m in ours], column(above, "above_180") - column(above, "above_250")
    )
    np.testing.assert_allclose([m.pct_above_250 for m in ours], column(above, "above_250"))


def test_mage(both):
    df, ours = both
    np.testing.assert_allclose([m.mage for m in ours], column(iglu.mage(df), "MAGE"), rtol=1e-9)


def test_episode_counts(both):
    df, ours = both
    ep = iglu.episode_calculation(df)
    for attr, type_, level in (
        ("hypo_l1_episodes", "hypo", "lv1"),
        ("hypo_l2_episodes", "hypo", "lv2"),
        ("hypo_extended_episodes", "hypo", "extended"),
        ("hyper_l1_episodes", "hyper", "lv1"),
        ("hyper_l2_episodes", "hyper", "lv2"),
    ):
        rows = ep[(ep["type"] == type_) & (ep["level"] == level)].sort_values("id")
        assert [getattr(m, attr) for m in ours] == list(rows["total_episodes"].astype(int)), attr
