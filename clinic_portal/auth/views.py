"""Signing in (with the e-mailed code), signing up, password reset and the clinic kiosk.

The kiosk login (``/kiosk/login``) is for the patient computer in the clinic: the session ends
after ``KIOSK_IDLE_SECONDS`` without activity (a countdown shows it, ``static/js/kiosk.js``),
never outlives the browser, and signing out returns to the kiosk login with the site's cache
and storage cleared.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from werkzeug.wrappers import Response

from clinic_portal import timeutil
from clinic_portal.audit.trail import failures_from_address, record_audit
from clinic_portal.auth import settings
from clinic_portal.auth.access import Permission, client_address, requires
from clinic_portal.auth.forms import (
    CodeForm,
    ForgotPasswordForm,
    LoginForm,
    RegisterForm,
    ResetPasswordForm,
)
from clinic_portal.auth.models import User
from clinic_portal.auth.services import (
    AccountError,
    AccountLocked,
    LoginPolicy,
    TooManyAttempts,
    authenticate,
    complete_login,
    needs_second_factor,
)
from clinic_portal.auth.verification import (
    CodeError,
    can_send_code,
    check_sign_in_code,
    register_patient,
    request_password_reset,
    send_sign_in_code,
    valid_reset_token,
)
from clinic_portal.auth.verification import reset_password as set_password_from_link
from clinic_portal.db import get_session, keep_changes_on_error
from clinic_portal.extensions import htmx
from clinic_portal.mail import MailError
from clinic_portal.signals import account_registered, look_up_invitation

bp = Blueprint("auth", __name__)

PENDING = "pending_login"  # session key: who passed the password step and awaits the code
RENDER = tuple[str, int]


@bp.record_once
def _settings(state: Any) -> None:
    settings.apply_defaults(state.app.config)


def policy() -> LoginPolicy:
    """The sign-in rules of the running app."""
    return LoginPolicy.from_config(current_app.config)


def _seconds() -> int:
    """Now as epoch seconds (through timeutil, so tests can move the clock)."""
    return int(timeutil.utcnow().timestamp())


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


@bp.app_errorhandler(MailError)
def _mail_failed(exc: MailError) -> RENDER:
    return render_template("error.html", status=503, title="Mail not sent", message=str(exc)), 503


# --- signing in ------------------------------------------------------------------------------
def _finish(user: User, *, kiosk: bool, next_url: str | None) -> Response:
    """Start the signed-in session (after the password and, when due, the code)."""
    session.clear()
    login_user(user, remember=False)
    complete_login(get_session(), user, ip_address=client_address(), kiosk=kiosk)
    if kiosk:
        # The session cookie is not permanent (ends with the browser) and idles out quickly.
        session.permanent = False
        session["kiosk"] = True
        session["seen"] = _seconds()
    return redirect(next_url or url_for("main.home"))


def _login(kiosk: bool) -> Response | RENDER:
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = LoginForm()
    error, status = None, 200
    next_url = safe_next(request.args.get("next"))
    if form.validate_on_submit():
        db = get_session()
        try:
            user = authenticate(
                db,
                form.email.data or "",
                form.password.data or "",
                ip_address=client_address(),
                policy=policy(),
            )
            if not needs_second_factor(db, user):
                return _finish(user, kiosk=kiosk, next_url=next_url)
            session.clear()
            session[PENDING] = {
                "user": user.id,
                "version": user.session_version,
                "kiosk": kiosk,
                "next": next_url,
            }
            if can_send_code(db, user, policy=policy()):
                send_sign_in_code(db, user, policy=policy())
            return redirect(url_for("auth.verify"))
        except TooManyAttempts as exc:
            error, status = str(exc), 429
        except AccountLocked as exc:
            error, status = str(exc), 423
        except AccountError as exc:
            error, status = str(exc), 401
        keep_changes_on_error()  # the audit entry and the failure counter must stay
    template = "auth/login.html"
    return render_template(template, form=form, error=error, kiosk=kiosk), status


@bp.route("/login", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def login() -> Response | RENDER:
    return _login(kiosk=False)


@bp.route("/kiosk/login", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def kiosk_login() -> Response | RENDER:
    """The sign-in page of the clinic's shared patient computer."""
    return _login(kiosk=True)


def _pending_user() -> tuple[User, dict[str, Any]] | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    user = get_session().get(User, pending.get("user"))
    if user is None or not user.active or user.session_version != pending.get("version"):
        session.pop(PENDING, None)
        return None
    return user, pending


