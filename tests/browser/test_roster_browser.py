"""A clinician signs in, searches the roster live and opens a patient."""

from __future__ import annotations

from datetime import date

from playwright.sync_api import Page, expect

from clinic_portal.auth.models import Role
from tests.conftest import TEST_PASSWORD


def test_sign_in_search_open_patient(
    page: Page, live_server: str, make_clinic, make_user, make_patient
) -> None:
    clinic = make_clinic()
    doctor = make_user(clinic, Role.CLINICIAN, email="doctor@example.org")
    make_patient(clinic, "Grace", "Hopper", date_of_birth=date(1966, 12, 9), tags=("pump",))
    for i in range(30):
        make_patient(clinic, "Test", f"Person{i:02d}")

    page.goto(live_server + "/patients/")
    expect(page).to_have_url(live_server + "/login?next=/patients/")
    page.get_by_label("E-mail").fill(doctor.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    expect(page.get_by_text("31 patients")).to_be_visible()

    # Live search: typing swaps only the results (htmx), without pressing Enter.
    page.get_by_label("Search by name, MRN or date of birth").fill("hopp")
    expect(page.get_by_text("1 patient matching “hopp”")).to_be_visible()
    rows = page.locator("#roster-results tbody tr")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(live_server + "/patients/?q=hopp&tag=&sort=name")

    page.get_by_role("link", name="Hopper, Grace").click()
    expect(page.get_by_role("heading", name="Hopper, Grace")).to_be_visible()
    expect(page.get_by_text("No data has been uploaded for this patient.")).to_be_visible()


def test_sign_out_then_back_shows_nothing(
    page: Page, live_server: str, make_clinic, make_user, make_patient
) -> None:
    clinic = make_clinic()
    doctor = make_user(clinic, Role.CLINICIAN)
    make_patient(clinic, "Grace", "Hopper")
    page.goto(live_server + "/login")
    page.get_by_label("E-mail").fill(doctor.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Hopper, Grace")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.go_back()
    expect(page.get_by_text("Hopper, Grace")).to_have_count(0)
