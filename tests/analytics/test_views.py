"""The glucose section of the patient page and the roster's metric columns, per role."""

from __future__ import annotations

import re
import time

import pytest

from clinic_portal.analytics.summaries import summaries_for
from clinic_portal.auth.models import Role
from clinic_portal.records import CgmReading, DeviceInfo, DeviceKind, RecordBatch
from clinic_portal.upload_station.ingest import ingest_batch
from tests.analytics.test_summaries import add_cgm, days_of
from tests.conftest import login

SECTION = "Glucose (last 14 days)"


@pytest.fixture
def clinic_world(db, make_clinic, make_patient):
    clinic = make_clinic()
    now = int(time.time())
    good = make_patient(clinic, "Gina", "Good")
    poor = make_patient(clinic, "Pete", "Poor", glucose_units="mmol/L")
    none = make_patient(clinic, "Nora", "Nodata")
    add_cgm(db, good, days_of([110.0, 130.0, 150.0], 14), end=now)
    add_cgm(db, poor, days_of([50.0, 60.0, 200.0, 260.0, 150.0], 14), end=now)
    return clinic, good, poor, none


def as_role(client, make_user, clinic, role):
    login(client, make_user(clinic, role))
    return client


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.CLINIC_ADMIN])
def test_clinicians_see_metrics_agp_and_daily_traces(client, make_user, clinic_world, role) -> None:
    clinic, _, poor, _ = clinic_world
    as_role(client, make_user, clinic, role)
    html = client.get(f"/patients/{poor.id}").get_data(as_text=True)
    assert SECTION in html
    assert 'class="chart tir-bar"' in html and 'class="chart agp"' in html
    assert html.count('class="chart daily"') == 14
    assert "Episodes per 2023 international consensus" in html
    assert "3.9–10.0" in html and "mmol/L" in html  # this patient's units
    assert "Time CGM active" in html and "GMI" in html and "zone" in html
    # CSP: style-src 'self' only, so no inline style attributes anywhere on the page.
    assert not re.search(r"\sstyle=", html)


def test_staff_see_no_glucose_metrics(client, make_user, clinic_world) -> None:
    clinic, _, poor, _ = clinic_world
    as_role(client, make_user, clinic, Role.STAFF)
    page = client.get(f"/patients/{poor.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Poor" in html
    assert SECTION not in html and "<svg" not in html and "GMI" not in html
    roster = client.get("/patients/?sort=tir").get_data(as_text=True)
    assert "TIR %" not in roster and "CGM active" not in roster
    # The clinical sort falls back to names for staff.
    assert roster.index("Good") < roster.index("Nodata") < roster.index("Poor")


def test_roster_columns_and_sorts_for_clinicians(client, make_user, clinic_world) -> None:
    clinic = clinic_world[0]
    as_role(client, make_user, clinic, Role.CLINICIAN)
    html = client.get("/patients/").get_data(as_text=True)
    assert "TIR %" in html and "Below %" in html and "CGM active" in html
    assert "no CGM data in 14 days" in html  # Nodata
    by_tir = client.get("/patients/?sort=tir").get_data(as_text=True)
    assert by_tir.index("Poor") < by_tir.index("Good") < by_tir.index("Nodata")
    by_tir_desc = client.get("/patients/?sort=-tir").get_data(as_text=True)
    assert by_tir_desc.index("Good") < by_tir_desc.index("Poor") < by_tir_desc.index("Nodata")
    by_below = client.get("/patients/?sort=below").get_data(as_text=True)
    assert by_below.index("Poor") < by_below.index("Good")
    assert 'aria-sort="descending">Below %' in by_below


def test_new_upload_shows_on_the_next_page_load(db, client, make_user, clinic_world) -> None:
    clinic, good = clinic_world[:2]
    as_role(client, make_user, clinic, Role.CLINICIAN)
    assert "Nodata" in client.get("/patients/").get_data(as_text=True)
    cached = summaries_for(db, [good.id])[good.id]
    assert cached.pct_above_250 == 0.0
    now = int(time.time())
    batch = RecordBatch(
        source="test",
        devices=[DeviceInfo("LIBRE-1", "Abbott", "Libre 3", DeviceKind.CGM)],
        records=[
            CgmReading(device_serial="LIBRE-1", time=now - 14 * 86_400 + 150 + 300 * i, glucose=300)
            for i in range(288)
        ],
    )
    ingest_batch(db, batch, clinic=clinic, actor=None, patient=good)
    db.commit()
    html = client.get(f"/patients/{good.id}").get_data(as_text=True)
    assert SECTION in html
    db.expire_all()
    fresh = summaries_for(db, [good.id])[good.id]
    assert not fresh.stale and fresh.pct_above_250 > 0
