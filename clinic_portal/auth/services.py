"""Account operations: log-in checks and clinic user management.

Services take the acting user explicitly (``actor=``), flush, and write the audit entry; the
request or job commits.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, func, select

from clinic_portal import timeutil
from clinic_portal.audit.trail import failures_from_address, record_audit
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.auth.passwords import hash_password, password_problem, verify_password
from clinic_portal.timeutil import as_utc, is_valid_time_zone, utcnow


class AccountError(ValueError):
    """An account operation was refused; the message is safe to show to the user."""


class AccountLocked(AccountError):
    """Too many failed sign-ins: the account is locked until ``until`` (UTC)."""

    def __init__(self, until: datetime) -> None:
        minutes = max(1, -(-int((until - timeutil.utcnow()).total_seconds()) // 60))
        super().__init__(
            "Too many failed sign-ins: this account is locked for security. Try again at "
            f"{until:%H:%M} UTC (in {minutes} minute{'s' if minutes != 1 else ''}), or reset "
            "your password by e-mail."
        )
        self.until = until


class TooManyAttempts(AccountError):
    """Too many failed attempts from one client address within the rate-limit window."""


@dataclasses.dataclass(frozen=True)
class LoginPolicy:
    """The numbers of the sign-in rules (``clinic_portal/auth/settings.py`` has the defaults)."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    rate_limit: int = 30
    rate_window: timedelta = timedelta(minutes=15)
    code_lifetime: timedelta = timedelta(minutes=15)
    code_max_attempts: int = 5
    code_resend: timedelta = timedelta(seconds=60)
    reset_lifetime: timedelta = timedelta(minutes=60)
    share_lifetime: timedelta = timedelta(days=14)

    @classmethod
    def from_config(cls, config: Any) -> LoginPolicy:
        """The policy of an app's configuration (``app.config``)."""
        return cls(
            max_failures=config["LOGIN_MAX_FAILURES"],
            lockout=timedelta(minutes=config["LOCKOUT_MINUTES"]),
            rate_limit=config["LOGIN_RATE_LIMIT"],
            rate_window=timedelta(minutes=config["LOGIN_RATE_WINDOW_MINUTES"]),
            code_lifetime=timedelta(minutes=config["CODE_MINUTES"]),
            code_max_attempts=config["CODE_MAX_ATTEMPTS"],
            code_resend=timedelta(seconds=config["CODE_RESEND_SECONDS"]),
            reset_lifetime=timedelta(minutes=config["RESET_LINK_MINUTES"]),
            share_lifetime=timedelta(days=config["SHARE_REQUEST_DAYS"]),
        )


USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
# Actions that count against a client address's sign-in rate limit.
RATE_LIMITED_ACTIONS = ("login.failure", "login.code_failure", "share.code_unknown")


def normalize_email(email: str) -> str:
    return email.strip().lower()


def find_account(session: Session, login: str) -> User | None:
    """The account whose e-mail address or user name is ``login`` (case-insensitive)."""
    login = normalize_email(login)
    if not login:
        return None
    column = User.email if "@" in login else User.username
    return session.exec(select(User).where(column == login)).first()


