"""Clinic administration: the clinic's users, settings and audit trail (clinic admins only)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from clinic_portal.admin.audit import AuditQuery, clinic_users, export_audit_csv, search_audit
from clinic_portal.admin.forms import ClinicSettingsForm, EditUserForm, NewUserForm
from clinic_portal.auth.access import Permission, requires
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.auth.services import (
    AccountError,
    create_user,
    update_clinic_settings,
    update_user,
)
from clinic_portal.db import get_session
from clinic_portal.sharing.services import ensure_share_code, regenerate_share_code
from clinic_portal.web.loading import current_clinic

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _user_in_clinic(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None or user.clinic_id != current_user.clinic_id or user.role == Role.PATIENT:
        abort(404)
    return user


@bp.route("/users")
@requires(Permission.MANAGE_USERS)
def users() -> str:
    clinic = current_clinic()
    members = clinic_users(get_session(), clinic_id=clinic.id or 0)
    return render_template("admin/users.html", users=members, clinic=clinic)


@bp.route("/users/new", methods=["GET", "POST"])
@requires(Permission.MANAGE_USERS)
def new_user() -> str | Response | tuple[str, int]:
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            create_user(
                get_session(),
                actor=current_user,
                clinic=current_clinic(),
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
    clinic = current_clinic()
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
    code = ensure_share_code(get_session(), clinic)
    return render_template("admin/clinic.html", form=form, clinic=clinic, share_code=code), status


@bp.route("/clinic/share-code", methods=["POST"])
@requires(Permission.MANAGE_USERS)
def new_share_code() -> Response:
    """Replace the clinic's share code (e.g. after it was posted somewhere it should not be)."""
    regenerate_share_code(get_session(), actor=current_user, clinic=current_clinic())
    flash("The clinic has a new share code; the old one no longer works.")
    return redirect(url_for("admin.clinic_settings"))


@bp.route("/audit")
@requires(Permission.MANAGE_USERS)
def audit() -> str:
    """Search the clinic's audit trail (read only: no route changes or deletes an entry)."""
    clinic = current_clinic()
    query = AuditQuery.from_args(request.args, time_zone=clinic.time_zone)
    result = search_audit(get_session(), clinic_id=clinic.id or 0, query=query)
    return render_template("admin/audit.html", clinic=clinic, query=query, result=result)


@bp.route("/audit.csv")
@requires(Permission.MANAGE_USERS)
def audit_csv() -> Response:
    """The audit entries matching the page's filters as a CSV download (itself audited)."""
    clinic = current_clinic()
    query = AuditQuery.from_args(request.args, time_zone=clinic.time_zone)
    text = export_audit_csv(
        get_session(),
        actor=current_user,
        clinic_id=clinic.id or 0,
        query=query,
        filters=request.args.to_dict(),
    )
    response = Response(text, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    return response
