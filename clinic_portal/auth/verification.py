"""E-mailed sign-in codes, password reset links and patient sign-up.

* Sign-in code: 6 digits from :mod:`secrets`, valid ``policy.code_lifetime`` (15 minutes), at
  most ``policy.code_max_attempts`` tries; only an HMAC of it (keyed with the app's secret key) is
  stored, so a copy of the database does not reveal live codes. A new code replaces the old one.
* Reset link: 32 random bytes, valid ``policy.reset_lifetime``, single use; the SHA-256 of the
  token is stored. Using it sets the password, verifies the address, lifts a lockout and ends
  every session of the account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import current_app
from sqlmodel import Session, col, select

from clinic_portal import timeutil
from clinic_portal.audit.trail import record_audit
from clinic_portal.auth.models import PasswordResetToken, Role, User, VerificationCode
from clinic_portal.auth.passwords import hash_password, password_problem
from clinic_portal.auth.services import (
    USERNAME_PATTERN,
    AccountError,
    LoginPolicy,
    check_rate_limit,
    normalize_email,
    register_failure,
)
from clinic_portal.mail import external_url, send_mail
from clinic_portal.signals import account_verified
from clinic_portal.timeutil import as_utc

CODE_DIGITS = 6


class CodeError(AccountError):
    """The sign-in code was wrong, expired or used up; the message says what to do."""


def token_hash(token: str) -> str:
    """SHA-256 of a high-entropy link token (enough: the token itself cannot be guessed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _code_hash(user_id: int, code: str) -> str:
    # Keyed, because a 6-digit code's plain hash could be reversed by trying all million codes.
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{user_id}:{code}".encode(), hashlib.sha256).hexdigest()


def _latest_code(session: Session, user: User) -> VerificationCode | None:
    return session.exec(
        select(VerificationCode)
        .where(VerificationCode.user_id == user.id)
        .order_by(col(VerificationCode.id).desc())
    ).first()


def can_send_code(session: Session, user: User, *, policy: LoginPolicy) -> bool:
    """False while the last code is unused and younger than ``policy.code_resend`` (no mail
    flooding); a used or expired code never stands in the way of a new sign-in."""
    latest = _latest_code(session, user)
    now = timeutil.utcnow()
    return (
        latest is None
        or latest.used_at is not None
        or as_utc(latest.expires_at) <= now
        or as_utc(latest.created_at) + policy.code_resend <= now
    )


def send_sign_in_code(session: Session, user: User, *, policy: LoginPolicy) -> VerificationCode:
    """Make a new 6-digit code for ``user`` (older ones stop working) and e-mail it.

    Raises:
        clinic_portal.mail.MailError: the mail server refused it.
    """
    now = timeutil.utcnow()
    for old in session.exec(
        select(VerificationCode).where(
            VerificationCode.user_id == user.id, col(VerificationCode.used_at).is_(None)
        )
    ):
        old.used_at = now
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = VerificationCode(
        user_id=user.id,  # type: ignore[arg-type]
        code_hash=_code_hash(user.id or 0, code),
        created_at=now,
        expires_at=now + policy.code_lifetime,
    )
    session.add(row)
    session.flush()
    minutes = int(policy.code_lifetime.total_seconds() // 60)
    send_mail(
        user.email,
        f"Your clinic_portal code: {code}",
        f"Hello {user.name},\n\n"
        f"your clinic_portal code is\n\n    {code}\n\n"
        f"It is valid for {minutes} minutes and can be used once. If you did not just try to "
        "sign in, someone else knows your password: reset it from the sign-in page.\n",
    )
    record_audit(session, actor=user, action="login.code_sent", detail={"code_id": row.id})
    return row


def check_sign_in_code(
    session: Session, user: User, code: str, *, policy: LoginPolicy, ip_address: str | None
) -> None:
    """Accept ``code`` for ``user``: marks it used and the e-mail address verified, and
    announces ``signals.account_verified``.

    A wrong code counts as a failed sign-in (lockout) and against the client address's rate
    limit; after ``policy.code_max_attempts`` wrong tries the code is used up.

    Raises:
        TooManyAttempts: the client address failed too often.
        AccountLocked: the wrong code locked the account.
        CodeError: wrong, expired or used-up code.
    """
    check_rate_limit(session, ip_address, policy=policy, action="login.rate_limited")
    now = timeutil.utcnow()
    row = _latest_code(session, user)
    code = "".join(ch for ch in code if ch.isdigit())
    if row is None or row.used_at is not None:
        raise CodeError("This code is no longer valid. Send yourself a new code.")
    if as_utc(row.expires_at) <= now:
        record_audit(session, actor=user, action="login.code_expired", detail={"code_id": row.id})
        raise CodeError("This code has expired (codes are valid for 15 minutes). Send a new one.")
    if not hmac.compare_digest(row.code_hash, _code_hash(user.id or 0, code)):
        row.attempts += 1
        if row.attempts >= policy.code_max_attempts:
            row.used_at = now
        record_audit(session, actor=user, action="login.code_failure", detail={"code_id": row.id})
        register_failure(session, user, policy=policy)
        if row.used_at is not None:
            raise CodeError("Too many wrong codes. Send yourself a new code.")
        raise CodeError("That code is not correct. Check the latest e-mail and try again.")
    row.used_at = now
    if user.email_verified_at is None:
        user.email_verified_at = now
        record_audit(session, actor=user, action="account.email_verified")
    # The code came back, so the address is the account's: sharing attaches invitations to it.
    account_verified.send(session, account=user)


def request_password_reset(
    session: Session, email: str, *, policy: LoginPolicy, ip_address: str | None
) -> None:
    """E-mail a reset link when an active account has this address; silent otherwise.

    The answer is the same either way, so the form does not reveal which addresses have
    accounts. Requests count against the client address's rate limit like failed sign-ins.

    Raises:
        TooManyAttempts: the client address asked too often.
        clinic_portal.mail.MailError: the mail server refused the mail.
    """
    check_rate_limit(session, ip_address, policy=policy, action="password.reset_rate_limited")
    email = normalize_email(email)
    user = session.exec(select(User).where(User.email == email)).first()
    # Counted like a failure so that the form cannot be used to flood mailboxes.
    record_audit(
        session,
        actor=user,
        action="login.failure" if user is None else "password.reset_requested",
        detail={"login": email[:254], "reason": "reset for unknown address"}
        if user is None
        else {},
        ip_address=ip_address,
    )
    if user is None or not user.active:
        return
    token = secrets.token_urlsafe(32)
    now = timeutil.utcnow()
    session.add(
        PasswordResetToken(
            user_id=user.id,  # type: ignore[arg-type]
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + policy.reset_lifetime,
        )
    )
    session.flush()
    minutes = int(policy.reset_lifetime.total_seconds() // 60)
    send_mail(
        user.email,
        "Reset your clinic_portal password",
        f"Hello {user.name},\n\n"
        "someone (we hope you) asked to reset the password of your clinic_portal account. "
        f"Open this link within {minutes} minutes to choose a new password; it works once:\n\n"
        f"    {external_url('auth.reset_password', token=token)}\n\n"
        "If you did not ask for this, ignore this mail: your password stays as it is.\n",
    )


def valid_reset_token(session: Session, token: str) -> PasswordResetToken | None:
    """The reset link's row when the token exists, is unused and has not expired."""
    row = session.exec(
        select(PasswordResetToken).where(PasswordResetToken.token_hash == token_hash(token))
    ).first()
    if row is None or row.used_at is not None or as_utc(row.expires_at) <= timeutil.utcnow():
        return None
    return row


def reset_password(session: Session, token: str, new_password: str) -> User:
    """Set a new password through a reset link; the link and any other open ones stop working.

    Raises:
        AccountError: the link is invalid, used or expired, or the password is too weak.
    """
    row = valid_reset_token(session, token)
    user = session.get(User, row.user_id) if row else None
    if row is None or user is None or not user.active:
        raise AccountError("This reset link is not valid any more. Ask for a new one.")
    problem = password_problem(new_password, email=user.email)
    if problem:
        raise AccountError(problem)
    now = timeutil.utcnow()
    for other in session.exec(
        select(PasswordResetToken).where(
            PasswordResetToken.user_id == user.id, col(PasswordResetToken.used_at).is_(None)
        )
    ):
        other.used_at = now
    user.password_hash = hash_password(new_password)
    user.session_version += 1
    user.failed_logins = 0
    user.locked_until = None
    user.email_verified_at = user.email_verified_at or now
    session.flush()
    record_audit(session, actor=user, action="password.reset", detail={"user_id": user.id})
    account_verified.send(session, account=user)
    return user


def register_patient(
    session: Session,
    *,
    email: str,
    username: str | None,
    name: str,
    password: str,
) -> User:
    """Create a patient account (sign-up or invitation); e-mailed codes are always on for it.

    The address counts as verified only once a code sent to it comes back.

    Raises:
        AccountError: the address or user name is taken or invalid, or the password too weak.
    """
    email = normalize_email(email)
    username = (username or "").strip().lower() or None
    if not email or "@" not in email:
        raise AccountError("Enter a valid e-mail address.")
    if username is not None and not USERNAME_PATTERN.match(username):
        raise AccountError(
            "A user name has 3 to 32 characters: small letters, digits, dot, dash, underscore."
        )
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise AccountError(f"An account for {email} already exists. Sign in or reset the password.")
    if username and session.exec(select(User).where(User.username == username)).first():
        raise AccountError("That user name is taken. Choose another one.")
    problem = password_problem(password, email=email)
    if problem:
        raise AccountError(problem)
    user = User(
        clinic_id=None,
        email=email,
        username=username,
        name=name.strip(),
        role=Role.PATIENT,
        password_hash=hash_password(password),
        two_factor=True,
    )
    session.add(user)
    session.flush()
    record_audit(
        session,
        actor=user,
        action="account.register",
        detail={"user_id": user.id, "email": email, "username": username},
    )
    return user
