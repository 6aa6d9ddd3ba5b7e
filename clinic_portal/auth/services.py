"""Account operations: log-in checks, clinic user management and the audit trail.

Services take the acting user explicitly (``actor=``), flush, and write the audit entry; the
request or job commits.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, func, select

from clinic_portal.auth.models import AuditEvent, Clinic, Role, User
from clinic_portal.auth.passwords import hash_password, password_problem, verify_password
from clinic_portal.timeutil import utcnow


class AccountError(ValueError):
    """An account operation was refused; the message is safe to show to the user."""


def normalize_email(email: str) -> str:
    return email.strip().lower()


def record_audit(
    session: Session,
    *,
    actor: User | None,
    action: str,
    clinic_id: int | None = None,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one audit entry (who did what to whom, when, from where)."""
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        clinic_id=clinic_id if clinic_id is not None else (actor.clinic_id if actor else None),
        patient_id=patient_id,
        action=action,
        detail=detail or {},
        ip_address=ip_address,
    )
    session.add(event)
    return event


def authenticate(session: Session, email: str, password: str, *, ip_address: str | None) -> User:
    """Check a login; returns the user or raises :class:`AccountError` with a generic message.

    Both outcomes are audited. The message never says whether the address exists.
    """
    user = session.exec(select(User).where(User.email == normalize_email(email))).first()
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        record_audit(
            session,
            actor=user,
            action="login.failure",
            detail={"email": normalize_email(email)[:254]},
            ip_address=ip_address,
        )
        if user is not None:
            user.failed_logins += 1
        raise AccountError("The e-mail address or password is not correct.")
    user.failed_logins = 0
    user.last_login_at = utcnow()
    record_audit(session, actor=user, action="login.success", ip_address=ip_address)
    return user


def create_user(
    session: Session,
    *,
    actor: User | None,
    clinic: Clinic | None,
    email: str,
    name: str,
    role: Role,
    password: str,
) -> User:
    """Create an account in ``clinic`` (``None`` for patient accounts).

    Raises:
        AccountError: the address is taken or the password is too weak.
    """
    email = normalize_email(email)
    if not email or "@" not in email:
        raise AccountError("Enter a valid e-mail address.")
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise AccountError(f"An account for {email} already exists.")
    problem = password_problem(password)
    if problem:
        raise AccountError(problem)
    user = User(
        clinic_id=clinic.id if clinic else None,
        email=email,
        name=name.strip(),
        role=role,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="user.create",
        clinic_id=clinic.id if clinic else None,
        detail={"user_id": user.id, "email": email, "role": str(role)},
    )
    return user


def _admins_left(session: Session, clinic_id: int, excluding: int) -> int:
    return session.exec(
        select(func.count())
        .select_from(User)
        .where(
            User.clinic_id == clinic_id,
            User.role == Role.CLINIC_ADMIN,
            User.active == True,  # noqa: E712 - SQL expression
            User.id != excluding,
        )
    ).one()


def update_user(
    session: Session,
    *,
    actor: User,
    user: User,
    name: str,
    role: Role,
    active: bool,
    new_password: str | None = None,
) -> User:
    """Change a clinic user's name, role, active flag or password (clinic admins only).

    Raises:
        AccountError: the change would leave the clinic without an active admin, or the new
            password is too weak.
    """
    if user.clinic_id != actor.clinic_id or role == Role.PATIENT:
        raise AccountError("That user cannot be changed here.")
    losing_admin = user.role == Role.CLINIC_ADMIN and (role != Role.CLINIC_ADMIN or not active)
    if losing_admin and _admins_left(session, actor.clinic_id or 0, user.id or 0) == 0:
        raise AccountError("A clinic needs at least one active clinic admin.")
    changes: dict[str, Any] = {}
    if name.strip() != user.name:
        changes["name"] = name.strip()
        user.name = name.strip()
    if role != user.role:
        changes["role"] = str(role)
        user.role = role
    if active != user.active:
        changes["active"] = active
        user.active = active
        user.session_version += 1
    if new_password:
        problem = password_problem(new_password)
        if problem:
            raise AccountError(problem)
        user.password_hash = hash_password(new_password)
        user.session_version += 1
        changes["password"] = "changed"  # noqa: S105 - audit note, not a secret
    session.flush()
    if changes:
        record_audit(
            session, actor=actor, action="user.update", detail={"user_id": user.id, **changes}
        )
    return user


def update_clinic_settings(
    session: Session,
    *,
    actor: User,
    clinic: Clinic,
    name: str,
    time_zone: str,
    mrn_required: bool,
    mrn_unique: bool,
) -> Clinic:
    """Change the clinic's name, default time zone and MRN rules.

    Raises:
        AccountError: the time zone is not an IANA zone name.
    """
    from clinic_portal.timeutil import is_valid_time_zone

    if clinic.id != actor.clinic_id:
        raise AccountError("That clinic cannot be changed here.")
    if not is_valid_time_zone(time_zone):
        raise AccountError(f"{time_zone!r} is not an IANA time zone (for example Europe/Berlin).")
    clinic.name = name.strip() or clinic.name
    clinic.time_zone = time_zone
    clinic.mrn_required = mrn_required
    clinic.mrn_unique = mrn_unique
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="clinic.update",
        detail={"time_zone": time_zone, "mrn_required": mrn_required, "mrn_unique": mrn_unique},
    )
    return clinic
