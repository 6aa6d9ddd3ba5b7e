"""The ``flask analytics`` commands and the pure CSV parser behind them."""

from __future__ import annotations

import json

import pytest
from flask import Flask

from clinic_portal.analytics.cli import CsvError, analytics_cli, default_window, read_long_csv

KEYS = {
    "mean",
    "sd",
    "cv",
    "gmi",
    "pct_below_54",
    "pct_54_69",
    "pct_70_180",
    "pct_181_250",
    "pct_above_250",
    "active_percent",
    "days_with_data",
    "gri",
    "lbgi",
    "hbgi",
    "mage",
    "hypo_l1_episodes",
    "hypo_l2_episodes",
    "hypo_extended_episodes",
    "hyper_l1_episodes",
    "hyper_l2_episodes",
    "agp",
}


@pytest.fixture
def runner():
    app = Flask(__name__)
    app.cli.add_command(analytics_cli)
    return app.test_cli_runner()


def csv_text(rows):
    return "id,time,gl\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows)


def test_compute_prints_one_object_per_patient(runner, tmp_path):
    rows = [
        ("p1", f"2024-03-01T{h:02d}:{m:02d}:00", 60 if h == 3 else 120)
        for h in range(24)
        for m in range(0, 60, 5)
    ]
    rows += [("p2", "2024-03-01T10:00:00", 200), ("p2", "2024-03-01T09:55:00", 210)]
    rows.append(rows[5])  # a repeated row is de-duplicated, not rejected
    path = tmp_path / "in.csv"
    path.write_text(csv_text(rows[::-1]))  # and unsorted input is sorted
    result = runner.invoke(args=["analytics", "compute", str(path), "--tz", "Europe/Vienna"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == {"p1", "p2"}
    assert set(out["p1"]) == KEYS
    assert out["p1"]["days_with_data"] == 1
    assert out["p1"]["active_percent"] == pytest.approx(100.0)
    assert out["p1"]["hypo_l1_episodes"] == 1  # 03:00-03:55 at 60 mg/dL
    assert out["p1"]["pct_54_69"] == pytest.approx(100 * 12 / 288)
    assert out["p2"]["mean"] == 205.0
    assert len(out["p1"]["agp"]["p50"]) == 288
    # local time in Vienna: the 03:00 slot holds the low readings
    assert out["p1"]["agp"]["p50"][36] == 60.0
    assert out["p2"]["agp"]["p05"][0] is None


def test_compute_with_window(runner, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(
        csv_text([("a", "2024-03-01T00:00:00Z", 100), ("a", "2024-03-02T00:00:00Z", 300)])
    )
    result = runner.invoke(
        args=[
            "analytics",
            "compute",
            str(path),
            "--start",
            "2024-03-01T00:00:00",
            "--end",
            "2024-03-02T00:00:00",
        ]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["a"]["mean"] == 100.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,when,gl\na,2024-01-01T00:00,100\n", "missing column(s) time"),
        ("id,time,gl\na,2024-01-01T00:00,100\na,yesterday,100\n", "line 3: time 'yesterday'"),
        ("id,time,gl\na,2024-01-01T00:00,abc\n", "line 2: glucose 'abc'"),
        ("id,time,gl\na,2024-01-01T00:00,-5\n", "line 2: glucose '-5'"),
    ],
)
def test_bad_input_names_the_line(runner, tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    result = runner.invoke(args=["analytics", "compute", str(path)])
    assert result.exit_code != 0
    assert message in result.output


def test_start_without_end_is_a_usage_error(runner, tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(csv_text([("a", "2024-03-01T00:00:00", 100)]))
    result = runner.invoke(args=["analytics", "compute", str(path), "--start", "2024-03-01"])
    assert result.exit_code == 2


def test_read_long_csv_keeps_offsets_and_na():
    data = read_long_csv(
        csv_text([("x", "2024-07-01T12:00:00", "NA"), ("x", "2024-07-01T12:05:00+02:00", 99)]),
        "America/New_York",
    )
    assert data.patient_ids == ["x"]
    assert list(data.utc_offsets) == [-240, 120]
    assert data.times[1] == 1719828300  # 10:05 UTC
    assert list(data.indptr) == [0, 2]
    assert default_window(data, "UTC") == (1719792000, 1719878400)


def test_unknown_zone():
    with pytest.raises(CsvError, match="unknown time zone"):
        read_long_csv("id,time,gl\n", "Mars/Olympus")


def test_warmup(runner):
    result = runner.invoke(args=["analytics", "warmup"])
    assert result.exit_code == 0 and "ready in" in result.output
