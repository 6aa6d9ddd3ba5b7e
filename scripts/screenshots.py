"""Screenshots of the main pages for the README, taken from a running demo portal.

Usage: python scripts/screenshots.py [BASE_URL] (default http://127.0.0.1:5000); needs Debian's
chromium and a portal seeded with `flask demo seed`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
PASSWORD = "demo-password-2026"  # noqa: S105 - the documented demo login


def main(base: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(base + "/login")
        page.screenshot(path=OUT / "login.png")
        page.get_by_label("E-mail").fill("clinician@demo.clinic")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector("#roster-results")
        page.screenshot(path=OUT / "roster.png", full_page=True)
        page.goto(base + "/patients/?sort=tir")
        page.wait_for_selector("#roster-results")
        page.screenshot(path=OUT / "roster-by-tir.png")
        page.locator("#roster-results tbody a").first.click()
        page.wait_for_url(re.compile(r"/patients/\d+$"))
        page.wait_for_selector("svg")
        page.screenshot(path=OUT / "patient.png", full_page=True)
        page.goto(base + "/upload")
        page.screenshot(path=OUT / "upload.png")
        page.goto(base + "/uploads/inbox")
        page.screenshot(path=OUT / "inbox.png")
        browser.close()
    print(f"screenshots written to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:5000")
