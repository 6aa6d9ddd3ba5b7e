"""Writing the audit trail, and counting it for the sign-in rate limit."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from flask import has_request_context, request
from sqlmodel import Session, col, func, select

from clinic_portal.audit.models import AuditEvent


class Actor(Protocol):
    """Whoever acts: a user account (only its id and clinic are recorded)."""

    @property
    def id(self) -> int | None: ...

    @property
    def clinic_id(self) -> int | None: ...


def record_audit(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    clinic_id: int | None = None,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one audit entry (who did what to whom, when, from where).

    Args:
        actor: the acting account (``None`` for the system, a job or the CLI).
        action: a dotted verb such as ``patient.view`` or ``login.failure``.
        clinic_id: the clinic concerned; default the actor's clinic.
        patient_id: the patient whose data or record was touched, if any.
        detail: JSON-ready context (ids, changed field names; never secrets).
        ip_address: the client's address; default the current request's, so that every entry
            made while serving a request says where it came from (jobs and the CLI leave it
            empty).

    Returns:
        The entry, added to ``session`` (flushed with the caller's transaction).
    """
    if ip_address is None and has_request_context():
        ip_address = request.remote_addr
    entry = AuditEvent(
        actor_id=actor.id if actor else None,
        clinic_id=clinic_id if clinic_id is not None else (actor.clinic_id if actor else None),
        patient_id=patient_id,
        action=action,
        detail=detail or {},
        ip_address=ip_address,
    )
    session.add(entry)
    return entry


def failures_from_address(
    session: Session, ip_address: str, *, since: datetime, actions: tuple[str, ...]
) -> int:
    """How many audit entries of ``actions`` came from ``ip_address`` since ``since``.

    The sign-in rate limit counts the audit trail rather than keeping a counter in memory, so it
    holds across every gunicorn worker and restart without another moving part.
    """
    return session.exec(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.ip_address == ip_address,
            col(AuditEvent.action).in_(actions),
            AuditEvent.time >= since,
        )
    ).one()
