"""Clinics, user accounts, second-factor codes, reset links, share requests and the audit trail.

``ShareRequest`` lives here rather than in ``patients/`` because it is the consent record between a
clinic and a patient *account*; the rules that use it are in ``clinic_portal/patients/shares.py``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import JSON, Column, Field, SQLModel

from clinic_portal.timeutil import utcnow


class Role(enum.StrEnum):
    CLINIC_ADMIN = "clinic_admin"
    CLINICIAN = "clinician"
    STAFF = "staff"
    PATIENT = "patient"

    @property
    def label(self) -> str:
        return {
            "clinic_admin": "Clinic admin",
            "clinician": "Clinician",
            "staff": "Staff",
            "patient": "Patient",
        }[self.value]


DEFAULT_SHARE_TERMS = (
    "I allow this clinic's care team to see the diabetes device data, reports and uploads in "
    "my account for my treatment. I can stop sharing at any time in my account; the clinic "
    "then loses access to my data at once. Every view and export of my data is recorded."
)


class Clinic(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    time_zone: str = Field(default="Europe/Berlin", max_length=64)
    # Each clinic decides whether an MRN must be entered and whether it must be unique
    # (Tidepool's MRNSettings{Required,Unique}, shared/reference/features.md a.1).
    mrn_required: bool = Field(default=False)
    mrn_unique: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    # E-mailed sign-in codes for the clinic's own staff (patients always have them).
    staff_two_factor: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    # The code a patient enters to share with this clinic (XXXX-XXXX-XXXX, see patients/shares).
    share_code: str | None = Field(default=None, max_length=14, unique=True)
    # What a patient consents to when sharing with this clinic; a copy is kept on each share.
    share_terms: str = Field(
        default=DEFAULT_SHARE_TERMS,
        sa_column=Column(sa.Text, nullable=False, server_default=DEFAULT_SHARE_TERMS),
    )


class User(SQLModel, table=True):
    __tablename__ = "user_account"
    __table_args__ = (sa.Index("ix_user_account_clinic", "clinic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    # Patient accounts belong to no clinic: clinics reach them through their patient records.
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id")
    email: str = Field(max_length=254, unique=True)
    # Patients may also sign in, and be found by a clinic, by a user name (CareLink Personal).
    username: str | None = Field(default=None, max_length=32, unique=True)
    name: str = Field(max_length=200)
    role: Role = Field(sa_column=Column(sa.String(20), nullable=False))
    password_hash: str = Field(max_length=255)
    active: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = None
    # Bumped whenever the password changes or the account is disabled: old sessions stop working.
    session_version: int = Field(default=1)
    # Set when the owner proved the address (a sign-in code or a reset link reached them).
    email_verified_at: datetime | None = None
    # An e-mailed code after the password. Every account made by patient sign-up or a clinic
    # invitation has it on and cannot turn it off; staff get it from Clinic.staff_two_factor.
    two_factor: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})

    # flask-login protocol -------------------------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"


class AuditEvent(SQLModel, table=True):
    """One entry of the audit trail. Rows are only ever inserted (no route edits or deletes)."""

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.Index("ix_audit_event_clinic_time", "clinic_id", "time"),
        sa.Index("ix_audit_event_patient_time", "patient_id", "time"),
    )

    id: int | None = Field(default=None, primary_key=True)
    time: datetime = Field(default_factory=utcnow)
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id")
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    action: str = Field(max_length=64)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ip_address: str | None = Field(default=None, max_length=45)


@event.listens_for(OrmSession, "before_flush")
def _audit_is_append_only(session: OrmSession, _context: object, _instances: object) -> None:
    """Refuse any ORM change to or deletion of an audit entry (they are only ever inserted)."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise RuntimeError("audit entries are append-only")


class VerificationCode(SQLModel, table=True):
    """A 6-digit sign-in code sent by e-mail; only its keyed hash is stored."""

    __tablename__ = "verification_code"
    __table_args__ = (sa.Index("ix_verification_code_user", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id")
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    attempts: int = Field(default=0)
    used_at: datetime | None = None


class PasswordResetToken(SQLModel, table=True):
    """A single-use password reset link; only the SHA-256 of its token is stored."""

    __tablename__ = "password_reset_token"
    __table_args__ = (sa.Index("ix_password_reset_token_user", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id")
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class ShareState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            "pending": "Waiting for the patient",
            "accepted": "Sharing",
            "declined": "Declined by the patient",
            "revoked": "Stopped by the patient",
            "expired": "Request expired",
            "cancelled": "Cancelled by the clinic",
        }[self.value]


class ShareRequest(SQLModel, table=True):
    """A clinic's request to see a patient account's data, or a share the patient started.

    ``patient_id`` is the clinic's roster record the account is linked to; ``account_id`` is
    empty while an invitation waits for someone to register. Each state has its own time.
    """

    __tablename__ = "share_request"
    __table_args__ = (
        sa.Index("ix_share_request_patient", "patient_id", "id"),
        sa.Index("ix_share_request_account", "account_id"),
        sa.Index("ix_share_request_clinic_state", "clinic_id", "state"),
        sa.Index("ix_share_request_invite_email", "invite_email"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id")
    patient_id: int = Field(foreign_key="patient.id")
    account_id: int | None = Field(default=None, foreign_key="user_account.id")
    invite_email: str | None = Field(default=None, max_length=254)
    # How the share began: "request" (the clinic asked) or "share_code" (the patient entered it).
    via: str = Field(default="request", max_length=16)
    state: ShareState = Field(
        default=ShareState.PENDING, sa_column=Column(sa.String(16), nullable=False)
    )
    # SHA-256 of the invitation link's token (only for invitations to register).
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    accepted_at: datetime | None = None
    declined_at: datetime | None = None
    revoked_at: datetime | None = None
    cancelled_at: datetime | None = None
    # The clinic's terms as the patient saw them when accepting.
    consent_text: str | None = Field(default=None, sa_column=Column(sa.Text, nullable=True))

    def state_at(self, now: datetime) -> ShareState:
        """The state as of ``now``: a pending request past its expiry counts as expired."""
        if self.state == ShareState.PENDING and self.expires_at and as_utc(self.expires_at) <= now:
            return ShareState.EXPIRED
        return ShareState(self.state)

    @property
    def current_state(self) -> ShareState:
        """The state now (for templates)."""
        from clinic_portal import timeutil

        return self.state_at(timeutil.utcnow())

    def state_time(self, now: datetime) -> datetime | None:
        """When the current state began."""
        state = self.state_at(now)
        return {
            ShareState.PENDING: self.sent_at or self.created_at,
            ShareState.ACCEPTED: self.accepted_at,
            ShareState.DECLINED: self.declined_at,
            ShareState.REVOKED: self.revoked_at,
            ShareState.EXPIRED: self.expires_at,
            ShareState.CANCELLED: self.cancelled_at,
        }[state]


def as_utc(value: datetime) -> datetime:
    """A stored instant as an aware UTC datetime.

    The columns are ``timestamp without time zone`` holding UTC, so both engines hand back naive
    values; comparing them with :func:`clinic_portal.timeutil.utcnow` needs the zone back.
    """
    return value if value.tzinfo else value.replace(tzinfo=UTC)
