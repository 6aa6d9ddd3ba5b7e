"""Share requests: request/invite, accept with consent, decline, revoke, resend, cancel, expiry,
share codes, several clinics, and that only an accepted share opens a patient's data."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlmodel import Session, select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.patients.models import Patient
from clinic_portal.sharing.models import ShareRequest, ShareState
from clinic_portal.sharing.services import new_share_code, normalize_share_code
from tests.auth.clock import Clock, clock
from tests.auth.mailbox import Mailbox, mail_app, mailbox
from tests.conftest import login

__all__ = ["clock", "mail_app", "mailbox"]
PASSWORD = "lilac-otter-sings-at-dawn"


class Setup:
    """A clinic with a clinician and a roster record, and a patient account."""

    def __init__(self, app: Flask, make_clinic, make_user, make_patient, db: Session) -> None:
        self.app, self.db = app, db
        self.clinic: Clinic = make_clinic("Riverside Clinic")
        self.doctor: User = make_user(self.clinic, Role.CLINICIAN)
        self.record: Patient = make_patient(self.clinic, "Ada", "Byron")
        self.account: User = make_user(None, Role.PATIENT, email="ada@example.org")
        self.clinic_client = app.test_client()
        login(self.clinic_client, self.doctor)
        self.patient_client = app.test_client()
        login(self.patient_client, self.account)

    def ask(self, who: str, record: Patient | None = None) -> Any:
        record = record or self.record
        return self.clinic_client.post(f"/patients/{record.id}/sharing/request", data={"who": who})

    def share(self) -> ShareRequest:
        self.db.expire_all()
        return self.db.exec(
            select(ShareRequest)
            .where(ShareRequest.patient_id == self.record.id)
            .order_by(ShareRequest.id.desc())  # type: ignore[union-attr]
        ).first()

    def detail_status(self) -> int:
        return self.clinic_client.get(f"/patients/{self.record.id}").status_code


def setup(app, make_clinic, make_user, make_patient, db) -> Setup:
    return Setup(app, make_clinic, make_user, make_patient, db)


def test_request_accept_revoke(
    mail_app: Flask, mailbox: Mailbox, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(mail_app, make_clinic, make_user, make_patient, db)
    assert s.detail_status() == 200  # custodial: the clinic's own record
    assert s.ask("ADA@example.org").status_code == 302
    share = s.share()
    assert share.state == ShareState.PENDING and share.account_id == s.account.id
    assert "Riverside Clinic asks to see" in mailbox.last_body("ada@example.org")
    assert f"/me/shares/{share.id}" in mailbox.link("ada@example.org")
    assert s.detail_status() == 200  # a pending request does not close a custodial record

    home = s.patient_client.get("/me").get_data(as_text=True)
    assert "Riverside Clinic asks to see your data" in home and "Byron" not in home
    refused = s.patient_client.post(f"/me/shares/{share.id}/accept", data={})
    assert refused.status_code == 409 and "Tick the box" in refused.get_data(as_text=True)
    accepted = s.patient_client.post(f"/me/shares/{share.id}/accept", data={"consent": "y"})
    assert accepted.status_code == 302
    share = s.share()
    assert share.state == ShareState.ACCEPTED and share.accepted_at is not None
    assert share.consent_text == s.clinic.share_terms
    db.expire_all()
    assert db.get(Patient, s.record.id).account_id == s.account.id  # type: ignore[union-attr]
    assert s.detail_status() == 200
    assert "Byron" in s.patient_client.get("/me").get_data(as_text=True)

    assert s.patient_client.post(f"/me/shares/{share.id}/revoke").status_code == 302
    assert s.detail_status() == 403  # at once, on the next request
    assert s.clinic_client.get(f"/patients/{s.record.id}/edit").status_code == 403
    closed = s.clinic_client.get(f"/patients/{s.record.id}").get_data(as_text=True)
    assert "Stopped by the patient" in closed
    sharing = s.clinic_client.get(f"/patients/{s.record.id}/sharing")
    assert sharing.status_code == 200 and "Stopped by the patient" in sharing.get_data(as_text=True)
    roster = s.clinic_client.get("/patients/").get_data(as_text=True)
    assert "Byron, Ada" in roster and "Stopped by the patient" in roster
    db.expire_all()
    assert db.get(Patient, s.record.id).account_id is None  # type: ignore[union-attr]
    assert "Byron" not in s.patient_client.get("/me").get_data(as_text=True)
    # A new request does not reopen the data until the patient accepts again.
    assert s.ask("ada@example.org").status_code == 302
    assert s.detail_status() == 403
    again = s.share()
    s.patient_client.post(f"/me/shares/{again.id}/accept", data={"consent": "y"})
    assert s.detail_status() == 200
    actions = [
        e.action for e in db.exec(select(AuditEvent).where(AuditEvent.patient_id == s.record.id))
    ]
    for action in ("share.request", "share.accept", "share.revoke", "patient.view"):
        assert action in actions


def test_invitation_to_register(
    mail_app: Flask, mailbox: Mailbox, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(mail_app, make_clinic, make_user, make_patient, db)
    assert s.ask("new.person@example.org").status_code == 302
    share = s.share()
    assert share.account_id is None and share.invite_email == "new.person@example.org"
    link = mailbox.link("new.person@example.org")
    assert "/register?invite=" in link
    visitor = mail_app.test_client()
    path = "/" + link.split("/", 3)[3]
    form = visitor.get(path).get_data(as_text=True)
    assert "Riverside Clinic invited you" in form and 'value="new.person@example.org"' in form
    token = path.split("invite=")[1]
    created = visitor.post(
        path,
        data={
            "name": "New Person",
            "email": "new.person@example.org",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "invite": token,
        },
    )
    assert created.status_code == 302
    visitor.post("/login/verify", data={"code": mailbox.code("new.person@example.org")})
    mine = visitor.get("/me/shares/").get_data(as_text=True)
    assert "Riverside Clinic" in mine and "Waiting for the patient" in mine
    share = s.share()
    assert visitor.post(f"/me/shares/{share.id}/accept", data={"consent": "y"}).status_code == 302
    assert s.share().state == ShareState.ACCEPTED
    # The link cannot be used again.
    again = mail_app.test_client().get(path).get_data(as_text=True)
    assert "no longer valid" in again


def test_invitation_attaches_when_registering_without_the_link(
    mail_app: Flask, mailbox: Mailbox, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(mail_app, make_clinic, make_user, make_patient, db)
    s.ask("later@example.org")
    visitor = mail_app.test_client()
    visitor.post(
        "/register",
        data={"name": "L", "email": "later@example.org", "password": PASSWORD, "confirm": PASSWORD},
    )
    assert s.share().account_id is None  # not before the address is proven
    visitor.post("/login/verify", data={"code": mailbox.code("later@example.org")})
    assert s.share().account_id is not None


def test_unknown_user_name_and_clinic_accounts_are_refused(
    mail_app: Flask, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(mail_app, make_clinic, make_user, make_patient, db)
    unknown = s.ask("no.such.user")
    assert unknown.status_code == 409 and "No patient account" in unknown.get_data(as_text=True)
    staff = s.ask(s.doctor.email)
    assert staff.status_code == 409 and "clinic account" in staff.get_data(as_text=True)
    s.account.username = "ada.b"
    db.add(s.account)
    db.commit()
    assert s.ask("ada.b").status_code == 302
    twice = s.ask("ada@example.org")
    assert twice.status_code == 409 and "already waiting" in twice.get_data(as_text=True)


def test_decline_resend_cancel_expire(
    mail_app: Flask,
    mailbox: Mailbox,
    make_clinic,
    make_user,
    make_patient,
    db: Session,
    clock: Clock,
) -> None:
    s = setup(mail_app, make_clinic, make_user, make_patient, db)
    s.ask("ada@example.org")
    share = s.share()
    assert s.patient_client.post(f"/me/shares/{share.id}/decline").status_code == 302
    assert s.share().state == ShareState.DECLINED and s.share().declined_at is not None
    base = f"/patients/{s.record.id}/sharing/{share.id}"
    assert s.clinic_client.post(f"{base}/resend").status_code == 409

    s.ask("ada@example.org")
    share = s.share()
    base = f"/patients/{s.record.id}/sharing/{share.id}"
    clock.advance(days=14, seconds=1)
    assert share.state_at(clock.now()) == ShareState.EXPIRED
    page = s.clinic_client.get(f"/patients/{s.record.id}/sharing").get_data(as_text=True)
    assert "Request expired" in page
    late = s.patient_client.post(f"/me/shares/{share.id}/accept", data={"consent": "y"})
    assert late.status_code == 409 and "expired" in late.get_data(as_text=True)
    mails = len(mailbox.to("ada@example.org"))
    assert s.clinic_client.post(f"{base}/resend").status_code == 302
    assert len(mailbox.to("ada@example.org")) == mails + 1
    assert s.share().state_at(clock.now()) == ShareState.PENDING
    assert s.clinic_client.post(f"{base}/cancel").status_code == 302
    assert s.share().state == ShareState.CANCELLED and s.share().cancelled_at is not None
    refused = s.patient_client.post(f"/me/shares/{share.id}/accept", data={"consent": "y"})
    assert refused.status_code == 409


def test_other_clinics_and_other_patients_get_404(
    mail_app: Flask, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(mail_app, make_clinic, make_user, make_patient, db)
    s.ask("ada@example.org")
    share = s.share()
    outsider = mail_app.test_client()
    login(outsider, make_user(make_clinic("Other"), Role.CLINIC_ADMIN))
    base = f"/patients/{s.record.id}/sharing"
    assert outsider.get(base).status_code == 404
    assert outsider.post(f"{base}/{share.id}/cancel").status_code == 404
    other_patient = mail_app.test_client()
    login(other_patient, make_user(None, Role.PATIENT))
    for path in (f"/me/shares/{share.id}", f"/me/shares/{share.id}/accept"):
        response = other_patient.open(
            path, method="POST" if path.endswith("accept") else "GET", data={"consent": "y"}
        )
        assert response.status_code == 404
    assert s.share().state == ShareState.PENDING


def test_share_code_creates_the_roster_record(
    app: Flask, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(app, make_clinic, make_user, make_patient, db)
    admin = app.test_client()
    login(admin, make_user(s.clinic, Role.CLINIC_ADMIN))
    settings = admin.get("/admin/clinic").get_data(as_text=True)
    db.expire_all()
    code = db.get(Clinic, s.clinic.id).share_code  # type: ignore[union-attr]
    assert code and code in settings
    newcomer = make_user(None, Role.PATIENT, name="Grace Hopper")
    client = app.test_client()
    login(client, newcomer)
    wrong = client.post("/me/shares/code", data={"code": "AAAA-BBBB-CCCC"})
    assert wrong.status_code == 400 and "No clinic has this share code" in wrong.get_data(
        as_text=True
    )
    found = client.post("/me/shares/code", data={"code": code.lower().replace("-", " ")})
    text = found.get_data(as_text=True)
    assert "Riverside Clinic" in text and "care team to see the diabetes device data" in text
    assert 'value="Grace"' in text and 'value="Hopper"' in text
    details = {
        "code": code,
        "step": "confirm",
        "first_name": "Grace",
        "last_name": "Hopper",
        "date_of_birth": "1966-12-09",
    }
    assert client.post("/me/shares/code", data=details).status_code == 409  # no consent
    assert client.post("/me/shares/code", data={**details, "consent": "y"}).status_code == 302
    record = db.exec(select(Patient).where(Patient.last_name == "Hopper")).one()
    assert record.clinic_id == s.clinic.id and record.account_id == newcomer.id
    assert s.clinic_client.get(f"/patients/{record.id}").status_code == 200
    again = client.post("/me/shares/code", data={**details, "consent": "y"})
    assert again.status_code == 409 and "already share" in again.get_data(as_text=True)


def test_share_code_accepts_a_waiting_request(
    app: Flask, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(app, make_clinic, make_user, make_patient, db)
    s.clinic.share_code = new_share_code()
    db.add(s.clinic)
    db.commit()
    share = ShareRequest(clinic_id=s.clinic.id, patient_id=s.record.id, account_id=s.account.id)
    db.add(share)
    db.commit()
    s.patient_client.post(
        "/me/shares/code", data={"code": s.clinic.share_code, "step": "confirm", "consent": "y"}
    )
    assert s.share().state == ShareState.ACCEPTED
    assert len(db.exec(select(Patient)).all()) == 1  # no second record


def test_several_clinics_and_revoking_one(
    mail_app: Flask, make_clinic, make_user, make_patient, db: Session
) -> None:
    s = setup(mail_app, make_clinic, make_user, make_patient, db)
    other = make_clinic("Hilltop Clinic")
    other_doc = make_user(other, Role.CLINICIAN)
    other_record = make_patient(other, "Ada", "Hilltop")
    other_client = mail_app.test_client()
    login(other_client, other_doc)
    s.ask("ada@example.org")
    other_client.post(
        f"/patients/{other_record.id}/sharing/request", data={"who": "ada@example.org"}
    )
    for share in db.exec(select(ShareRequest)):
        s.patient_client.post(f"/me/shares/{share.id}/accept", data={"consent": "y"})
    home = s.patient_client.get("/me").get_data(as_text=True)
    assert "Riverside Clinic" in home and "Hilltop Clinic" in home
    first = s.share()
    s.patient_client.post(f"/me/shares/{first.id}/revoke")
    assert s.detail_status() == 403
    assert other_client.get(f"/patients/{other_record.id}").status_code == 200


def test_clinic_linked_record_is_adopted_and_can_be_revoked(
    app: Flask, make_clinic, make_user, make_patient, db: Session
) -> None:
    """Records linked to an account without a share (the demo seed) stay open until the
    patient stops sharing; the patient sees the clinic in their list."""
    clinic = make_clinic()
    account = make_user(None, Role.PATIENT)
    record = make_patient(clinic, account_id=account.id)
    doctor = app.test_client()
    login(doctor, make_user(clinic, Role.CLINICIAN))
    assert doctor.get(f"/patients/{record.id}").status_code == 200
    patient = app.test_client()
    login(patient, account)
    mine = patient.get("/me/shares/").get_data(as_text=True)
    assert clinic.name in mine and "Sharing" in mine
    share = db.exec(select(ShareRequest).where(ShareRequest.patient_id == record.id)).one()
    assert share.via == "clinic_link"
    patient.post(f"/me/shares/{share.id}/revoke")
    assert doctor.get(f"/patients/{record.id}").status_code == 403


def test_share_codes_are_tidepool_shaped() -> None:
    code = new_share_code()
    assert len(code) == 14 and code.count("-") == 2
    assert normalize_share_code(code.lower().replace("-", "")) == code
    assert normalize_share_code("O0I1-AAAA-BBBB") is None  # letters that are easy to confuse


def test_unknown_share_codes_count_against_the_rate_limit(
    app: Flask, make_user, db: Session
) -> None:
    app.config["LOGIN_RATE_LIMIT"] = 3
    client = app.test_client()
    login(client, make_user(None, Role.PATIENT))
    for _ in range(3):
        assert client.post("/me/shares/code", data={"code": "AAAA-BBBB-CCCC"}).status_code == 400
    assert client.post("/me/shares/code", data={"code": "AAAA-BBBB-CCCC"}).status_code == 429
