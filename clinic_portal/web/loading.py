"""Loading what a request is about, with the clinic-isolation and sharing checks.

Every route that shows or changes a patient's data loads the patient through
:func:`clinic_patient_or_404`, so a revoked share closes all of them at once; another clinic's
ids answer 404 exactly as unknown ones do, so ids cannot be probed.
"""

from __future__ import annotations

from flask import abort, make_response, render_template
from flask_login import current_user

from clinic_portal.auth.models import Clinic
from clinic_portal.db import get_session
from clinic_portal.patients.models import Patient
from clinic_portal.patients.services import patient_in_clinic
from clinic_portal.sharing.services import data_access


def current_clinic() -> Clinic:
    """The signed-in staff member's clinic (404 for an account without one)."""
    clinic = get_session().get(Clinic, current_user.clinic_id) if current_user.clinic_id else None
    if clinic is None:
        abort(404)
    return clinic


def roster_patient_or_404(patient_id: int) -> Patient:
    """A patient on the signed-in user's clinic roster, whatever its share state (404
    otherwise). Only for pages that show names and share states, never data."""
    patient = patient_in_clinic(get_session(), current_user.clinic_id, patient_id)
    if patient is None:
        abort(404)
    return patient


def clinic_patient_or_404(patient_id: int) -> Patient:
    """The patient, if it is on the signed-in user's clinic roster (404 otherwise) and its data
    is open to the clinic (403 otherwise: the patient stopped sharing, docs/sharing.md)."""
    patient = roster_patient_or_404(patient_id)
    access = data_access(get_session(), patient)
    if not access.open:
        page = render_template("shares/closed.html", patient=patient, access=access)
        abort(make_response(page, 403))
    return patient
