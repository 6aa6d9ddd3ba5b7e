"""Upload pages: kiosk, patient page, the patient's own upload, inbox, preview → store → summary."""

from __future__ import annotations

import io
import re

import pytest
from sqlmodel import func, select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Role
from clinic_portal.upload_station.models import (
    CgmReadingRow,
    Upload,
    UploadPayload,
    UploadStatus,
)
from tests.conftest import login
from tests.upload_station.importers.conftest import fixture_bytes
from tests.upload_station.test_services import with_sensor_glucose

CARELINK = fixture_bytes("carelink-csv", "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv")
SERIAL = "NG4114235H"


@pytest.fixture(autouse=True)
def _store_inline(app) -> None:
    # Store in the request's thread so that each test sees the finished upload; the background
    # thread itself is tested in test_services.py and in the browser test.
    app.config["UPLOAD_BACKGROUND"] = False


@pytest.fixture
def clinic(make_clinic):
    return make_clinic(time_zone="Europe/Brussels")


def upload_form(data: bytes = CARELINK, name: str = "carelink.csv", **fields: str) -> dict:
    return {"file": (io.BytesIO(data), name), **fields}


def upload_id(response) -> int:
    match = re.search(r"/uploads/(\d+)", response.headers["Location"])
    assert match, response.headers.get("Location")
    return int(match.group(1))


def cgm_rows(db) -> int:
    return db.exec(select(func.count()).select_from(CgmReadingRow)).one()


@pytest.mark.parametrize("role", [Role.STAFF, Role.CLINICIAN, Role.CLINIC_ADMIN])
def test_kiosk_page_for_each_clinic_role(client, clinic, make_user, role) -> None:
    login(client, make_user(clinic, role))
    page = client.get("/upload")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Upload a file" in body and 'enctype="multipart/form-data"' in body
    assert "Inbox (0 waiting)" in body


def test_kiosk_preview_then_store_for_a_chosen_patient(
    client, db, clinic, make_user, make_patient
) -> None:
    patient = make_patient(clinic, "Grace", "Hopper", time_zone="Europe/Brussels")
    login(client, make_user(clinic, Role.STAFF))
    posted = client.post(
        "/upload", data=upload_form(patient_id=str(patient.id)), content_type="multipart/form-data"
    )
    assert posted.status_code == 303
    uid = upload_id(posted)
    assert cgm_rows(db) == 0  # previewing stores nothing

    preview = client.get(posted.headers["Location"])
    body = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "What the file holds" in body and SERIAL in body and "new device" in body
    assert "1,946" in body and "Store this data" in body
    assert f'<option selected value="{patient.id}">' in body

    stored = client.post(f"/uploads/{uid}/store", data={"patient_id": str(patient.id)})
    assert stored.status_code == 303
    summary = client.get(f"/uploads/{uid}")
    text = summary.get_data(as_text=True)
    assert "new records" in text and "Duplicates skipped: 0" in text
    assert "Hopper, Grace" in text and "2025-10-28" in text
    assert cgm_rows(db) == 1946
    assert db.get(Upload, uid).patient_id == patient.id
    # The progress fragment of a finished upload tells htmx to stop polling.
    fragment = client.get(f"/uploads/{uid}/progress")
    assert fragment.status_code == 286
    assert 'id="upload-status"' in fragment.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    views = db.exec(select(func.count()).where(AuditEvent.action == "upload.view")).one()
    assert views >= 1


def test_second_upload_of_the_same_file_says_no_new_data(
    client, db, clinic, make_user, make_patient
) -> None:
    patient = make_patient(clinic)
    login(client, make_user(clinic, Role.CLINICIAN))
    for expected in ("new records", "No new data"):
        posted = client.post(
            f"/patients/{patient.id}/upload", data=upload_form(), content_type="multipart/form-data"
        )
        uid = upload_id(posted)
        client.post(f"/uploads/{uid}/store", data={"patient_id": str(patient.id)})
        assert expected in client.get(f"/uploads/{uid}").get_data(as_text=True)
    assert cgm_rows(db) == 1946


def test_progress_fragment_polls_while_storing(client, db, clinic, make_user) -> None:
    login(client, make_user(clinic, Role.STAFF))
    uid = upload_id(client.post("/upload", data=upload_form(), content_type="multipart/form-data"))
    upload = db.get(Upload, uid)
    upload.progress_total, upload.progress_done = 26_000, 13_000  # a job is half-way
    db.add(upload)
    db.commit()
    fragment = client.get(f"/uploads/{uid}/progress", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert 'hx-trigger="every 500ms"' in body and f'hx-get="/uploads/{uid}/progress"' in body
    assert '<progress id="upload-progress" value="13000" max="26000">' in body
    assert "13,000 of 26,000 lines" in body and "Check again" in body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20, "binary"),
        (
            with_sensor_glucose(CARELINK, "987")[0],
            r"line \d+, column &#39;Sensor Glucose \(mg/dL\)&#39;: glucose 987 mg/dL",
        ),
    ],
    ids=["empty", "binary", "impossible-glucose"],
)
def test_bad_file_shows_the_error_with_400_and_stores_nothing(
    client, db, clinic, make_user, data, message
) -> None:
    login(client, make_user(clinic, Role.STAFF))
    response = client.post("/upload", data=upload_form(data), content_type="multipart/form-data")
    assert response.status_code == 400
    assert re.search(message, response.get_data(as_text=True))
    assert db.exec(select(func.count()).select_from(Upload)).one() == 0


