"""An upload of a patient who stopped sharing is closed like every other page of their data."""

from __future__ import annotations

from clinic_portal.auth.models import Role
from clinic_portal.sharing.models import ShareRequest, ShareState
from clinic_portal.upload_station.ingest import ingest_batch
from tests.conftest import login
from tests.upload_station.test_ingest import batch


def test_upload_page_answers_403_after_revocation(
    client, db, make_clinic, make_user, make_patient
) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic)
    upload = ingest_batch(db, batch(), clinic=clinic, actor=None, patient=patient)
    db.commit()
    login(client, make_user(clinic, Role.CLINICIAN))
    assert client.get(f"/uploads/{upload.id}").status_code == 200
    db.add(ShareRequest(clinic_id=clinic.id, patient_id=patient.id, state=ShareState.REVOKED))
    db.commit()
    assert client.get(f"/uploads/{upload.id}").status_code == 403
