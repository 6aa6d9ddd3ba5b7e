"""Adding and editing patients; MRN rules per clinic; the patient page."""

from __future__ import annotations

from sqlmodel import select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Role
from clinic_portal.patients.models import Patient, PatientTag
from tests.conftest import login

VALID = {
    "first_name": "Katherine",
    "last_name": "Johnson",
    "date_of_birth": "1918-08-26",
    "mrn": "MRN-777",
    "sex": "female",
    "diabetes_type": "type2",
    "time_zone": "America/New_York",
    "glucose_units": "mg/dL",
    "target_preset": "older_high_risk",
    "email": "",
    "tags": "Research, MDI, research",
}


def test_add_patient(client, make_clinic, make_user, db) -> None:
    clinic = make_clinic()
    login(client, make_user(clinic, Role.STAFF))
    response = client.post("/patients/new", data=VALID)
    assert response.status_code == 302
    patient = db.exec(select(Patient).where(Patient.last_name == "Johnson")).one()
    assert patient.clinic_id == clinic.id
    assert patient.target_preset == "older_high_risk"
    tags = sorted(t.name for t in db.exec(select(PatientTag)))
    assert tags == ["mdi", "research"]
    assert db.exec(select(AuditEvent).where(AuditEvent.action == "patient.create")).first()
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Johnson, Katherine" in page and "No data has been uploaded" in page


def test_invalid_fields_are_named(client, make_clinic, make_user, db) -> None:
    clinic = make_clinic()
    login(client, make_user(clinic, Role.CLINICIAN))
    for field, value, message in [
        ("time_zone", "Europe/Atlantis", "not an IANA time zone"),
        ("date_of_birth", "2999-01-01", "in the future"),
        ("date_of_birth", "not a date", "Not a valid date value"),
        ("last_name", "", "This field is required"),
    ]:
        response = client.post("/patients/new", data={**VALID, field: value})
        assert response.status_code == 400, field
        assert message in response.get_data(as_text=True), field
    assert db.exec(select(Patient)).all() == []


def test_mrn_required_and_unique_per_clinic(client, make_clinic, make_user, make_patient, db):
    clinic = make_clinic(mrn_required=True, mrn_unique=True)
    other = make_clinic("Other")
    make_patient(clinic, mrn="MRN-777")
    make_patient(other, mrn="MRN-888")
    login(client, make_user(clinic, Role.CLINICIAN))
    missing = client.post("/patients/new", data={**VALID, "mrn": ""})
    assert "requires an MRN" in missing.get_data(as_text=True)
    clash = client.post("/patients/new", data=VALID)
    assert "Another patient of this clinic has MRN MRN-777" in clash.get_data(as_text=True)
    # Uniqueness is per clinic: another clinic's MRN is no clash.
    assert client.post("/patients/new", data={**VALID, "mrn": "MRN-888"}).status_code == 302


def test_mrn_may_repeat_when_clinic_allows(client, make_clinic, make_user, make_patient):
    clinic = make_clinic(mrn_unique=False)
    make_patient(clinic, mrn="MRN-777")
    login(client, make_user(clinic, Role.CLINICIAN))
    assert client.post("/patients/new", data=VALID).status_code == 302


def test_edit_patient_records_changed_fields(client, make_clinic, make_user, make_patient, db):
    clinic = make_clinic()
    patient = make_patient(clinic, "Kat", "Jonson", tags=("old",))
    login(client, make_user(clinic, Role.CLINICIAN))
    form = client.get(f"/patients/{patient.id}/edit").get_data(as_text=True)
    assert 'value="old"' in form
    response = client.post(f"/patients/{patient.id}/edit", data=VALID)
    assert response.status_code == 302
    db.expire_all()
    saved = db.get(Patient, patient.id)
    assert (saved.first_name, saved.last_name, saved.search_name) == (
        "Katherine",
        "Johnson",
        "katherine johnson",
    )
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "patient.update")).one()
    assert "last_name" in event.detail["fields"] and "tags" in event.detail["fields"]


def test_viewing_a_patient_is_audited(client, make_clinic, make_user, make_patient, db) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic)
    user = make_user(clinic, Role.CLINICIAN)
    login(client, user)
    assert client.get(f"/patients/{patient.id}").status_code == 200
    event = db.exec(select(AuditEvent).where(AuditEvent.action == "patient.view")).one()
    assert (event.actor_id, event.patient_id) == (user.id, patient.id)


def test_failed_request_leaves_no_trace(client, make_clinic, make_user, db) -> None:
    clinic = make_clinic(mrn_required=True)
    login(client, make_user(clinic, Role.CLINICIAN))
    before = len(db.exec(select(AuditEvent)).all())
    client.post("/patients/new", data={**VALID, "mrn": ""})
    assert len(db.exec(select(AuditEvent)).all()) == before
