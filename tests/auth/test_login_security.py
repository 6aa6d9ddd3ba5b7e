"""Lockout, rate limiting, e-mailed sign-in codes, password reset links, password policy, kiosk.

Mail goes through a real SMTP server on loopback; codes and links are read from the messages.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.auth.passwords import common_passwords, is_common_password, password_problem
from tests.auth.clock import Clock, clock
from tests.auth.mailbox import Mailbox, mail_app, mailbox
from tests.conftest import TEST_PASSWORD, latest_sign_in_code, login

__all__ = ["clock", "mail_app", "mailbox"]
NEW_PASSWORD = "lilac-otter-sings-at-dawn"


def _post_login(client: FlaskClient, who: str, password: str, path: str = "/login"):
    return client.post(path, data={"email": who, "password": password})


def _register(client: FlaskClient, email: str, *, username: str = "", invite: str = ""):
    return client.post(
        "/register" + (f"?invite={invite}" if invite else ""),
        data={
            "name": "Pat Example",
            "email": email,
            "username": username,
            "password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
            "invite": invite,
        },
    )


# --- lockout ---------------------------------------------------------------------------------
def test_five_failures_lock_the_account_for_fifteen_minutes(
    client: FlaskClient, make_clinic, make_user, db: Session, clock: Clock
) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN, email="doc@example.org")
    for _ in range(4):
        assert _post_login(client, user.email, "wrong-password").status_code == 401
    locked = _post_login(client, user.email, "wrong-password")
    assert locked.status_code == 423
    text = locked.get_data(as_text=True)
    assert "locked" in text and "Try again at" in text and "in 15 minutes" in text
    # While locked, even the right password is refused, and says when to come back.
    clock.advance(minutes=14)
    still = _post_login(client, user.email, TEST_PASSWORD)
    assert still.status_code == 423 and "in 1 minute" in still.get_data(as_text=True)
    clock.advance(minutes=1, seconds=1)
    assert _post_login(client, user.email, TEST_PASSWORD).status_code == 302
    db.expire_all()
    fresh = db.get(User, user.id)
    assert fresh is not None and fresh.failed_logins == 0 and fresh.locked_until is None
    actions = [e.action for e in db.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert actions.count("account.locked") == 1
    assert actions.count("login.failure") == 6 and actions[-1] == "login.success"


def test_lock_counts_only_consecutive_failures(client: FlaskClient, make_clinic, make_user) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN)
    for _ in range(4):
        _post_login(client, user.email, "wrong-password")
    login(client, user)
    client.post("/logout")
    for _ in range(4):
        assert _post_login(client, user.email, "wrong-password").status_code == 401


def test_rate_limit_per_address_across_accounts(
    app: Flask, client: FlaskClient, make_clinic, make_user, clock: Clock
) -> None:
    app.config["LOGIN_RATE_LIMIT"] = 3
    user = make_user(make_clinic(), Role.CLINICIAN)
    for i in range(3):
        assert _post_login(client, f"nobody{i}@example.org", "x").status_code == 401
    refused = _post_login(client, user.email, TEST_PASSWORD)
    assert refused.status_code == 429
    assert "Too many failed attempts from this network address" in refused.get_data(as_text=True)
    clock.advance(minutes=16)  # the window slides past the failures
    assert _post_login(client, user.email, TEST_PASSWORD).status_code == 302


# --- e-mailed codes --------------------------------------------------------------------------
def test_patient_signs_up_verifies_with_the_mailed_code(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox, db: Session
) -> None:
    response = _register(client, "pat@example.org", username="pat.example")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login/verify")
    assert client.get("/me").status_code == 302  # not signed in before the code
    assert client.post("/login/verify", data={"code": "000000"}).status_code in (400, 200)
    code = mailbox.code("pat@example.org")
    done = client.post("/login/verify", data={"code": code})
    assert done.status_code == 302
    assert client.get("/me").status_code == 200
    user = db.exec(select(User).where(User.email == "pat@example.org")).one()
    assert user.role == Role.PATIENT and user.two_factor and user.email_verified_at is not None
    # The code is single-use, and the user name signs in too (with a new code).
    client.post("/logout")
    assert _post_login(client, "pat.example", NEW_PASSWORD).status_code == 302
    assert client.post("/login/verify", data={"code": code}).status_code == 400
    assert client.post("/login/verify", data={"code": mailbox.code(user.email)}).status_code == 302


def test_code_expires_after_fifteen_minutes(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox, clock: Clock
) -> None:
    _register(client, "late@example.org")
    code = mailbox.code("late@example.org")
    clock.advance(minutes=15, seconds=1)
    expired = client.post("/login/verify", data={"code": code})
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    assert client.get("/me").status_code == 302
    # A new code (after the one-minute resend pause) works.
    client.post("/login/verify/resend")
    new_code = mailbox.code("late@example.org")
    assert new_code != code or len(mailbox.to("late@example.org")) == 2
    assert client.post("/login/verify", data={"code": new_code}).status_code == 302


def test_code_just_before_expiry_still_works(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox, clock: Clock
) -> None:
    _register(client, "quick@example.org")
    clock.advance(minutes=14, seconds=59)
    assert (
        client.post("/login/verify", data={"code": mailbox.code("quick@example.org")}).status_code
        == 302
    )


def test_resend_waits_a_minute_and_replaces_the_old_code(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox, clock: Clock
) -> None:
    _register(client, "again@example.org")
    first = mailbox.code("again@example.org")
    client.post("/login/verify/resend")
    assert len(mailbox.to("again@example.org")) == 1  # too soon: no second mail
    clock.advance(seconds=61)
    client.post("/login/verify/resend")
    assert len(mailbox.to("again@example.org")) == 2
    second = mailbox.code("again@example.org")
    if first != second:
        assert client.post("/login/verify", data={"code": first}).status_code == 400
    assert client.post("/login/verify", data={"code": second}).status_code == 302


def test_wrong_codes_lock_the_account(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    _register(client, "guess@example.org")
    code = mailbox.code("guess@example.org")
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert client.post("/login/verify", data={"code": wrong}).status_code == 400
    locked = client.post("/login/verify", data={"code": wrong})
    assert locked.status_code == 423 and "locked" in locked.get_data(as_text=True)
    assert client.post("/login/verify", data={"code": code}).status_code == 302  # to login
    assert client.get("/me").status_code == 302


def test_staff_codes_are_a_clinic_setting(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox, make_clinic, make_user, db: Session
) -> None:
    clinic = make_clinic()
    doc = make_user(clinic, Role.CLINICIAN, email="doc@example.org")
    assert _post_login(client, doc.email, TEST_PASSWORD).headers["Location"].endswith("/")
    client.post("/logout")
    admin = make_user(clinic, Role.CLINIC_ADMIN)
    admin_client = mail_app.test_client()
    login(admin_client, admin)
    saved = admin_client.post(
        "/admin/clinic",
        data={"name": clinic.name, "time_zone": "Europe/Berlin", "staff_two_factor": "y"},
    )
    assert saved.status_code == 302
    db.expire_all()
    assert db.get(Clinic, clinic.id).staff_two_factor  # type: ignore[union-attr]
    response = _post_login(client, doc.email, TEST_PASSWORD)
    assert response.headers["Location"].endswith("/login/verify")
    assert client.get("/patients/").status_code == 302
    client.post("/login/verify", data={"code": mailbox.code(doc.email)})
    assert client.get("/patients/").status_code == 200


# --- password reset --------------------------------------------------------------------------
def _reset_path(link: str) -> str:
    return "/" + link.split("/", 3)[3]


def test_reset_link_sets_password_once_and_ends_sessions(
    mail_app: Flask, mailbox: Mailbox, make_clinic, make_user, db: Session
) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN, email="forgetful@example.org")
    old_session = mail_app.test_client()
    login(old_session, user)
    client = mail_app.test_client()
    sent = client.post("/password/forgot", data={"email": "Forgetful@example.org"})
    assert sent.status_code == 302
    path = _reset_path(mailbox.link(user.email))
    assert re.fullmatch(r"/password/reset/[A-Za-z0-9_-]{40,}", path)
    assert client.get(path).status_code == 200
    weak = client.post(path, data={"password": "password2024!", "confirm": "password2024!"})
    assert weak.status_code == 400 and "too common" in weak.get_data(as_text=True)
    done = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert old_session.get("/patients/").status_code == 302  # signed out everywhere
    assert _post_login(client, user.email, NEW_PASSWORD).status_code == 302
    client.post("/logout")
    # The link is single-use.
    reused = client.post(
        path, data={"password": "another-fine-passphrase", "confirm": "another-fine-passphrase"}
    )
    assert reused.status_code == 410 and "not valid any more" in reused.get_data(as_text=True)
    assert _post_login(client, user.email, NEW_PASSWORD).status_code == 302
    actions = [e.action for e in db.exec(select(AuditEvent))]
    assert "password.reset_requested" in actions and "password.reset" in actions


def test_reset_link_expires(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox, make_clinic, make_user, clock: Clock
) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN)
    client.post("/password/forgot", data={"email": user.email})
    path = _reset_path(mailbox.link(user.email))
    clock.advance(minutes=61)
    assert client.get(path).status_code == 410
    expired = client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert expired.status_code == 410


def test_reset_for_unknown_address_says_the_same_and_sends_nothing(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox
) -> None:
    response = client.post(
        "/password/forgot", data={"email": "ghost@example.org"}, follow_redirects=True
    )
    assert "If an account uses ghost@example.org" in response.get_data(as_text=True)
    assert mailbox.messages == []


def test_reset_lifts_a_lockout(
    mail_app: Flask, client: FlaskClient, mailbox: Mailbox, make_clinic, make_user
) -> None:
    user = make_user(make_clinic(), Role.CLINICIAN)
    for _ in range(5):
        _post_login(client, user.email, "wrong-password")
    assert _post_login(client, user.email, TEST_PASSWORD).status_code == 423
    client.post("/password/forgot", data={"email": user.email})
    path = _reset_path(mailbox.link(user.email))
    client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert _post_login(client, user.email, NEW_PASSWORD).status_code == 302


# --- password policy -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "password",
    [
        "password1234",
        "Password2024!",
        "P4ssw0rd-2025",
        "qwertyuiop123",
        "passwordpassword",
        "iloveyou12345",
        "123456789012",
        "Diabetes2026!",
        "letmein-letmein",
    ],
)
def test_common_passwords_are_refused(password: str) -> None:
    assert is_common_password(password)
    assert password_problem(password) is not None


@pytest.mark.parametrize(
    "password", ["lilac-otter-sings-at-dawn", "correct-horse-battery-staple", "Tram 7 to Nordpark!"]
)
def test_uncommon_passwords_pass(password: str) -> None:
    assert password_problem(password) is None


def test_the_shipped_list_is_big_and_lower_case() -> None:
    words = common_passwords()
    assert len(words) >= 1000
    assert {"123456", "password", "qwerty", "iloveyou"} <= words
    assert all(w == w.lower() for w in words)


def test_signup_refuses_short_common_and_email_passwords(
    mail_app: Flask, client: FlaskClient
) -> None:
    for password, message in [
        ("short-one", "at least 12 characters"),
        ("sunshine2025", "too common"),
        ("patricia.m1234", "e-mail address"),
    ]:
        response = client.post(
            "/register",
            data={
                "name": "P",
                "email": "patricia.m@example.org",
                "password": password,
                "confirm": password,
            },
        )
        assert response.status_code == 400 and message in response.get_data(as_text=True)


# --- kiosk -----------------------------------------------------------------------------------
def test_kiosk_session_idles_out(
    app: Flask, client: FlaskClient, make_clinic, make_user, db: Session, clock: Clock
) -> None:
    patient = make_user(None, Role.PATIENT)
    make_user(make_clinic(), Role.CLINICIAN)
    response = _post_login(client, patient.email, TEST_PASSWORD, path="/kiosk/login")
    assert response.headers["Location"].endswith("/login/verify")  # patients always get a code
    response = client.post("/login/verify", data={"code": latest_sign_in_code(app, patient.email)})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "Expires" not in cookie and "Max-Age" not in cookie  # ends with the browser
    page = client.get("/me")
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert 'id="kiosk-timer"' in html and "js/kiosk.js" in html
    assert f'data-idle-seconds="{app.config["KIOSK_IDLE_SECONDS"]}"' in html
    clock.advance(seconds=app.config["KIOSK_IDLE_SECONDS"] - 5)
    assert client.post("/kiosk/ping").status_code == 204  # activity keeps it alive
    clock.advance(seconds=app.config["KIOSK_IDLE_SECONDS"] - 5)
    assert client.get("/me").status_code == 200
    clock.advance(seconds=app.config["KIOSK_IDLE_SECONDS"] + 1)
    idle = client.get("/me")
    assert idle.status_code == 302 and idle.headers["Location"].endswith("/kiosk/login")
    assert "cache" in idle.headers["Clear-Site-Data"]
    assert client.get("/me").status_code == 302
    assert db.exec(select(AuditEvent).where(AuditEvent.action == "logout.idle")).first()


def test_kiosk_sign_out_returns_to_the_kiosk_login(client: FlaskClient, make_user) -> None:
    patient = make_user(None, Role.PATIENT)
    _post_login(client, patient.email, TEST_PASSWORD, path="/kiosk/login")
    code = latest_sign_in_code(client.application, patient.email)
    assert client.post("/login/verify", data={"code": code}).status_code == 302
    out = client.post("/logout")
    assert out.headers["Location"].endswith("/kiosk/login")
    assert '"cache"' in out.headers["Clear-Site-Data"]
    kiosk_page = client.get("/kiosk/login").get_data(as_text=True)
    assert "shared computer" in kiosk_page and "remember" not in kiosk_page.lower()


def test_normal_sessions_have_no_idle_timeout(
    client: FlaskClient, make_clinic, make_user, clock: Clock
) -> None:
    login(client, make_user(make_clinic(), Role.CLINICIAN))
    clock.advance(hours=1)
    page = client.get("/patients/")
    assert page.status_code == 200 and "kiosk-timer" not in page.get_data(as_text=True)
