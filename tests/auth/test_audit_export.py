"""The audit trail as CSV: the same filters as the page, formula-safe cells, itself audited."""

from __future__ import annotations

import csv
import io

from sqlmodel import select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Role
from clinic_portal.csv_safety import csv_text, neutralize_csv_cell
from tests.conftest import login


def test_export_is_filtered_neutralised_and_audited(
    app, db, make_clinic, make_user, make_patient
) -> None:
    clinic = make_clinic()
    other = make_clinic("Other clinic")
    hostile = make_patient(clinic, first_name="Ada", last_name='=HYPERLINK("http://x")')
    make_patient(other, last_name="Elsewhere")
    doctor = make_user(clinic, Role.CLINICIAN, email="doc@example.org")
    doctor_client = app.test_client()
    login(doctor_client, doctor)
    assert doctor_client.get(f"/patients/{hostile.id}").status_code == 200

    admin_client = app.test_client()
    login(admin_client, make_user(clinic, Role.CLINIC_ADMIN))
    response = admin_client.get("/admin/audit.csv?action=patient.view")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:3] == ["time (UTC)", "action", "actor e-mail"]
    assert [r[1] for r in rows[1:]] == ["patient.view"]  # the filter applies; other clinics absent
    assert rows[1][2] == "doc@example.org"
    assert rows[1][5] == '\'=HYPERLINK("http://x"), Ada'  # shown as text, never run
    export = db.exec(select(AuditEvent).where(AuditEvent.action == "audit.export")).one()
    assert export.detail["entries"] == 1


def test_csv_cells_that_would_run_as_formulas_are_neutralised() -> None:
    text = csv_text(["a", "b", "c"], [["=1+1", -2.5, "@SUM(A1)"], ["+x", "-1.5", "plain"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[1] == ["'=1+1", "-2.5", "'@SUM(A1)"]
    assert rows[2] == ["'+x", "-1.5", "plain"]
    assert neutralize_csv_cell("\t=cmd") == "'\t=cmd"
