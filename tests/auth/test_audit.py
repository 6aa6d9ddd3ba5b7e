"""The audit trail: what is recorded, the clinic admin's search page, and that it is append-only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from sqlmodel import Session, select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Role
from clinic_portal.timeutil import utcnow
from tests.conftest import TEST_PASSWORD, login


def _rows(db: Session) -> dict[int, tuple[object, ...]]:
    db.expire_all()
    return {
        e.id: (
            e.time,
            e.actor_id,
            e.clinic_id,
            e.patient_id,
            e.action,
            dict(e.detail),
            e.ip_address,
        )
        for e in db.exec(select(AuditEvent))
        if e.id is not None
    }


def test_logins_and_views_are_recorded_with_actor_patient_and_address(
    client, make_clinic, make_user, make_patient, db: Session
) -> None:
    clinic = make_clinic()
    doc = make_user(clinic, Role.CLINICIAN)
    patient = make_patient(clinic)
    client.post("/login", data={"email": doc.email, "password": "wrong-one"})
    login(client, doc)
    client.get(f"/patients/{patient.id}")
    events = db.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [e.action for e in events] == ["login.failure", "login.success", "patient.view"]
    assert all(e.ip_address == "127.0.0.1" for e in events)
    view = events[-1]
    assert (view.actor_id, view.patient_id, view.clinic_id) == (doc.id, patient.id, clinic.id)


def test_admin_searches_the_clinics_trail(
    app: Flask, client, make_clinic, make_user, make_patient, db: Session
) -> None:
    clinic = make_clinic()
    admin = make_user(clinic, Role.CLINIC_ADMIN, name="Alice Admin")
    doc = make_user(clinic, Role.CLINICIAN, name="Dora Doctor", email="dora@example.org")
    patient = make_patient(clinic, "Zelda", "Zimmer")
    other = make_clinic("Elsewhere")
    outsider = make_user(other, Role.CLINICIAN, email="outsider@example.org")
    doc_client = app.test_client()
    login(doc_client, doc)
    doc_client.get(f"/patients/{patient.id}")
    login(app.test_client(), outsider)
    login(client, admin)

    everything = client.get("/admin/audit").get_data(as_text=True)
    assert "dora@example.org" in everything and "outsider@example.org" not in everything
    by_actor = client.get("/admin/audit?actor=dora").get_data(as_text=True)
    assert "patient.view" in by_actor and admin.email not in by_actor
    by_patient = client.get("/admin/audit?patient=zimm").get_data(as_text=True)
    assert "1 entry" in by_patient and "Zimmer, Zelda" in by_patient
    assert "1 entry" in client.get(f"/admin/audit?patient={patient.id}").get_data(as_text=True)
    by_action = client.get("/admin/audit?action=login.").get_data(as_text=True)
    assert "login.success" in by_action and "patient.view</code>" not in by_action
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()
    assert "0 entries" in client.get(f"/admin/audit?since={tomorrow}").get_data(as_text=True)
    assert client.get("/admin/audit?since=garbage&page=x").status_code == 200
    assert (
        login(app.test_client(), doc) and app.test_client().get("/admin/audit").status_code == 302
    )


def test_audit_trail_is_paged(client, make_clinic, make_user, db: Session) -> None:
    clinic = make_clinic()
    admin = make_user(clinic, Role.CLINIC_ADMIN)
    for i in range(60):
        db.add(AuditEvent(clinic_id=clinic.id, action="test.event", detail={"n": i}))
    db.commit()
    login(client, admin)
    first = client.get("/admin/audit?action=test.").get_data(as_text=True)
    assert "60 entries" in first and "Page 1 of 2" in first and "n: 59" in first
    second = client.get("/admin/audit?action=test.&page=2").get_data(as_text=True)
    assert "n: 0<" in second or "n: 0 " in second


def test_no_route_changes_or_deletes_audit_entries(
    app: Flask, make_clinic, make_user, make_patient, db: Session, tmp_path
) -> None:
    """Every route, every method, as every kind of signed-in user: old entries stay as they were."""
    app.config["MAIL_DIR"] = str(tmp_path / "mail")
    clinic = make_clinic()
    patient = make_patient(clinic)
    users = [
        make_user(clinic, Role.CLINIC_ADMIN),
        make_user(clinic, Role.CLINICIAN),
        make_user(None, Role.PATIENT),
    ]
    for i in range(3):
        db.add(AuditEvent(clinic_id=clinic.id, patient_id=patient.id, action=f"seed.{i}"))
    db.commit()
    clients = []
    for user in users:
        c = app.test_client()
        login(c, user)
        clients.append(c)
    before = _rows(db)
    first_new = max(before) + 1
    params = {
        "patient_id": patient.id,
        "user_id": users[1].id,
        "share_id": 1,
        "upload_id": 1,
        "token": "x",
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "auth.logout"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", str(params.get(name, 1))).replace(
                f"<{name}>", str(params.get(name, 1))
            )
        for c in clients:
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                c.open(path, method=method, data={"id": 1, "action": "x", "delete": "1"})
    after = _rows(db)
    assert {k: v for k, v in after.items() if k < first_new} == before


def test_the_orm_refuses_to_change_or_delete_an_entry(db: Session) -> None:
    event = AuditEvent(action="login.success")
    db.add(event)
    db.commit()
    event.action = "something.else"
    with pytest.raises(RuntimeError, match="append-only"):
        db.commit()
    db.rollback()
    with pytest.raises(RuntimeError, match="append-only"):
        db.delete(db.get(AuditEvent, event.id))
        db.commit()
    db.rollback()
    assert db.get(AuditEvent, event.id).action == "login.success"  # type: ignore[union-attr]


def test_logins_with_a_user_name(client, make_user, db: Session) -> None:
    user = make_user(None, Role.PATIENT, username="pat.user")
    response = client.post("/login", data={"email": "Pat.User", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert db.exec(select(AuditEvent).where(AuditEvent.actor_id == user.id)).first()
