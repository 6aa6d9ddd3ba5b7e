"""Jinja filters and globals shared by every template.

Templates ask ``can("view_clinical")`` instead of comparing role names, so the one table of
``auth/access.py`` decides what a page shows as well as what a route allows."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from flask import Flask, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from clinic_portal.auth.access import Permission, has_permission
from clinic_portal.auth.models import Role
from clinic_portal.patients.models import DiabetesType, TargetPreset
from clinic_portal.records import mgdl_to_mmol
from clinic_portal.timeutil import local_datetime


def age(born: date, today: date | None = None) -> int:
    today = today or date.today()
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def glucose(value_mgdl: float | None, units: str = "mg/dL") -> str:
    """A glucose value in the patient's preferred units (mmol/L with one decimal)."""
    if value_mgdl is None:
        return "—"
    if units == "mmol/L":
        return f"{mgdl_to_mmol(value_mgdl):.1f}"
    return f"{value_mgdl:.0f}"


def url_with(endpoint: str | None = None, **changes: Any) -> str:
    """The current URL with some query arguments replaced (``None`` removes one)."""
    values: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    values.update(changes)
    values = {k: v for k, v in values.items() if v is not None}
    return url_for(endpoint or request.endpoint or "main.home", **values)


def enum_label(value: Any, enum_type: type) -> str:
    """The human label of a stored enum value (columns hold plain strings)."""
    try:
        member = enum_type(value)
    except ValueError:
        return str(value)
    return str(getattr(member, "label", member.value))


def can(permission: str) -> bool:
    """Whether the signed-in user has ``permission`` (a :class:`Permission` value)."""
    return has_permission(current_user, Permission(permission))


def init_app(app: Flask) -> None:
    app.jinja_env.filters["diabetes_label"] = lambda v: enum_label(v, DiabetesType)
    app.jinja_env.filters["target_label"] = lambda v: enum_label(v, TargetPreset)
    app.jinja_env.filters["role_label"] = lambda v: enum_label(v, Role)
    app.jinja_env.filters["localtime"] = local_datetime
    app.jinja_env.filters["age"] = age
    app.jinja_env.filters["glucose"] = glucose
    app.jinja_env.globals["url_with"] = url_with
    app.jinja_env.globals["can"] = can

    @app.context_processor
    def _csrf_headers() -> dict[str, Any]:
        # htmx sends the CSRF token on every request it makes (hx-headers on <body>).
        return {"csrf_headers": lambda: json.dumps({"X-CSRFToken": generate_csrf()})}
