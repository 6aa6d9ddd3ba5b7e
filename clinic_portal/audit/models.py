"""The audit trail's table and the guard that keeps it append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import JSON, Column, Field, SQLModel

from clinic_portal.timeutil import utcnow


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
