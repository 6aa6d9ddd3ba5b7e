"""Share requests: the clinic's sharing page of a patient, and the patient's own share pages."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from clinic_portal import timeutil
from clinic_portal.auth.access import Permission, client_address, has_permission, requires
from clinic_portal.auth.models import Clinic
from clinic_portal.auth.services import LoginPolicy, TooManyAttempts
from clinic_portal.db import get_session, keep_changes_on_error
from clinic_portal.patients.models import Patient
from clinic_portal.sharing.forms import ConsentForm, ShareCodeForm, ShareRequestForm
from clinic_portal.sharing.models import ShareRequest
from clinic_portal.sharing.services import (
    CodeShareDetails,
    ShareError,
    accept_share,
    cancel_share,
    decline_share,
    find_clinic_by_code,
    my_shares,
    patient_sharing,
    request_share,
    resend_share,
    revoke_share,
    share_by_code,
)
from clinic_portal.web.loading import roster_patient_or_404

bp = Blueprint("shares", __name__, url_prefix="/patients")
patient_bp = Blueprint("my_shares", __name__, url_prefix="/me/shares")
RENDER = tuple[str, int]


def _policy() -> LoginPolicy:
    return LoginPolicy.from_config(current_app.config)


# --- the clinic's side -----------------------------------------------------------------------
# The sharing page shows names and share states only, so it stays open after a revocation
# (roster_patient_or_404, not clinic_patient_or_404).


def _clinic_share(patient: Patient, share_id: int) -> ShareRequest:
    share = get_session().get(ShareRequest, share_id)
    if share is None or share.patient_id != patient.id or share.clinic_id != patient.clinic_id:
        abort(404)
    return share


def _sharing_page(patient: Patient, form: ShareRequestForm, error: str | None, status: int):
    sharing = patient_sharing(get_session(), patient)
    return render_template(
        "shares/clinic.html",
        patient=patient,
        shares=sharing.shares,
        access=sharing.access,
        form=form,
        error=error,
        now=timeutil.utcnow(),
        can_edit=has_permission(current_user, Permission.EDIT_PATIENTS),
    ), status


@bp.route("/<int:patient_id>/sharing")
@requires(Permission.VIEW_ROSTER)
def sharing(patient_id: int) -> RENDER:
    """The patient's share requests with their states and times."""
    return _sharing_page(roster_patient_or_404(patient_id), ShareRequestForm(), None, 200)


@bp.route("/<int:patient_id>/sharing/request", methods=["POST"])
@requires(Permission.EDIT_PATIENTS)
def new_request(patient_id: int) -> Response | RENDER:
    patient = roster_patient_or_404(patient_id)
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
    patient = roster_patient_or_404(patient_id)
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
    patient = roster_patient_or_404(patient_id)
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
    return render_template(
        "shares/mine.html", shares=my_shares(get_session(), current_user), now=timeutil.utcnow()
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
    if not form.validate_on_submit():
        return _code_page(form, None, None, 400 if form.errors else 200)
    db = get_session()
    try:
        clinic = find_clinic_by_code(
            db,
            account=current_user,
            code=form.code.data or "",
            ip_address=client_address(),
            policy=_policy(),
        )
    except TooManyAttempts as exc:
        keep_changes_on_error()
        return _code_page(form, None, str(exc), 429)
    except ShareError as exc:
        keep_changes_on_error()  # the unknown code counts against the address
        return _code_page(form, None, str(exc), 400)
    if form.step.data != "confirm":
        # First step: the clinic is found; ask for the details and the consent.
        form.step.data = "confirm"
        if not form.first_name.data:
            first, _, last = (current_user.name or "").rpartition(" ")
            form.first_name.data, form.last_name.data = first or last, last if first else ""
        return _code_page(form, clinic, None, 200)
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
        return _code_page(form, clinic, str(exc), 409)
    flash(f"You now share your data with {clinic.name}. You can stop at any time.")
    return redirect(url_for("my_shares.mine"))


def _code_page(
    form: ShareCodeForm, clinic: Clinic | None, error: str | None, status: int
) -> RENDER:
    return render_template("shares/code.html", form=form, clinic=clinic, error=error), status
