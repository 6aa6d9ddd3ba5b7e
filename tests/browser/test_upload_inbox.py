"""Staff upload a CareLink export of an unknown pump, find it in the inbox, assign it to a patient
and see the patient's data."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from clinic_portal.auth.models import Role
from tests.conftest import TEST_PASSWORD
from tests.upload_station.importers.conftest import FIXTURES

CARELINK = FIXTURES / "carelink-csv" / "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv"
SERIAL = "NG4114235H"


def test_unknown_pump_goes_to_the_inbox_and_is_assigned(
    page: Page, live_server: str, make_clinic, make_user, make_patient
) -> None:
    clinic = make_clinic(time_zone="Europe/Brussels")
    staff = make_user(clinic, Role.STAFF, email="desk@example.org")
    grace = make_patient(clinic, "Grace", "Hopper", time_zone="Europe/Brussels")
    make_patient(clinic, "Alan", "Turing")

    page.goto(live_server + "/login")
    page.get_by_label("E-mail").fill(staff.email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Upload").click()
    expect(page.get_by_role("heading", name="Upload a file")).to_be_visible()

    # No patient chosen: the pump's serial decides, and nobody has it yet.
    page.get_by_label("Export file").set_input_files(str(CARELINK))
    page.get_by_role("button", name="Show what the file holds").click()
    expect(page.get_by_role("heading", name="What the file holds")).to_be_visible()
    expect(page.get_by_role("cell", name=SERIAL)).to_be_visible()
    expect(page.get_by_role("cell", name="new device")).to_be_visible()
    expect(page.get_by_role("cell", name="1,946")).to_be_visible()

    page.get_by_role("button", name="Store this data").click()
    # The progress element polls until the job is done, then the result replaces it.
    expect(page.get_by_role("heading", name="Waiting in the inbox")).to_be_visible(timeout=20_000)
    page.get_by_role("link", name="Open the inbox to assign it").click()

    card = page.locator("section.card", has_text=SERIAL)
    expect(card).to_be_visible()
    expect(card.get_by_text("carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv")).to_be_visible()
    card.get_by_label("Assign to patient").select_option(value=str(grace.id))
    card.get_by_role("button", name="Assign and store").click()

    expect(page.get_by_text("The upload was stored for Hopper, Grace")).to_be_visible()
    expect(page.get_by_role("cell", name="CGM readings")).to_be_visible()
    page.get_by_role("link", name="Open Hopper, Grace").click()

    expect(page.get_by_role("heading", name="Hopper, Grace")).to_be_visible()
    devices = page.locator("section.card", has=page.get_by_role("heading", name="Devices"))
    expect(devices.get_by_role("cell", name=SERIAL)).to_be_visible()
    uploads = page.locator("section.card", has=page.get_by_role("heading", name="Uploads"))
    row = uploads.locator("tbody tr").first
    expect(row).to_contain_text("carelink_csv")
    expect(row).to_contain_text("2025-10-28 00:00 – 2025-11-05 00:25")
    expect(row).to_contain_text("done")
