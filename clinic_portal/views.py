"""The landing page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, render_template, url_for
from flask_login import current_user
from sqlmodel import col, select
from werkzeug.wrappers import Response

from clinic_portal import timeutil
from clinic_portal.auth.access import Permission, requires
from clinic_portal.auth.models import Clinic, Role, ShareState
from clinic_portal.auth.services import record_audit
from clinic_portal.db import get_session
from clinic_portal.patients.models import Patient
from clinic_portal.patients.services import patient_overview
from clinic_portal.patients.shares import shares_of_account

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
    """A patient's home: their numbers (TIR, mean, GMI), AGP, devices and uploads at each clinic
    they share with, and the share requests waiting for an answer."""
    db = get_session()
    # Only records linked to this account: the link exists exactly while the share is live.
    records = db.exec(
        select(Patient).where(Patient.account_id == current_user.id).order_by(col(Patient.id))
    )
    overviews = [patient_overview(db, p, clinical=True) for p in records]
    for overview in overviews:
        record_audit(
            db,
            actor=current_user,
            action="patient.view",
            clinic_id=overview.patient.clinic_id,
            patient_id=overview.patient.id,
            detail={"by": "patient"},
        )
    now = timeutil.utcnow()
    waiting = [
        (share, clinic)
        for share, clinic in shares_of_account(db, current_user)
        if share.state_at(now) == ShareState.PENDING
    ]
    clinic_ids = [o.patient.clinic_id for o in overviews]
    clinics = {c.id: c for c in db.exec(select(Clinic).where(col(Clinic.id).in_(clinic_ids)))}
    return render_template("me.html", overviews=overviews, waiting=waiting, clinics=clinics)


@bp.route("/healthz")
@requires(Permission.PUBLIC)
def healthz() -> Response:
    get_session().exec(select(1)).one()
    return jsonify(status="ok")