@bp.route("/login/verify", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def verify() -> Response | RENDER:
    """Second step: the 6-digit code from the e-mail."""
    found = _pending_user()
    if found is None:
        flash("Please sign in first.")
        return redirect(url_for("auth.login"))
    user, pending = found
    form = CodeForm()
    error, status = None, 200
    if form.validate_on_submit():
        db = get_session()
        try:
            check_sign_in_code(
                db, user, form.code.data or "", policy=policy(), ip_address=client_address()
            )
        except TooManyAttempts as exc:
            error, status = str(exc), 429
        except AccountLocked as exc:
            session.pop(PENDING, None)
            error, status = str(exc), 423
        except CodeError as exc:
            error, status = str(exc), 400
        else:
            return _finish(user, kiosk=bool(pending.get("kiosk")), next_url=pending.get("next"))
        keep_changes_on_error()
    elif form.errors:
        status = 400
    return render_template("auth/verify.html", form=form, error=error, email=user.email), status


@bp.route("/login/verify/resend", methods=["POST"])
@requires(Permission.PUBLIC)
def resend_code() -> Response:
    found = _pending_user()
    if found is None:
        return redirect(url_for("auth.login"))
    user, _pending = found
    db = get_session()
    if can_send_code(db, user, policy=policy()):
        send_sign_in_code(db, user, policy=policy())
        flash(f"A new code is on its way to {user.email}.")
    else:
        flash("A code was sent less than a minute ago: please check your mail first.")
    return redirect(url_for("auth.verify"))


@bp.route("/logout", methods=["POST"])
@requires(Permission.SIGNED_IN)
def logout() -> Response:
    kiosk = bool(session.get("kiosk"))
    record_audit(get_session(), actor=current_user, action="logout", ip_address=client_address())
    logout_user()
    session.clear()
    flash("You are signed out.")
    response = redirect(url_for("auth.kiosk_login" if kiosk else "auth.login"))
    # Clear-Site-Data removes cached pages and storage on shared clinic computers.
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


# --- kiosk: idle timeout ---------------------------------------------------------------------
@bp.before_app_request
def _kiosk_idle_timeout() -> Response | None:
    """End a kiosk session after ``KIOSK_IDLE_SECONDS`` without a request (server-side, so a
    closed laptop lid or a blocked script cannot keep it open)."""
    if not session.get("kiosk") or request.endpoint == "static":
        return None
    if not current_user.is_authenticated:
        return None
    now = _seconds()
    idle = int(current_app.config["KIOSK_IDLE_SECONDS"])
    if now - int(session.get("seen", now)) <= idle:
        session["seen"] = now
        return None
    record_audit(get_session(), actor=current_user, action="logout.idle")
    logout_user()
    session.clear()
    flash("You were signed out because the computer was not used for a while.")
    target = url_for("auth.kiosk_login")
    if htmx:
        response = jsonify(error="signed out")
        response.headers["HX-Redirect"] = target
        response.headers["Clear-Site-Data"] = '"cache", "storage"'
        return response
    redirect_response = redirect(target)
    redirect_response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return redirect_response


@bp.route("/kiosk/ping", methods=["POST"])
@requires(Permission.SIGNED_IN)
def kiosk_ping() -> tuple[str, int]:
    """Activity on a kiosk page (typing, touching) keeps the session alive."""
    return "", 204


# --- signing up ------------------------------------------------------------------------------
@bp.route("/register", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def register() -> Response | RENDER:
    """A patient creates an account, from an invitation link or on their own."""
    if current_user.is_authenticated:
        return redirect(url_for("main.home"))
    form = RegisterForm()
    token = request.args.get("invite") or form.invite.data or ""
    db = get_session()
    invitation = look_up_invitation(db, token) if token else None
    if request.method == "GET" and invitation is not None:
        form.invite.data = token
        form.email.data = invitation.email
    error, status = None, 200
    if form.validate_on_submit():
        ip = client_address()
        since = timeutil.utcnow() - policy().rate_window
        if ip and (
            failures_from_address(db, ip, since=since, actions=("account.register",))
            >= policy().rate_limit
        ):
            error, status = "Too many new accounts from this network address. Try later.", 429
        else:
            try:
                user = register_patient(
                    db,
                    email=form.email.data or "",
                    username=form.username.data,
                    name=form.name.data or "",
                    password=form.password.data or "",
                )
            except AccountError as exc:
                error, status = str(exc), 400
            else:
                account_registered.send(
                    db, account=user, invitation=token if invitation is not None else None
                )
                session.clear()
                session[PENDING] = {
                    "user": user.id,
                    "version": user.session_version,
                    "kiosk": False,
                    "next": None,
                }
                send_sign_in_code(db, user, policy=policy())
                flash(f"Account created. We sent a 6-digit code to {user.email}.")
                return redirect(url_for("auth.verify"))
    elif form.errors:
        status = 400
    return render_template(
        "auth/register.html",
        form=form,
        error=error,
        invitation=invitation,
        invite_invalid=bool(token) and invitation is None,
    ), status


# --- password reset --------------------------------------------------------------------------
@bp.route("/password/forgot", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def forgot_password() -> Response | RENDER:
    form = ForgotPasswordForm()
    error, status = None, 200
    if form.validate_on_submit():
        try:
            request_password_reset(
                get_session(), form.email.data or "", policy=policy(), ip_address=client_address()
            )
        except TooManyAttempts as exc:
            error, status = str(exc), 429
            keep_changes_on_error()
        else:
            flash(
                f"If an account uses {form.email.data}, a link to choose a new password is on "
                "its way. It works once."
            )
            return redirect(url_for("auth.login"))
    elif form.errors:
        status = 400
    return render_template("auth/forgot.html", form=form, error=error), status


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@requires(Permission.PUBLIC)
def reset_password(token: str) -> Response | RENDER:
    db = get_session()
    if valid_reset_token(db, token) is None:
        return render_template("auth/reset.html", form=None, error=None), 410
    form = ResetPasswordForm()
    error, status = None, 200
    if form.validate_on_submit():
        try:
            set_password_from_link(db, token, form.password.data or "")
        except AccountError as exc:
            error, status = str(exc), 400
        else:
            session.clear()
            flash("Your password is changed. Please sign in with it.")
            return redirect(url_for("auth.login"))
    elif form.errors:
        status = 400
    return render_template("auth/reset.html", form=form, error=error), status
