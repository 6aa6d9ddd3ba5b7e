"""The whole sharing flow in Chromium, with mail through a real SMTP server on loopback:

clinic invites by e-mail -> the patient registers from the mailed link -> verifies with the
mailed code -> accepts the share -> the clinician sees the data -> the patient revokes -> the
clinician's next request is refused (403).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlmodel import Session

from clinic_portal.auth.models import Role
from clinic_portal.records import CgmReading, DeviceInfo, DeviceKind, RecordBatch
from clinic_portal.upload_station.ingest import ingest_batch
from tests.auth.mailbox import Mailbox, mailbox
from tests.conftest import TEST_PASSWORD

__all__ = ["mailbox"]
PATIENT_EMAIL = "new.patient@example.org"
PATIENT_PASSWORD = "lilac-otter-sings-at-dawn"


@pytest.fixture
def contexts(browser: Browser) -> Iterator[tuple[list[str], BrowserContext, BrowserContext]]:
    """Two separate browsers (clinic PC and the patient's home), collecting script errors."""
    errors: list[str] = []
    made = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.on("weberror", lambda e: errors.append(str(e.error)))
        made.append(context)
    yield errors, made[0], made[1]
    for context in made:
        context.close()


def _watch(page: Page, errors: list[str]) -> Page:
    def console(msg) -> None:
        # The refused page after the revocation is an expected 403, not a script error.
        if msg.type == "error" and "status of 403" not in msg.text:
            errors.append(msg.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def _cgm_data(db: Session, clinic, patient) -> None:
    device = DeviceInfo("SG-4242", "Dexcom", "G7", DeviceKind.CGM)
    end = int(time.time()) // 300 * 300
    readings = [
        CgmReading(
            device_serial=device.serial,
            time=end - 300 * i,
            utc_offset=60,
            glucose=110.0 + 40.0 * ((i // 12) % 3 == 0),
        )
        for i in range(288 * 6)
    ]
    batch = RecordBatch(source="test", devices=[device], records=list(readings))
    ingest_batch(db, batch, clinic=clinic, actor=None, patient=patient)
    db.commit()


def test_invite_register_verify_accept_view_revoke(
    live_app: Flask,
    live_server: str,
    mailbox: Mailbox,
    contexts,
    make_clinic,
    make_user,
    make_patient,
    db: Session,
) -> None:
    live_app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=mailbox.port, MAIL_USE_TLS=False)
    errors, clinic_browser, home_browser = contexts
    clinic = make_clinic("Riverside Clinic")
    doctor = make_user(clinic, Role.CLINICIAN, email="doctor@example.org")
    record = make_patient(clinic, "Nina", "Newcomer")
    _cgm_data(db, clinic, record)

    # The clinician asks by e-mail: there is no account yet, so it is an invitation.
    clinic_page = _watch(clinic_browser.new_page(), errors)
    clinic_page.goto(f"{live_server}/login")
    clinic_page.get_by_label("E-mail").fill(doctor.email)
    clinic_page.get_by_label("Password").fill(TEST_PASSWORD)
    clinic_page.get_by_role("button", name="Sign in").click()
    expect(clinic_page.get_by_role("heading", name="Patients")).to_be_visible()
    clinic_page.goto(f"{live_server}/patients/{record.id}/sharing")
    clinic_page.get_by_label("Patient's e-mail address or user name").fill(PATIENT_EMAIL)
    clinic_page.get_by_role("button", name="Ask to share").click()
    expect(clinic_page.get_by_text(f"The invitation was sent to {PATIENT_EMAIL}.")).to_be_visible()
    expect(clinic_page.get_by_text("Waiting for the patient")).to_be_visible()

    # The patient registers from the mailed link and verifies with the mailed code.
    link = mailbox.link(PATIENT_EMAIL)
    assert link.startswith(live_server + "/register?invite=")
    home = _watch(home_browser.new_page(), errors)
    home.goto(link)
    expect(home.get_by_text("Riverside Clinic invited you")).to_be_visible()
    expect(home.get_by_label("E-mail", exact=True)).to_have_value(PATIENT_EMAIL)
    home.get_by_label("Your name").fill("Nina Newcomer")
    home.get_by_label("Password", exact=True).fill(PATIENT_PASSWORD)
    home.get_by_label("Password again").fill(PATIENT_PASSWORD)
    home.get_by_role("button", name="Create account").click()
    expect(home.get_by_role("heading", name="Enter your code")).to_be_visible()
    home.get_by_label("6-digit code").fill(mailbox.code(PATIENT_EMAIL))
    home.get_by_role("button", name="Continue").click()

    # The patient reads the clinic's terms and accepts.
    expect(home.get_by_role("heading", name="My data")).to_be_visible()
    home.get_by_role("link", name="Riverside Clinic asks to see your data").click()
    expect(home.get_by_text("care team to see the diabetes device data")).to_be_visible()
    home.get_by_label("I have read the clinic's terms and agree to share my data").check()
    home.get_by_role("button", name="Accept and share").click()
    expect(home.get_by_text("You now share your data with Riverside Clinic.")).to_be_visible()
    home.get_by_role("link", name="My data").click()
    expect(home.get_by_role("heading", name="Riverside Clinic: Nina Newcomer")).to_be_visible()
    expect(home.get_by_text("SG-4242")).to_be_visible()

    # The clinician sees the data.
    clinic_page.goto(f"{live_server}/patients/{record.id}")
    expect(clinic_page.get_by_role("heading", name="Newcomer, Nina")).to_be_visible()
    expect(clinic_page.get_by_text("SG-4242")).to_be_visible()

    # The patient stops sharing; the clinician's next request is refused.
    home.get_by_role("link", name="Sharing").first.click()
    home.get_by_role("link", name="Details or stop sharing").click()
    home.get_by_role("button", name="Stop sharing with Riverside Clinic").click()
    expect(home.get_by_text("Riverside Clinic can no longer see your data.")).to_be_visible()
    response = clinic_page.reload()
    assert response is not None and response.status == 403
    expect(clinic_page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(clinic_page.get_by_text("SG-4242")).to_have_count(0)
    expect(clinic_page.get_by_text("Stopped by the patient")).to_be_visible()
    assert errors == []
