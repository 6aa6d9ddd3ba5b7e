"""Share requests: the clinic's sharing page of a patient, and the patient's own share pages."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from clinic_portal import timeutil
from clinic_portal.auth.access import Permission, client_address, has_permission, requires
from clinic_portal.auth.forms import ConsentForm, ShareCodeForm, ShareRequestForm
from clinic_portal.auth.models import Clinic, ShareRequest
from clinic_portal.auth.services import (
    LoginPolicy,
    TooManyAttempts,
    check_rate_limit,
    record_audit,
)
from clinic_portal.db import get_session, keep_changes_on_error
from clinic_portal.patients.models import Patient
from clinic_portal.patients.services import patient_in_clinic
from clinic_portal.patients.shares import (
    CodeShareDetails,
    ShareError,
    accept_share,
    adopt_clinic_links,
    cancel_share,
    clinic_for_code,
    data_access,
    decline_share,
    request_share,
    resend_share,
    revoke_share,
    share_by_code,
    shares_of_account,
    shares_of_patient,
)

bp = Blueprint("shares", __name__, url_prefix="/patients")
patient_bp = Blueprint("my_shares", __name__, url_prefix="/me/shares")
RENDER = tuple[str, int]


def _policy() -> LoginPolicy:
    return LoginPolicy.from_config(current_app.config)


# --- the clinic's side -----------------------------------------------------------------------
def _roster_patient(patient_id: int) -> Patient:
    # The sharing page shows names and share states only, so it stays open after a revocation.
    patient = patient_in_clinic(get_session(), current_user.clinic_id, patient_id)
    if patient is None:
        abort(404)
    return patient


def _clinic_share(patient: Patient, share_id: int) -> ShareRequest:
    share = get_session().get(ShareRequest, share_id)
    if share is None or share.patient_id != patient.id or share.clinic_id != patient.clinic_id:
        abort(404)
    return share


def _sharing_page(patient: Patient, form: ShareRequestForm, error: str | None, status: int):
    db = get_session()
    return render_template(
        "shares/clinic.html",
        patient=patient,
        shares=shares_of_patient(db, patient),
        access=data_access(db, patient),
        form=form,
        error=error,
        now=timeutil.utcnow(),
        can_edit=has_permission(current_user, Permission.EDIT_PATIENTS),
    ), status


@bp.route("/<int:patient_id>/sharing")
@requires(Permission.VIEW_ROSTER)
def sharing(patient_id: int) -> RENDER:
    """The patient's share requests with their states and times."""
    return _sharing_page(_roster_patient(patient_id), ShareRequestForm(), None, 200)


@bp.route("/<int:patient_id>/sharing/request", methods=["POST"])
@requires(Permission.EDIT_PATIENTS)
def new_request(patient_id: int) -> Response | RENDER:
    patient = _roster_patient(patient_id)
    form = ShareRequestForm()
    if not form.validate_on_submit():
        return _sharing_page(patient, form, None, 400)
    db = get_session()
    clinic = db.get(Clinic, patient.clinic_id)
    assert clinic is not None
    try:
        share = request_share(
            db,
            actor=current_user,
            clinic=clinic,
            patient=patient,
            who=form.who.data or "",
            policy=_policy(),
        )
    except ShareError as exc:
        return _sharing_page(patient, form, str(exc), 409)
    kind = "invitation" if share.account_id is None else "request"
    flash(f"The {kind} was sent to {form.who.data}.")
    return redirect(url_for("shares.sharing", patient_id=patient.id))


@bp.route("/<int:patient_id>/sharing/<int:share_id>/resend", methods=["POST"])
@requires(Permission.EDIT_PATIENTS)
def resend(patient_id: int, share_id: int) -> Response | RENDER:
    patient = _roster_patient(patient_id)
    share = _clinic_share(patient, share_id)
    try:
        resend_share(get_session(), actor=current_user, share=share, policy=_policy())
    except ShareError as exc:
        return _sharing_page(patient, ShareRequestForm(), str(exc), 409)
    flash("The request was sent again.")
    return redirect(url_for("shares.sharing", patient_id=patient.id))


@bp.route("/<int:patient_id>/sharing/<int:share_id>/cancel", methods=["POST"])
@requires(Permission.EDIT_PATIENTS)
def cancel(patient_id: int, share_id: int) -> Response | RENDER:
    patient = _roster_patient(patient_id)
    share = _clinic_share(patient, share_id)
    try:
        cancel_share(get_session(), actor=current_user, share=share)
    except ShareError as exc:
        return _sharing_page(patient, ShareRequestForm(), str(exc), 409)
    flash("The request was cancelled.")
    return redirect(url_for("shares.sharing", patient_id=patient.id))