def test_file_over_the_configured_cap_is_refused(app, client, db, clinic, make_user) -> None:
    app.config["UPLOAD_MAX_BYTES"] = 10_000
    login(client, make_user(clinic, Role.STAFF))
    response = client.post("/upload", data=upload_form(), content_type="multipart/form-data")
    assert response.status_code == 400
    assert "larger than the 10,000-byte upload limit" in response.get_data(as_text=True)
    assert db.exec(select(func.count()).select_from(UploadPayload)).one() == 0


def test_missing_file_is_a_form_error(client, clinic, make_user) -> None:
    login(client, make_user(clinic, Role.STAFF))
    response = client.post("/upload", data={}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "Choose a file to upload." in response.get_data(as_text=True)


def test_inbox_assign_then_the_patient_page_shows_the_data(
    client, db, clinic, make_user, make_patient
) -> None:
    patient = make_patient(clinic, "Grace", "Hopper")
    login(client, make_user(clinic, Role.STAFF))
    uid = upload_id(client.post("/upload", data=upload_form(), content_type="multipart/form-data"))
    client.post(f"/uploads/{uid}/store", data={"patient_id": ""})
    assert db.get(Upload, uid).status == UploadStatus.UNASSIGNED
    assert "Waiting in the inbox" in client.get(f"/uploads/{uid}").get_data(as_text=True)

    inbox = client.get("/uploads/inbox?q=hopp")
    body = inbox.get_data(as_text=True)
    assert inbox.status_code == 200 and SERIAL in body and "carelink.csv" in body
    assert "Hopper, Grace" in body

    refused = client.post(f"/uploads/{uid}/assign", data={})
    assert refused.status_code == 400 and "Choose a patient." in refused.get_data(as_text=True)
    assigned = client.post(f"/uploads/{uid}/assign", data={"patient_id": str(patient.id)})
    assert assigned.status_code == 303
    assert cgm_rows(db) == 1946
    detail = client.get(f"/patients/{patient.id}").get_data(as_text=True)
    assert SERIAL in detail and "Upload data" in detail
    assert "No uploads are waiting." in client.get("/uploads/inbox").get_data(as_text=True)


def test_discarding_a_preview(client, db, clinic, make_user) -> None:
    login(client, make_user(clinic, Role.STAFF))
    uid = upload_id(client.post("/upload", data=upload_form(), content_type="multipart/form-data"))
    response = client.post(f"/uploads/{uid}/discard")
    assert response.status_code == 303
    assert db.get(Upload, uid) is None
    again = client.post(f"/uploads/{uid}/discard")
    assert again.status_code == 404


def test_another_clinics_upload_is_not_found(client, db, clinic, make_clinic, make_user) -> None:
    login(client, make_user(clinic, Role.STAFF))
    uid = upload_id(client.post("/upload", data=upload_form(), content_type="multipart/form-data"))
    other = make_clinic("Elsewhere")
    outsider = client.application.test_client()
    login(outsider, make_user(other, Role.CLINIC_ADMIN))
    for path in (f"/uploads/{uid}", f"/uploads/{uid}/progress"):
        assert outsider.get(path).status_code == 404
    assert outsider.post(f"/uploads/{uid}/store", data={"patient_id": ""}).status_code == 404


def test_patient_uploads_at_home(client, db, clinic, make_user, make_patient) -> None:
    account = make_user(None, Role.PATIENT)
    record = make_patient(clinic, "Pat", "Home", account_id=account.id)
    login(client, account)
    assert "Upload a file" in client.get("/me").get_data(as_text=True)
    form = client.get("/me/upload")
    assert form.status_code == 200
    posted = client.post("/me/upload", data=upload_form(), content_type="multipart/form-data")
    assert posted.status_code == 303
    uid = upload_id(posted)
    assert posted.headers["Location"].startswith(f"/me/uploads/{uid}")
    assert "Store this data" in client.get(posted.headers["Location"]).get_data(as_text=True)
    stored = client.post(f"/me/uploads/{uid}/store", data={"patient_id": str(record.id)})
    assert stored.status_code == 303
    summary = client.get(f"/me/uploads/{uid}").get_data(as_text=True)
    assert "new records" in summary
    assert db.get(Upload, uid).patient_id == record.id
    assert cgm_rows(db) == 1946
    # Staff of the clinic see it too; the patient cannot open the clinic's pages.
    assert client.get(f"/uploads/{uid}").status_code == 403


def test_patient_cannot_store_for_someone_elses_record(
    client, db, clinic, make_user, make_patient
) -> None:
    account = make_user(None, Role.PATIENT)
    make_patient(clinic, "Pat", "Home", account_id=account.id)
    stranger = make_patient(clinic, "Someone", "Else")
    login(client, account)
    uid = upload_id(
        client.post("/me/upload", data=upload_form(), content_type="multipart/form-data")
    )
    response = client.post(f"/me/uploads/{uid}/store", data={"patient_id": str(stranger.id)})
    assert response.status_code == 400
    assert cgm_rows(db) == 0


def test_patient_without_a_record_cannot_upload(client, make_user) -> None:
    login(client, make_user(None, Role.PATIENT))
    page = client.get("/me/upload")
    assert page.status_code == 200 and "not linked" in page.get_data(as_text=True)
    posted = client.post("/me/upload", data=upload_form(), content_type="multipart/form-data")
    assert posted.status_code == 400
