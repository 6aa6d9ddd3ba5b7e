"""The patient page's glucose report: goals in the patient's unit, bands, AGP and daily profiles
over exactly the cached summary window."""

from __future__ import annotations

import math

import pytest

from clinic_portal.analytics.summaries import refresh_summaries
from clinic_portal.auth.models import Clinic
from clinic_portal.reports.glucose import glucose_report
from tests.analytics.test_summaries import END, NOW, add_cgm, days_of, rows


@pytest.fixture
def clinic(make_clinic) -> Clinic:
    return make_clinic()


def test_glucose_report_for_a_mmol_patient(db, clinic, make_patient) -> None:
    patient = make_patient(clinic, glucose_units="mmol/L", time_zone="Europe/Berlin")
    values = days_of([50.0, 65.0, 120.0, 120.0, 120.0, 200.0, 300.0], 14)
    add_cgm(db, patient, values)
    report = glucose_report(db, patient, now=NOW)
    row = rows(db, patient.id)[14]
    assert report.summary.window_end == row.window_end == END
    assert report.metrics.mean == pytest.approx(row.mean)
    assert report.metrics.pct_70_180 == pytest.approx(row.pct_70_180)
    assert [b.range_text for b in report.bands] == [
        "> 13.9",
        "10.1–13.9",
        "3.9–10.0",
        "3.0–3.8",
        "< 3.0",
    ]
    assert sum(b.percent for b in report.bands) == pytest.approx(100.0)
    goals = {g.name: g for g in report.goals}
    assert goals["Time in range 3.9–10.0 mmol/L"].goal == "> 70 %"
    assert goals["Time in range 3.9–10.0 mmol/L"].met is False
    mean = goals["Mean glucose"]
    assert mean.goal == "< 8.6 mmol/L" and mean.value == pytest.approx(row.mean / 18.01559)
    assert goals["Glucose variability (CV)"].goal == "≤ 36 %"
    assert report.label(70) == "3.9" and report.unit == "mmol/L"
    assert len(report.daily) == 14 and report.daily[-1].day == report.last_day
    assert all(d.n_readings > 0 for d in report.daily)
    assert report.agp_svg is not None and report.agp_days == 14
    assert "19.4" in report.agp_svg and "mmol/L" in report.agp_svg


def test_glucose_report_refreshes_stale_and_changed_preset(db, clinic, make_patient) -> None:
    patient = make_patient(clinic)
    add_cgm(db, patient, [150.0] * 300)
    refresh_summaries(db, [patient.id], now=NOW - 7200)
    patient.target_preset = "pregnancy_t1"
    db.add(patient)
    db.commit()
    report = glucose_report(db, patient, now=NOW)
    assert report.summary.preset == "pregnancy_t1" and report.summary.window_end == END
    assert report.metrics.pct_above_target == 100.0  # 150 is above 63-140
    assert [b.range_text for b in report.bands][1:4] == ["141–250", "63–140", "54–62"]


def test_glucose_report_without_data(db, clinic, make_patient) -> None:
    patient = make_patient(clinic)
    report = glucose_report(db, patient, now=NOW)
    assert not report.has_data
    assert report.agp_svg is None
    assert all(b.percent is None for b in report.bands)
    assert math.isnan(report.metrics.mean)
    assert [g.value_text for g in report.goals][:2] == ["—", "—"]
