"""`flask demo seed`: the demo clinic goes through the real services and the ingest path."""

from __future__ import annotations

from sqlmodel import func, select

from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.patients.models import Patient
from clinic_portal.upload_station.models import CgmReadingRow, Upload, UploadStatus
from tests.conftest import login


def test_seed_creates_clinic_users_and_data_once(app, db) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed", "--patients", "3", "--days", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "clinician@demo.clinic" in result.output
    assert db.exec(select(func.count()).select_from(Clinic)).one() == 1
    roles = sorted(u.role for u in db.exec(select(User)))
    assert roles == sorted(
        [Role.CLINIC_ADMIN, Role.CLINICIAN, Role.STAFF, Role.PATIENT, Role.PATIENT]
    )
    patients = db.exec(select(Patient)).all()
    assert len(patients) == 3
    assert sum(p.account_id is not None for p in patients) == 2
    uploads = db.exec(select(Upload)).all()
    assert [u.status for u in uploads] == [UploadStatus.DONE] * 3
    readings = db.exec(select(func.count()).select_from(CgmReadingRow)).one()
    assert readings > 3 * 288  # about 288 a day per patient with good sensor wear

    again = runner.invoke(args=["demo", "seed", "--if-empty"])
    assert again.exit_code == 0 and "skipped" in again.output
    assert db.exec(select(func.count()).select_from(Clinic)).one() == 1


def test_demo_logins_work(app, client, db) -> None:
    app.test_cli_runner().invoke(args=["demo", "seed", "--patients", "2", "--days", "1"])
    patient_user = db.exec(select(User).where(User.email == "patient1@demo.clinic")).one()
    response = client.post(
        "/login", data={"email": "clinician@demo.clinic", "password": "demo-password-2026"}
    )
    assert response.status_code == 302
    assert "MRN-" in client.get("/patients/").get_data(as_text=True)
    patient_client = app.test_client()
    login(patient_client, patient_user, "demo-password-2026")
    me = patient_client.get("/me").get_data(as_text=True)
    assert "Devices" in me and "linked to a clinic" not in me