# --- the patient's side ----------------------------------------------------------------------
def _own_share(share_id: int) -> tuple[ShareRequest, Clinic]:
    db = get_session()
    share = db.get(ShareRequest, share_id)
    # Another account's request answers 404, exactly like an unknown id.
    if share is None or share.account_id != current_user.id:
        abort(404)
    clinic = db.get(Clinic, share.clinic_id)
    assert clinic is not None
    return share, clinic


@patient_bp.route("/")
@requires(Permission.PATIENT_SELF)
def mine() -> str:
    """Every clinic that asked for, has or had the patient's data."""
    db = get_session()
    adopt_clinic_links(db, current_user)
    return render_template(
        "shares/mine.html", shares=shares_of_account(db, current_user), now=timeutil.utcnow()
    )


def _share_page(share: ShareRequest, clinic: Clinic, error: str | None, status: int) -> RENDER:
    return render_template(
        "shares/respond.html",
        share=share,
        clinic=clinic,
        form=ConsentForm(),
        error=error,
        now=timeutil.utcnow(),
    ), status


@patient_bp.route("/<int:share_id>")
@requires(Permission.PATIENT_SELF)
def detail(share_id: int) -> RENDER:
    share, clinic = _own_share(share_id)
    return _share_page(share, clinic, None, 200)


@patient_bp.route("/<int:share_id>/accept", methods=["POST"])
@requires(Permission.PATIENT_SELF)
def accept(share_id: int) -> Response | RENDER:
    share, clinic = _own_share(share_id)
    form = ConsentForm()
    try:
        accept_share(
            get_session(), account=current_user, share=share, consent=bool(form.consent.data)
        )
    except ShareError as exc:
        return _share_page(share, clinic, str(exc), 409)
    flash(f"You now share your data with {clinic.name}. You can stop at any time.")
    return redirect(url_for("my_shares.mine"))


@patient_bp.route("/<int:share_id>/decline", methods=["POST"])
@requires(Permission.PATIENT_SELF)
def decline(share_id: int) -> Response | RENDER:
    share, clinic = _own_share(share_id)
    try:
        decline_share(get_session(), account=current_user, share=share)
    except ShareError as exc:
        return _share_page(share, clinic, str(exc), 409)
    flash(f"You declined {clinic.name}'s request.")
    return redirect(url_for("my_shares.mine"))


@patient_bp.route("/<int:share_id>/revoke", methods=["POST"])
@requires(Permission.PATIENT_SELF)
def revoke(share_id: int) -> Response | RENDER:
    share, clinic = _own_share(share_id)
    try:
        revoke_share(get_session(), account=current_user, share=share)
    except ShareError as exc:
        return _share_page(share, clinic, str(exc), 409)
    flash(f"{clinic.name} can no longer see your data.")
    return redirect(url_for("my_shares.mine"))


@patient_bp.route("/code", methods=["GET", "POST"])
@requires(Permission.PATIENT_SELF)
def by_code() -> Response | RENDER:
    """Share with a clinic by entering its share code: find the clinic, then consent."""
    form = ShareCodeForm()
    clinic: Clinic | None = None
    error, status = None, 200
    if form.validate_on_submit():
        db = get_session()
        try:
            # Unknown codes count against the address like failed sign-ins: no code guessing.
            check_rate_limit(
                db, client_address(), policy=_policy(), action="share.code_rate_limited"
            )
        except TooManyAttempts as exc:
            keep_changes_on_error()
            return render_template("shares/code.html", form=form, clinic=None, error=str(exc)), 429
        clinic = clinic_for_code(db, form.code.data or "")
        if clinic is None:
            record_audit(db, actor=current_user, action="share.code_unknown")
            keep_changes_on_error()
            error, status = "No clinic has this share code. Check it with your clinic.", 400
        elif form.step.data == "confirm":
            try:
                share_by_code(
                    db,
                    account=current_user,
                    clinic=clinic,
                    details=CodeShareDetails(
                        first_name=form.first_name.data or "",
                        last_name=form.last_name.data or "",
                        date_of_birth=form.date_of_birth.data or timeutil.utcnow().date(),
                    ),
                    consent=bool(form.consent.data),
                )
            except ShareError as exc:
                error, status = str(exc), 409
            else:
                flash(f"You now share your data with {clinic.name}. You can stop at any time.")
                return redirect(url_for("my_shares.mine"))
        else:
            form.step.data = "confirm"
            if not form.first_name.data:
                first, _, last = (current_user.name or "").rpartition(" ")
                form.first_name.data, form.last_name.data = first or last, last if first else ""
    elif form.errors:
        status = 400
    return render_template("shares/code.html", form=form, clinic=clinic, error=error), status
