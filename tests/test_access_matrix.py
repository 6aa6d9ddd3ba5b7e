"""Every route × every kind of visitor, built from ``app.url_map`` so no route can escape.

Visitors: anonymous, a patient account, staff, clinician and clinic admin of clinic A, and the
admin of another clinic B (the most privileged outsider). For each rule the test derives the
expected answer from the permission the view declares (``requires``) and the role table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from clinic_portal.auth.access import ROLE_PERMISSIONS, Permission
from clinic_portal.auth.models import Role
from clinic_portal.sharing.models import ShareRequest, ShareState
from clinic_portal.timeutil import utcnow
from clinic_portal.upload_station.models import Upload, UploadStatus
from tests.conftest import login

VISITORS = ["anonymous", "patient", "staff", "clinician", "clinic_admin", "other_clinic_admin"]
# Permissions that are about one clinic's roster: another clinic's users must get 404 on ids.
CLINIC_SCOPED = {
    Permission.VIEW_ROSTER,
    Permission.EDIT_PATIENTS,
    Permission.VIEW_CLINICAL,
    Permission.UPLOAD,
    Permission.MANAGE_USERS,
}


@dataclass
class World:
    clients: dict[str, FlaskClient]
    roles: dict[str, Role | None]
    params: dict[str, Any]
    secret_name: str  # a clinic A patient's name nobody outside clinic A may see


@pytest.fixture
def world(app: Flask, make_clinic, make_user, make_patient, db, tmp_path) -> World:
    clinic_a = make_clinic("Clinic A")
    clinic_b = make_clinic("Clinic B")
    patient = make_patient(clinic_a, first_name="Secretia", last_name="Hiddenfeld")
    users = {
        "patient": make_user(None, Role.PATIENT),
        "staff": make_user(clinic_a, Role.STAFF),
        "clinician": make_user(clinic_a, Role.CLINICIAN),
        "clinic_admin": make_user(clinic_a, Role.CLINIC_ADMIN),
        "other_clinic_admin": make_user(clinic_b, Role.CLINIC_ADMIN),
    }
    make_patient(clinic_b, first_name="Bea", last_name="Bclinic")
    # The patient account's own record at clinic A, with one stored upload: clinic A's roles
    # open it under /uploads/<id>, the patient under /me/uploads/<id>, clinic B gets 404.
    own = make_patient(
        clinic_a, first_name="Pat", last_name="Selfie", account_id=users["patient"].id
    )
    upload = Upload(
        clinic_id=clinic_a.id, patient_id=own.id, source="test", status=UploadStatus.DONE
    )
    db.add(upload)
    # Clinic A asks the patient account to share the secret record: the patient sees the
    # request (clinic name only), clinic A's roles resend or cancel it, clinic B gets 404.
    share = ShareRequest(
        clinic_id=clinic_a.id,
        patient_id=patient.id,
        account_id=users["patient"].id,
        expires_at=utcnow() + timedelta(days=14),
    )
    db.add(share)
    db.commit()
    app.config["MAIL_DIR"] = str(tmp_path / "mail")  # resending writes a mail file
    clients = {"anonymous": app.test_client()}
    for name, user in users.items():
        clients[name] = app.test_client()
        login(clients[name], user)
    roles: dict[str, Role | None] = {name: user.role for name, user in users.items()}
    roles["anonymous"] = None
    params = {
        "patient_id": patient.id,
        "user_id": users["clinician"].id,
        "upload_id": upload.id,
        "share_id": share.id,
        "token": "not-a-real-reset-token",
    }
    return World(clients, roles, params, "Hiddenfeld")


def _routes(app: Flask) -> list[tuple[str, str, Any]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            out.append((rule.rule, method, rule))
    return out


def test_every_route_declares_a_permission(app: Flask) -> None:
    missing = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and not hasattr(app.view_functions[rule.endpoint], "required_permission")
    ]
    assert missing == [], f"routes without @requires(...): {missing}"


def _build(rule: Any, params: dict[str, Any]) -> str:
    values = {}
    for name in rule.arguments:
        assert name in params, f"access matrix has no value for <{name}> in {rule.rule}"
        values[name] = params[name]
    path = rule.rule
    for name, value in values.items():
        path = path.replace(f"<int:{name}>", str(value)).replace(f"<{name}>", str(value))
    return path


@pytest.mark.parametrize("visitor", VISITORS)
def test_access_matrix(app: Flask, world: World, visitor: str) -> None:
    client = world.clients[visitor]
    role = world.roles[visitor]
    failures = []
    for path_rule, method, rule in _routes(app):
        if rule.endpoint == "auth.logout":
            continue  # signing out would end this visitor's session; covered in test_login
        permission: Permission = app.view_functions[rule.endpoint].required_permission
        url = _build(rule, world.params)
        response = client.open(url, method=method, data={})
        status = response.status_code
        to_login = status in (301, 302) and "/login" in response.headers.get("Location", "")
        if permission == Permission.PUBLIC:
            ok = status != 403 and status < 500
            expected = "not 403/5xx"
        elif role is None:
            ok = to_login or status == 401
            expected = "redirect to login"
        elif permission != Permission.SIGNED_IN and permission not in ROLE_PERMISSIONS[role]:
            ok = status == 403
            expected = "403"
        elif visitor == "other_clinic_admin" and permission in CLINIC_SCOPED and rule.arguments:
            ok = status == 404
            expected = "404 (another clinic's id)"
        else:
            ok = status < 500 and status not in (401, 403, 404) and not to_login
            expected = "allowed"
        body = response.get_data(as_text=True)
        if visitor in ("anonymous", "patient", "other_clinic_admin") and world.secret_name in body:
            failures.append(f"{method} {url}: {visitor} saw clinic A's patient")
        if not ok:
            failures.append(f"{method} {path_rule} as {visitor}: got {status}, expected {expected}")
    assert failures == []


def test_role_table_is_the_documented_policy() -> None:
    """The matrix derives expectations from ROLE_PERMISSIONS, so pin that table itself."""
    assert ROLE_PERMISSIONS[Role.PATIENT] == {Permission.PATIENT_SELF}
    assert ROLE_PERMISSIONS[Role.STAFF] == {
        Permission.VIEW_ROSTER,
        Permission.EDIT_PATIENTS,
        Permission.UPLOAD,
    }
    assert Permission.VIEW_CLINICAL in ROLE_PERMISSIONS[Role.CLINICIAN]
    assert Permission.MANAGE_USERS not in ROLE_PERMISSIONS[Role.CLINICIAN]
    assert Permission.MANAGE_USERS in ROLE_PERMISSIONS[Role.CLINIC_ADMIN]


# --- patient accounts and shares -------------------------------------------------------------
# Routes under <patient_id> that show names and share states only, so they stay open to the
# clinic after a patient stops sharing. Every other <patient_id> route must answer 403.
SHARE_STATE_ROUTES = {"shares.sharing", "shares.new_request", "shares.resend", "shares.cancel"}


def _shared_record(app: Flask, make_clinic, make_user, make_patient, db) -> tuple[Any, ...]:
    clinic = make_clinic("Clinic S")
    account = make_user(None, Role.PATIENT)
    record = make_patient(clinic, first_name="Sharon", last_name="Sharewell")
    share = ShareRequest(
        clinic_id=clinic.id,
        patient_id=record.id,
        account_id=account.id,
        state=ShareState.ACCEPTED,
        accepted_at=utcnow(),
    )
    record.account_id = account.id
    db.add(share)
    db.add(record)
    db.commit()
    return clinic, account, record, share


def test_revocation_closes_every_patient_data_route(
    app: Flask, make_clinic, make_user, make_patient, db
) -> None:
    clinic, account, record, share = _shared_record(app, make_clinic, make_user, make_patient, db)
    clinician = app.test_client()
    login(clinician, make_user(clinic, Role.CLINIC_ADMIN))
    patient = app.test_client()
    login(patient, account)
    rules = [
        rule
        for rule in app.url_map.iter_rules()
        if "patient_id" in rule.arguments and rule.endpoint not in SHARE_STATE_ROUTES
    ]
    assert rules, "no patient data routes found"
    params = {"patient_id": record.id, "share_id": share.id}
    for rule in rules:
        if "GET" in (rule.methods or set()) and set(rule.arguments) <= set(params):
            status = clinician.get(_build(rule, params)).status_code
            assert status not in (403, 404), f"{rule.rule} closed while shared: {status}"
    assert patient.post(f"/me/shares/{share.id}/revoke").status_code == 302
    failures = []
    for rule in rules:
        values = {**params, **{n: 1 for n in rule.arguments if n not in params}}
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            response = clinician.open(_build(rule, values), method=method, data={})
            if response.status_code != 403:
                failures.append(f"{method} {rule.rule}: {response.status_code}")
    assert failures == []
    assert clinician.get(f"/patients/{record.id}/sharing").status_code == 200


def test_a_patient_sees_only_their_own_records_and_shares(
    app: Flask, make_clinic, make_user, make_patient, db, tmp_path
) -> None:
    clinic, account, _record, _share = _shared_record(app, make_clinic, make_user, make_patient, db)
    other_account = make_user(None, Role.PATIENT)
    other_record = make_patient(clinic, first_name="Otto", last_name="Otherperson")
    other_record.account_id = other_account.id
    other_share = ShareRequest(
        clinic_id=clinic.id,
        patient_id=other_record.id,
        account_id=other_account.id,
        state=ShareState.ACCEPTED,
        accepted_at=utcnow(),
    )
    db.add(other_record)
    db.add(other_share)
    upload = Upload(
        clinic_id=clinic.id, patient_id=other_record.id, source="test", status=UploadStatus.DONE
    )
    db.add(upload)
    db.commit()
    app.config["MAIL_DIR"] = str(tmp_path / "mail")
    client = app.test_client()
    login(client, account)
    assert "Sharewell" in client.get("/me").get_data(as_text=True)
    params = {
        "share_id": other_share.id,
        "upload_id": upload.id,
        "patient_id": other_record.id,
        "user_id": other_account.id,
        "token": "x",
    }
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint == "auth.logout":
            continue
        permission = app.view_functions[rule.endpoint].required_permission
        if permission != Permission.PATIENT_SELF:
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            response = client.open(_build(rule, params), method=method, data={"consent": "y"})
            if "Otherperson" in response.get_data(as_text=True):
                failures.append(f"{method} {rule.rule} showed another patient's record")
            if rule.arguments and response.status_code != 404:
                failures.append(f"{method} {rule.rule}: {response.status_code}, expected 404")
    assert failures == []
    db.expire_all()
    assert db.get(ShareRequest, other_share.id).state == ShareState.ACCEPTED
