"""The patient's own home page (``/me``): their numbers at each clinic they share with."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from clinic_portal.auth.access import Permission, requires
from clinic_portal.db import get_session
from clinic_portal.patients.services import patient_home

bp = Blueprint("me", __name__)


@bp.route("/me")
@requires(Permission.PATIENT_SELF)
def my_data() -> str:
    """A patient's home: their numbers (TIR, mean, GMI), AGP, devices and uploads at each clinic
    they share with, and the share requests waiting for an answer."""
    home = patient_home(get_session(), account=current_user)
    return render_template(
        "me.html", overviews=home.overviews, waiting=home.waiting, clinics=home.clinics
    )
