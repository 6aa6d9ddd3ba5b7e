"""Signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from clinic_portal.auth.access import Permission, client_address, requires
from clinic_portal.auth.forms import LoginForm
from clinic_portal.auth.services import AccountError, authenticate, record_audit
from clinic_portal.db import get_session, keep_changes_on_error

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def login() -> str | Response:
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        db = get_session()
        try:
            user = authenticate(
                db, form.email.data or "", form.password.data or "", ip_address=client_address()
            )
        except AccountError as exc:
            error = str(exc)
        else:
            session.clear()
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("main.home"))
    status = 401 if error else 200
    if error:
        keep_changes_on_error()  # the audit entry and the failure counter must stay
    return render_template("auth/login.html", form=form, error=error), status  # type: ignore[return-value]


@bp.route("/logout", methods=["POST"])
@requires(Permission.SIGNED_IN)
def logout() -> Response:
    record_audit(get_session(), actor=current_user, action="logout", ip_address=client_address())
    logout_user()
    session.clear()
    flash("You are signed out.")
    response = redirect(url_for("auth.login"))
    # Clear-Site-Data removes cached pages and storage on shared clinic computers.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response
