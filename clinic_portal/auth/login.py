"""flask-login wiring: loading the user from the session cookie."""

from __future__ import annotations

from flask import Flask, Response, jsonify, redirect, request, url_for
from flask_login import current_user

from clinic_portal.auth.models import User
from clinic_portal.db import get_session
from clinic_portal.extensions import htmx, login_manager


def init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to open that page."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load_user(token: str) -> User | None:
        # The session stores "id:version"; bumping the version (password change, account
        # disabled) ends every other session of that user.
        user_id, _, version = token.partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        user = get_session().get(User, int(user_id))
        if user is None or not user.active or user.session_version != int(version):
            return None
        return user

    @login_manager.unauthorized_handler
    def _unauthorized() -> Response:
        if htmx:
            response = jsonify(error="sign in required")
            response.status_code = 401
            response.headers["HX-Redirect"] = url_for("auth.login")
            return response
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))  # type: ignore[return-value]

    @app.context_processor
    def _user() -> dict[str, object]:
        return {"current_user": current_user}
