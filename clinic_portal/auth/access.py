"""Who may do what: the one place where roles become permissions.

Every view declares the permission it needs with :func:`requires`; the access-matrix test walks
``app.url_map`` and fails for any endpoint without a declared permission, so a new route cannot
escape the check. Clinic isolation is the second half: objects are always loaded through the
``*_in_clinic`` helpers, which answer 404 for another clinic's ids exactly as for unknown ones.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, request
from flask_login import current_user

from clinic_portal.auth.models import Role

F = TypeVar("F", bound=Callable[..., Any])


class Permission(enum.StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    SIGNED_IN = "signed_in"  # any account
    VIEW_ROSTER = "view_roster"  # see the clinic's patient list and patient overview
    EDIT_PATIENTS = "edit_patients"  # add and edit patients' details
    VIEW_CLINICAL = "view_clinical"  # glucose data, reports, analytics
    UPLOAD = "upload"  # upload device data for a patient
    MANAGE_USERS = "manage_users"  # the clinic's staff accounts and settings
    PATIENT_SELF = "patient_self"  # a patient's own data


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.CLINIC_ADMIN: frozenset(
        {
            Permission.VIEW_ROSTER,
            Permission.EDIT_PATIENTS,
            Permission.VIEW_CLINICAL,
            Permission.UPLOAD,
            Permission.MANAGE_USERS,
        }
    ),
    Role.CLINICIAN: frozenset(
        {
            Permission.VIEW_ROSTER,
            Permission.EDIT_PATIENTS,
            Permission.VIEW_CLINICAL,
            Permission.UPLOAD,
        }
    ),
    # Front-desk and upload staff: roster and uploads, not clinical interpretation.
    Role.STAFF: frozenset({Permission.VIEW_ROSTER, Permission.EDIT_PATIENTS, Permission.UPLOAD}),
    Role.PATIENT: frozenset({Permission.PATIENT_SELF}),
}


def has_permission(user: Any, permission: Permission) -> bool:
    if permission == Permission.PUBLIC:
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    if permission == Permission.SIGNED_IN:
        return True
    return permission in ROLE_PERMISSIONS.get(Role(user.role), frozenset())


def requires(permission: Permission) -> Callable[[F], F]:
    """Declare and enforce the permission a view needs.

    Anonymous users are sent to the login page (401 for htmx requests, which then redirect);
    signed-in users without the permission get 403.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if permission != Permission.PUBLIC and not current_user.is_authenticated:
                from clinic_portal.extensions import login_manager

                return login_manager.unauthorized()
            if not has_permission(current_user, permission):
                abort(403)
            return view(*args, **kwargs)

        wrapper.required_permission = permission  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def client_address() -> str | None:
    """The client's address as the WSGI server saw it (ProxyFix decides what to trust)."""
    return request.remote_addr
