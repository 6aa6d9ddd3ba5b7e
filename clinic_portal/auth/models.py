"""Clinics, user accounts, second-factor codes and reset links.

Share requests (the consent between a clinic and a patient account) live in
``clinic_portal/sharing``; the audit trail in ``clinic_portal/audit``.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

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
    # The code a patient enters to share with this clinic (XXXX-XXXX-XXXX, see sharing/services.py).
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
