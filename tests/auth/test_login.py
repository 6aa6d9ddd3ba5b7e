"""Signing in and out, sessions, CSRF, security headers and the production guard."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlmodel import select

from clinic_portal import create_app
from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Role, User
from clinic_portal.auth.views import safe_next
from clinic_portal.config import ConfigError
from tests.conftest import TEST_PASSWORD, login


def test_login_success_redirects_and_audits(client, make_clinic, make_user, db) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN, email="doc@example.org")
    response = client.post("/login", data={"email": " DOC@example.org ", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/")
    assert client.get("/patients/").status_code == 200
    actions = [e.action for e in db.exec(select(AuditEvent).where(AuditEvent.actor_id == user.id))]
    assert "login.success" in actions


def test_wrong_password_is_refused_generically_and_audited(client, make_clinic, make_user, db):
    user = make_user(make_clinic(), Role.CLINICIAN, email="doc@example.org")
    response = client.post("/login", data={"email": "doc@example.org", "password": "nope"})
    assert response.status_code == 401
    assert "e-mail address or password is not correct" in response.get_data(as_text=True)
    unknown = client.post("/login", data={"email": "who@example.org", "password": "nope"})
    assert "e-mail address or password is not correct" in unknown.get_data(as_text=True)
    db.expire_all()
    assert db.get(User, user.id).failed_logins == 1
    failures = db.exec(select(AuditEvent).where(AuditEvent.action == "login.failure")).all()
    assert len(failures) == 2


def test_disabled_account_cannot_sign_in(client, make_clinic, make_user) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN, active=False)
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 401


def test_next_is_followed_only_for_local_paths(client, make_clinic, make_user) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN)
    response = client.post(
        "/login?next=https://evil.example/steal",
        data={"email": user.email, "password": TEST_PASSWORD},
    )
    assert "evil" not in response.headers["Location"]
    assert safe_next("/patients/?q=a") == "/patients/?q=a"
    for bad in ("//evil.example", "https://evil.example", "/\\evil.example", "javascript:x"):
        assert safe_next(bad) is None


def test_logout_ends_session_and_clears_site_data(client, make_clinic, make_user) -> None:
    login(client, make_user(make_clinic(), Role.CLINICIAN))
    response = client.post("/logout")
    assert response.status_code == 302
    assert "cache" in response.headers["Clear-Site-Data"]
    assert client.get("/patients/").status_code == 302


def test_password_change_ends_other_sessions(app: Flask, make_clinic, make_user, db) -> None:
    clinic = make_clinic()
    admin = make_user(clinic, Role.CLINIC_ADMIN)
    doc = make_user(clinic, Role.CLINICIAN)
    doc_client = app.test_client()
    login(doc_client, doc)
    admin_client = app.test_client()
    login(admin_client, admin)
    response = admin_client.post(
        f"/admin/users/{doc.id}",
        data={
            "name": doc.name,
            "role": "clinician",
            "active": "y",
            "new_password": "a-brand-new-long-password",
        },
    )
    assert response.status_code == 302
    assert doc_client.get("/patients/").status_code == 302  # signed out


def test_anonymous_htmx_request_gets_401_with_redirect(client) -> None:
    response = client.get("/patients/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].endswith("/login")


def test_security_headers_and_no_store(client, make_clinic, make_user) -> None:
    login(client, make_user(make_clinic(), Role.CLINICIAN))
    response = client.get("/patients/")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Target" in response.headers["Vary"]
    html = response.get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html  # nothing inline for the CSP


def test_session_cookie_is_httponly(client, make_clinic, make_user) -> None:
    response = login(client, make_user(make_clinic(), Role.CLINICIAN))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_csrf_is_required_on_state_changes(migrated, make_clinic, make_user) -> None:
    app = create_app({"TESTING": True, "DATABASE_URL": migrated, "SECRET_KEY": "x" * 40})
    client = app.test_client()
    user = make_user(make_clinic(), Role.CLINICIAN)
    refused = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert refused.status_code == 400
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    accepted = client.post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert accepted.status_code == 302
    # htmx sends the token as a header (hx-headers on <body>).
    roster = client.get("/patients/").get_data(as_text=True)
    assert "X-CSRFToken" in roster
    app.extensions["db_engine"].dispose()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLINIC_PORTAL_ENV": "production"}, "SECRET_KEY"),
        (
            {"CLINIC_PORTAL_ENV": "production", "CLINIC_PORTAL_SECRET_KEY": "k" * 40},
            "DATABASE_URL",
        ),
        (
            {
                "CLINIC_PORTAL_ENV": "production",
                "CLINIC_PORTAL_SECRET_KEY": "k" * 40,
                "CLINIC_PORTAL_DATABASE_URL": "postgresql+psycopg://db/portal",
                "CLINIC_PORTAL_SECURE_COOKIES": "0",
            },
            "SECURE_COOKIES",
        ),
    ],
)
def test_production_refuses_unsafe_settings(monkeypatch, tmp_path, env, message) -> None:
    monkeypatch.setenv("CLINIC_PORTAL_INSTANCE_PATH", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=message):
        create_app()


def test_production_starts_with_safe_settings(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CLINIC_PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("CLINIC_PORTAL_ENV", "production")
    monkeypatch.setenv("CLINIC_PORTAL_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("CLINIC_PORTAL_DATABASE_URL", "postgresql+psycopg://db.invalid/portal")
    app = create_app()
    assert app.config["SESSION_COOKIE_SECURE"] is True
