"""Clinics, user accounts and the audit trail."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
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


class Clinic(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    time_zone: str = Field(default="Europe/Berlin", max_length=64)
    # Each clinic decides whether an MRN must be entered and whether it must be unique
    # (Tidepool's MRNSettings{Required,Unique}, shared/reference/features.md a.1).
    mrn_required: bool = Field(default=False)
    mrn_unique: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow)


class User(SQLModel, table=True):
    __tablename__ = "user_account"
    __table_args__ = (sa.Index("ix_user_account_clinic", "clinic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    # Patient accounts belong to no clinic: clinics reach them through their patient records.
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id")
    email: str = Field(max_length=254, unique=True)
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
