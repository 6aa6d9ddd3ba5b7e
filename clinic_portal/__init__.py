"""clinic_portal: an open, multi-vendor, clinic-side diabetes data portal."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.middleware.proxy_fix import ProxyFix

from clinic_portal import db
from clinic_portal.config import check_production, load_config

ROOT = Path(__file__).resolve().parent.parent

# Content-Security-Policy: no inline script anywhere (htmx is configured through a <meta> tag and
# hx-* attributes), no inline styles, nothing from other origins.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; object-src 'none'"
)

BLUEPRINTS = (
    "clinic_portal.auth.views:bp",
    "clinic_portal.admin.views:bp",
    "clinic_portal.patients.views:bp",
    "clinic_portal.patients.me_views:bp",
    "clinic_portal.sharing.views:bp",
    "clinic_portal.sharing.views:patient_bp",
    "clinic_portal.web.views:bp",
    "clinic_portal.upload_station.views:bp",
)

# Who reacts to which domain event (clinic_portal/signals.py): (signal, receiver). Connected
# once per process, in one place, so importing a module never registers anything.
RECEIVERS = (
    ("records_ingested", "clinic_portal.analytics.summaries:mark_stale_after_ingest"),
    ("account_verified", "clinic_portal.sharing.receivers:attach_invitations_on_verified"),
    ("account_registered", "clinic_portal.sharing.receivers:claim_invitation_on_registered"),
    ("invitation_lookup", "clinic_portal.sharing.receivers:describe_invitation"),
)

CLI_GROUPS = (
    "clinic_portal.cli:db_cli",
    "clinic_portal.demo.cli:demo_cli",
    "clinic_portal.analytics.cli:analytics_cli",
    "clinic_portal.scheduler:scheduler_cli",
    "clinic_portal.upload_station.cli:upload_cli",
)


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application. ``config`` overrides settings read from the environment.

    Nothing here touches the database or the network: migrations are an explicit step
    (``flask db upgrade``) and jobs run in their own process (``flask scheduler run``).
    """
    instance = (
        (config or {}).get("INSTANCE_PATH")
        or os.environ.get("CLINIC_PORTAL_INSTANCE_PATH")
        or str(ROOT / "instance")
    )
    app = Flask(
        __name__,
        instance_path=instance,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(load_config(Path(app.instance_path)))
    if config:
        app.config.update(config)
    check_production(app.config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config.get("PROXY_FIX") or os.environ.get("CLINIC_PORTAL_PROXY_FIX") == "1":
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    from clinic_portal.auth.login import init_login
    from clinic_portal.extensions import csrf, htmx

    db.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    init_login(app)

    for path in BLUEPRINTS:
        app.register_blueprint(_load(path))
    for path in CLI_GROUPS:
        app.cli.add_command(_load(path))

    from clinic_portal.web import templating

    templating.init_app(app)
    _connect_receivers()
    _security_headers(app)
    _error_pages(app)
    return app


def _connect_receivers() -> None:
    from clinic_portal import signals

    for signal_name, receiver in RECEIVERS:
        # blinker keeps one connection per receiver, so a second app in the process (tests)
        # does not connect it twice; weak=False because the functions live in their modules.
        getattr(signals, signal_name).connect(_load(receiver), weak=False)


def _security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if app.config.get("SESSION_COOKIE_SECURE"):
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.endpoint != "static":
            # Pages may hold patient data: never cache them, so the back button after logout on a
            # shared clinic computer shows nothing.
            headers["Cache-Control"] = "no-store"
            # The same URL answers with a page or one of its fragments (htmx).
            headers.add("Vary", "HX-Request, HX-Target")
        return response


def _error_pages(app: Flask) -> None:
    def render(status: int, title: str, message: str) -> tuple[str, int]:
        return render_template("error.html", status=status, title=title, message=message), status

    app.register_error_handler(
        400, lambda e: render(400, "Bad request", getattr(e, "description", "") or "")
    )
    app.register_error_handler(
        403, lambda e: render(403, "Not allowed", "Your account may not open this page.")
    )
    app.register_error_handler(
        404, lambda e: render(404, "Not found", "There is nothing at this address.")
    )
    app.register_error_handler(
        413, lambda e: render(413, "Too large", "The file is larger than this portal accepts.")
    )
