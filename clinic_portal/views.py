"""The landing page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlmodel import select
from werkzeug.wrappers import Response

from clinic_portal.auth.access import Permission, requires
from clinic_portal.auth.models import Role
from clinic_portal.db import get_session
from clinic_portal.patients.models import Patient
from clinic_portal.patients.services import patient_overview

bp = Blueprint("main", __name__)


@bp.route("/")
@requires(Permission.PUBLIC)
def home() -> Response:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.role == Role.PATIENT:
        return redirect(url_for("main.my_data"))
    return redirect(url_for("patients.roster"))


@bp.route("/me")
@requires(Permission.PATIENT_SELF)
def my_data() -> str:
    """A patient's own page: their records at each clinic, devices and uploads."""
    db = get_session()
    records = db.exec(select(Patient).where(Patient.account_id == current_user.id))
    overviews = [patient_overview(db, p) for p in records]
    return render_template("me.html", overviews=overviews)


@bp.route("/healthz")
@requires(Permission.PUBLIC)
def healthz() -> Response:
    get_session().exec(select(1)).one()
    return jsonify(status="ok")
