"""Clinic administration: the clinic's users, settings and audit trail (clinic admins only)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlmodel import select
from werkzeug.wrappers import Response

from clinic_portal.auth.access import Permission, requires
from clinic_portal.auth.audit import AuditQuery, export_audit_csv, search_audit
from clinic_portal.auth.forms import ClinicSettingsForm, EditUserForm, NewUserForm
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.auth.services import (
    AccountError,
    create_user,
    record_audit,
    update_clinic_settings,
    update_user,
)
from clinic_portal.db import get_session

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _clinic() -> Clinic:
    clinic = get_session().get(Clinic, current_user.clinic_id)
    if clinic is None:
        abort(404)
    return clinic


def _user_in_clinic(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None or user.clinic_id != current_user.clinic_id or user.role == Role.PATIENT:
        abort(404)
    return user


@bp.route("/users")
@requires(Permission.MANAGE_USERS)
def users() -> str:
    members = get_session().exec(
        select(User).where(User.clinic_id == current_user.clinic_id).order_by(User.name)
    )
    return render_template("admin/users.html", users=list(members), clinic=_clinic())


@bp.route("/users/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_USERS)
def new_user() -> str | Response | tuple[str, int]:
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            create_user(
                get_session(),
                actor=current_user,
                clinic=_clinic(),
                email=form.email.data or "",
                name=form.name.data or "",
                role=Role(form.role.data),
                password=form.password.data or "",
            )
        except AccountError as exc:
            return render_template("admin/user_form.html", form=form, error=str(exc)), 400
        flash(f"Account created for {form.email.data}.")
        return redirect(url_for("admin.users"))
    status = 400 if form.errors else 200
    return render_template("admin/user_form.html", form=form, error=None), status


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@requires(Permission.MANAGE_USERS)
def edit_user(user_id: int) -> str | Response | tuple[str, int]:
    user = _user_in_clinic(user_id)
    form = EditUserForm(obj=user)
    if form.validate_on_submit():
        try:
            update_user(
                get_session(),
                actor=current_user,
                user=user,
                name=form.name.data or "",
                role=Role(form.role.data),
                active=bool(form.active.data),
                new_password=form.new_password.data or None,
            )
        except AccountError as exc:
            return render_template(
                "admin/user_form.html", form=form, user=user, error=str(exc)
            ), 400
        flash(f"Saved {user.email}.")
        return redirect(url_for("admin.users"))
    status = 400 if form.errors else 200
    return render_template("admin/user_form.html", form=form, user=user, error=None), status


@bp.route("/clinic", methods=["GET", "POST"])
@requires(Permission.MANAGE_USERS)
def clinic_settings() -> str | Response | tuple[str, int]:
    clinic = _clinic()
    form = ClinicSettingsForm(obj=clinic)
    if form.validate_on_submit():
        try:
            update_clinic_settings(
                get_session(),
                actor=current_user,
                clinic=clinic,
                name=form.name.data or "",
                time_zone=(form.time_zone.data or "").strip(),
                mrn_required=bool(form.mrn_required.data),
                mrn_unique=bool(form.mrn_unique.data),
                staff_two_factor=bool(form.staff_two_factor.data),
                share_terms=form.share_terms.data or "",
            )
        except AccountError as exc:
            form.time_zone.errors = [str(exc)]
            return _clinic_page(form, clinic, 400)
        flash("Clinic settings saved.")
        return redirect(url_for("admin.clinic_settings"))
    return _clinic_page(form, clinic, 400 if form.errors else 200)


def _clinic_page(form: ClinicSettingsForm, clinic: Clinic, status: int) -> tuple[str, int]:
    from clinic_portal.patients.shares import ensure_share_code

    code = ensure_share_code(get_session(), clinic)
    return render_template("admin/clinic.html", form=form, clinic=clinic, share_code=code), status


@bp.route("/clinic/share-code", methods=["POST"])
@requires(Permission.MANAGE_USERS)
def new_share_code() -> Response:
    """Replace the clinic's share code (e.g. after it was posted somewhere it should not be)."""
    from clinic_portal.patients.shares import regenerate_share_code

    regenerate_share_code(get_session(), actor=current_user, clinic=_clinic())
    flash("The clinic has a new share code; the old one no longer works.")
    return redirect(url_for("admin.clinic_settings"))


@bp.route("/audit")
@requires(Permission.MANAGE_USERS)
def audit() -> str:
    """Search the clinic's audit trail (read only: no route changes or deletes an entry)."""
    clinic = _clinic()
    query = AuditQuery.from_args(request.args, time_zone=clinic.time_zone)
    result = search_audit(get_session(), clinic_id=clinic.id or 0, query=query)
    return render_template("admin/audit.html", clinic=clinic, query=query, result=result)


@bp.route("/audit.csv")
@requires(Permission.MANAGE_USERS)
def audit_csv() -> Response:
    """The audit entries matching the page's filters as a CSV download (itself audited)."""
    clinic = _clinic()
    query = AuditQuery.from_args(request.args, time_zone=clinic.time_zone)
    db = get_session()
    text, count = export_audit_csv(db, clinic_id=clinic.id or 0, query=query)
    record_audit(
        db,
        actor=current_user,
        action="audit.export",
        detail={"entries": count, "filters": request.args.to_dict()},
    )
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