def check_rate_limit(
    session: Session, ip_address: str | None, *, policy: LoginPolicy, action: str
) -> None:
    """Refuse when ``ip_address`` has had too many failures within the policy's window.

    Raises:
        TooManyAttempts: the limit is reached; the refusal itself is audited as ``action``.
    """
    if not ip_address:
        return
    since = timeutil.utcnow() - policy.rate_window
    count = failures_from_address(session, ip_address, since=since, actions=RATE_LIMITED_ACTIONS)
    if count >= policy.rate_limit:
        record_audit(session, actor=None, action=action, ip_address=ip_address)
        minutes = int(policy.rate_window.total_seconds() // 60)
        raise TooManyAttempts(
            "Too many failed attempts from this network address. Please wait "
            f"{minutes} minutes and try again."
        )


def register_failure(session: Session, user: User, *, policy: LoginPolicy) -> None:
    """Count one failed attempt; the last allowed one locks the account for a while.

    Raises:
        AccountLocked: this failure locked the account.
    """
    user.failed_logins += 1
    if user.failed_logins >= policy.max_failures:
        user.failed_logins = 0
        user.locked_until = timeutil.utcnow() + policy.lockout
        record_audit(
            session,
            actor=user,
            action="account.locked",
            detail={"until": user.locked_until.isoformat()},
        )
        raise AccountLocked(user.locked_until)


def locked_until(user: User) -> datetime | None:
    """When the account's lock ends, or ``None`` when it is not locked now."""
    if user.locked_until is None:
        return None
    until = as_utc(user.locked_until)
    return until if until > timeutil.utcnow() else None


def authenticate(
    session: Session,
    login: str,
    password: str,
    *,
    ip_address: str | None,
    policy: LoginPolicy | None = None,
) -> User:
    """Check a password sign-in; returns the user (the second step may still be due).

    ``login`` is an e-mail address or a user name. Every refusal is audited as
    ``login.failure`` with the reason; the message never says whether the account exists,
    except that a locked account says so and when it opens again.

    Raises:
        TooManyAttempts: this client address failed too often recently.
        AccountLocked: the account is locked (or this failure locked it).
        AccountError: wrong address or password, or a disabled account.
    """
    policy = policy or LoginPolicy()
    check_rate_limit(session, ip_address, policy=policy, action="login.rate_limited")
    user = find_account(session, login)
    detail = {"login": normalize_email(login)[:254]}
    until = locked_until(user) if user is not None else None
    if user is not None and until is not None:
        record_audit(
            session,
            actor=user,
            action="login.failure",
            detail={**detail, "reason": "locked"},
            ip_address=ip_address,
        )
        raise AccountLocked(until)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        reason = "unknown" if user is None else ("password" if not ok else "disabled")
        record_audit(
            session,
            actor=user,
            action="login.failure",
            detail={**detail, "reason": reason},
            ip_address=ip_address,
        )
        if user is not None and not ok:
            register_failure(session, user, policy=policy)
        raise AccountError("The e-mail address or password is not correct.")
    return user


def needs_second_factor(session: Session, user: User) -> bool:
    """Whether ``user`` must also enter an e-mailed code after the password.

    Always for patient accounts (issue 5: "on for patients"), whoever created them; staff need
    it when their clinic turned on ``staff_two_factor`` or their own ``two_factor`` is set.
    """
    if user.two_factor or user.role == Role.PATIENT:
        return True
    clinic = session.get(Clinic, user.clinic_id) if user.clinic_id else None
    return bool(clinic and clinic.staff_two_factor)


def complete_login(
    session: Session, user: User, *, ip_address: str | None, kiosk: bool = False
) -> None:
    """Record a finished sign-in (after the second factor when one was due)."""
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = utcnow()
    record_audit(
        session,
        actor=user,
        action="login.success",
        detail={"kiosk": True} if kiosk else {},
        ip_address=ip_address,
    )


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
    problem = password_problem(password, email=email)
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
        problem = password_problem(new_password, email=user.email)
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
    staff_two_factor: bool | None = None,
    share_terms: str | None = None,
) -> Clinic:
    """Change the clinic's name, default time zone, MRN rules, staff sign-in codes and the
    terms patients consent to when sharing (``None`` keeps a setting as it is).

    Raises:
        AccountError: the time zone is not an IANA zone name.
    """
    if clinic.id != actor.clinic_id:
        raise AccountError("That clinic cannot be changed here.")
    if not is_valid_time_zone(time_zone):
        raise AccountError(f"{time_zone!r} is not an IANA time zone (for example Europe/Berlin).")
    clinic.name = name.strip() or clinic.name
    clinic.time_zone = time_zone
    clinic.mrn_required = mrn_required
    clinic.mrn_unique = mrn_unique
    detail: dict[str, Any] = {
        "time_zone": time_zone,
        "mrn_required": mrn_required,
        "mrn_unique": mrn_unique,
    }
    if staff_two_factor is not None and staff_two_factor != clinic.staff_two_factor:
        clinic.staff_two_factor = staff_two_factor
        detail["staff_two_factor"] = staff_two_factor
    if (
        share_terms is not None
        and share_terms.strip()
        and share_terms.strip() != clinic.share_terms
    ):
        clinic.share_terms = share_terms.strip()
        detail["share_terms"] = "changed"
    session.flush()
    record_audit(session, actor=actor, action="clinic.update", detail=detail)
    return clinic
