"""Share requests: the consent record between a clinic and a patient account.

``patient_id`` is the clinic's roster record; ``account_id`` the patient's own login. The rules
that use these rows are in ``clinic_portal/sharing/services.py``.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from clinic_portal.timeutil import as_utc, utcnow


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
        return self.state_at(utcnow())

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
