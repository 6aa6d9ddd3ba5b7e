"""Server-built SVG charts: well-formed, no inline style, geometry that matches the numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import pytest

from clinic_portal.reports import charts

SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class Band:
    key: str
    name: str
    range_text: str
    percent: float | None


@dataclass(frozen=True)
class Profile:
    hourly: np.ndarray
    days: np.ndarray


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(str(markup))  # noqa: S314 - our own output
    assert root.tag == f"{SVG}svg" and root.get("role") == "img" and root.get("aria-label")
    assert root.find(f"{SVG}title") is not None
    # The Content-Security-Policy forbids inline styles: presentation attributes only.
    assert all("style" not in el.attrib for el in root.iter())
    return root


def bands(*percents: float | None) -> list[Band]:
    keys = ("very-high", "high", "in-range", "low", "very-low")
    return [Band(k, k, "", p) for k, p in zip(keys, percents, strict=True)]


def test_tir_bar_segments_are_proportional_lowest_first() -> None:
    root = parse(charts.tir_bar(bands(5.0, 20.0, 70.0, 4.0, 1.0)))
    rects = root.findall(f"{SVG}rect")
    assert [r.get("class") for r in rects] == [
        "band-very-low",
        "band-low",
        "band-in-range",
        "band-high",
        "band-very-high",
    ]
    widths = [float(r.get("width")) for r in rects]
    assert widths == pytest.approx([6.0, 24.0, 420.0, 120.0, 30.0], abs=0.06)
    xs = [float(r.get("x")) for r in rects]
    assert xs == pytest.approx(np.concatenate(([0], np.cumsum(widths)[:-1])), abs=0.1)
    assert [r.get("fill") for r in rects][2] == charts.BAND_FILL["in-range"]
    # Wide segments carry their percentage, narrow ones do not.
    assert [t.text for t in root.findall(f"{SVG}text")] == ["70 %", "20 %"]


def test_tir_bar_without_data_says_so() -> None:
    root = parse(charts.tir_bar(bands(None, None, None, None, None)))
    assert "No CGM data" in "".join(root.itertext())


def flat_profile(value: float = 120.0, days: int = 14) -> Profile:
    hourly = np.tile(np.array([[0.6], [0.8], [1.0], [1.2], [1.5]]) * value, (1, 24))
    return Profile(hourly, np.full(288, days, dtype=np.int32))


def test_agp_series_wraps_round_midnight_and_blanks_thin_hours() -> None:
    profile = flat_profile()
    profile.hourly[2, 0], profile.hourly[2, 23] = 100.0, 140.0
    hours, series = charts.agp_series(profile)
    assert hours[0] == 0 and hours[-1] == 24 and hours[1] == 0.5
    assert series[2, 0] == series[2, -1] == pytest.approx(120.0)  # mean of 23:30 and 00:30
    days = profile.days.copy()
    days[12 * 5 : 12 * 6] = 4  # 05:00-06:00 from only 4 days
    hours, series = charts.agp_series(Profile(profile.hourly, days))
    assert np.isnan(series[:, 6]).all() and np.isfinite(series[:, 5]).all()


def test_agp_chart_draws_bands_median_target_and_labels() -> None:
    root = parse(
        charts.agp_chart(flat_profile(), unit="mmol/L", target_low=70, target_high=180, n_days=14)
    )
    polygons = root.findall(f"{SVG}polygon")
    assert [p.get("class") for p in polygons] == ["agp-outer", "agp-inner"]
    median = root.find(f"{SVG}polyline")
    assert median.get("class") == "agp-median" and len(median.get("points").split()) == 26
    # The median of 120 mg/dL sits at 120/350 of the plot height (top 28, height 228).
    ys = [float(p.split(",")[1]) for p in median.get("points").split()]
    assert ys == pytest.approx([28 + 228 * (1 - 120 / 350)] * 26, abs=0.06)
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert {"3.0", "3.9", "10.0", "13.9", "19.4", "mmol/L", "00:00", "24:00"} <= set(texts)
    assert any(t.startswith("14 days of CGM data") for t in texts)
    target = root.find(f"{SVG}rect[@class='target-band']")
    assert float(target.get("height")) == pytest.approx(228 * 110 / 350, abs=0.1)


def test_agp_chart_splits_at_blank_hours() -> None:
    profile = flat_profile()
    days = profile.days.copy()
    days[12 * 10 : 12 * 12] = 2
    root = parse(
        charts.agp_chart(
            Profile(profile.hourly, days), unit="mg/dL", target_low=63, target_high=140, n_days=9
        )
    )
    assert len(root.findall(f"{SVG}polyline")) == 2
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert {"63", "140", "250", "350"} <= set(texts)
    assert "54" not in texts  # too close to 63 to label both


def test_agp_chart_with_no_valid_hour() -> None:
    profile = Profile(np.full((5, 24), np.nan), np.zeros(288, dtype=np.int32))
    root = parse(charts.agp_chart(profile, unit="mg/dL", target_low=70, target_high=180, n_days=0))
    assert root.find(f"{SVG}polyline") is None
    assert "Not enough data" in "".join(root.itertext())


def test_daily_chart_breaks_at_gaps_and_clamps() -> None:
    t = np.concatenate([np.arange(0, 3600, 300), np.arange(7200, 9000, 300), [50_000]])
    v = np.full(t.size, 500.0)
    root = parse(
        charts.daily_chart(t, v, unit="mg/dL", target_low=70, target_high=180, label="Mon 01 Jan")
    )
    lines = root.findall(f"{SVG}polyline")
    assert [len(line.get("points").split()) for line in lines] == [12, 6]
    assert len(root.findall(f"{SVG}circle")) == 1  # the lone reading
    ys = {float(p.split(",")[1]) for p in lines[0].get("points").split()}
    assert ys == {6.0}  # 500 mg/dL drawn at the 350 ceiling (top of the plot)


def test_daily_chart_empty_day_and_escaped_label() -> None:
    markup = charts.daily_chart(
        [], [], unit="mmol/L", target_low=70, target_high=180, label='<script>"x"</script>'
    )
    root = parse(markup)
    assert "<script>" not in str(markup)
    assert root.get("aria-label").startswith('Glucose on <script>"x"</script>')
    assert "no data" in "".join(root.itertext())
    assert {"3.9", "10.0"} <= {t.text for t in root.findall(f"{SVG}text")}
