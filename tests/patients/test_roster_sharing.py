"""The roster never orders a patient who stopped sharing by their glucose numbers."""

from __future__ import annotations

import time

from clinic_portal.analytics.models import PatientMetricsSummary
from clinic_portal.analytics.summaries import ROSTER_PERIOD
from clinic_portal.patients.services import search_patients
from clinic_portal.sharing.models import ShareRequest, ShareState


def test_revoked_patient_sorts_as_no_data(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    open_patient = make_patient(clinic, "Open", "Sharer")
    revoked = make_patient(clinic, "Stopped", "Sharing")
    now = int(time.time())
    for patient, tir in ((open_patient, 55.0), (revoked, 10.0)):
        db.add(
            PatientMetricsSummary(
                patient_id=patient.id,
                period_days=ROSTER_PERIOD,
                window_start=now - 14 * 86400,
                window_end=now,
                stale=False,
                preset="standard",
                target_low=70,
                target_high=180,
                n_readings=4000,
                pct_in_target=tir,
                pct_below_target=1.0,
            )
        )
    db.add(ShareRequest(clinic_id=clinic.id, patient_id=revoked.id, state=ShareState.REVOKED))
    db.commit()
    page = search_patients(db, clinic_id=clinic.id, sort="tir", clinical=True, now=now)
    # Lowest time in range first; the revoked patient's 10 % must not put them first.
    assert [p.last_name for p in page.patients] == ["Sharer", "Sharing"]
