"""The start page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, redirect, url_for
from flask_login import current_user
from sqlmodel import select
from werkzeug.wrappers import Response

from clinic_portal.auth.access import Permission, requires
from clinic_portal.auth.models import Role
from clinic_portal.db import get_session

bp = Blueprint("main", __name__)


@bp.route("/")
@requires(Permission.PUBLIC)
def home() -> Response:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    if current_user.role == Role.PATIENT:
        return redirect(url_for("me.my_data"))
    return redirect(url_for("patients.roster"))


@bp.route("/healthz")
@requires(Permission.PUBLIC)
def healthz() -> Response:
    get_session().exec(select(1)).one()
    return jsonify(status="ok")
