"""Clinic admins manage their clinic's users and settings."""

from __future__ import annotations

from sqlmodel import select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Clinic, Role, User
from tests.conftest import login


def test_admin_adds_a_user_who_can_sign_in(app, client, make_clinic, make_user, db) -> None:
    clinic = make_clinic()
    login(client, make_user(clinic, Role.CLINIC_ADMIN))
    response = client.post(
        "/admin/users/new",
        data={
            "name": "Nurse Joy",
            "email": "joy@example.org",
            "role": "staff",
            "password": "a-long-enough-password",
        },
    )
    assert response.status_code == 302
    user = db.exec(select(User).where(User.email == "joy@example.org")).one()
    assert user.clinic_id == clinic.id and user.role == Role.STAFF
    other = app.test_client()
    assert (
        other.post(
            "/login", data={"email": "joy@example.org", "password": "a-long-enough-password"}
        ).status_code
        == 302
    )
    assert db.exec(select(AuditEvent).where(AuditEvent.action == "user.create")).first()


def test_short_password_and_duplicate_email_are_refused(client, make_clinic, make_user) -> None:
    clinic = make_clinic()
    admin = make_user(clinic, Role.CLINIC_ADMIN)
    login(client, admin)
    short = client.post(
        "/admin/users/new",
        data={"name": "X", "email": "x@example.org", "role": "staff", "password": "short"},
    )
    assert short.status_code == 400
    assert "at least 12 characters" in short.get_data(as_text=True)
    dup = client.post(
        "/admin/users/new",
        data={"name": "X", "email": admin.email, "role": "staff", "password": "long-enough-pass"},
    )
    assert dup.status_code == 400
    assert "already exists" in dup.get_data(as_text=True)


def test_last_admin_cannot_be_demoted(client, make_clinic, make_user, db) -> None:
    clinic = make_clinic()
    admin = make_user(clinic, Role.CLINIC_ADMIN)
    login(client, admin)
    response = client.post(
        f"/admin/users/{admin.id}", data={"name": admin.name, "role": "clinician", "active": "y"}
    )
    assert response.status_code == 400
    assert "at least one active clinic admin" in response.get_data(as_text=True)
    db.expire_all()
    assert db.get(User, admin.id).role == Role.CLINIC_ADMIN


def test_admin_sets_mrn_rules(client, make_clinic, make_user, db) -> None:
    clinic = make_clinic()
    login(client, make_user(clinic, Role.CLINIC_ADMIN))
    bad = client.post(
        "/admin/clinic", data={"name": "C", "time_zone": "Mars/Olympus", "mrn_required": "y"}
    )
    assert bad.status_code == 400
    assert "not an IANA time zone" in bad.get_data(as_text=True)
    ok = client.post(
        "/admin/clinic", data={"name": "C", "time_zone": "Europe/Vienna", "mrn_required": "y"}
    )
    assert ok.status_code == 302
    db.expire_all()
    saved = db.get(Clinic, clinic.id)
    assert (saved.mrn_required, saved.mrn_unique, saved.time_zone) == (True, False, "Europe/Vienna")
