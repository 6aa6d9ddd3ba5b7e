"""The clinic admin's services: searching and exporting the audit trail (who did what to which
patient, when, from where) and listing the clinic's accounts.

Entries are only ever added (``record_audit``); an ORM guard in ``audit/models.py`` refuses any
change or deletion, and no route offers one. A clinic admin sees the entries of their clinic:
staff actions, patients' share decisions about the clinic, and views of the clinic's patients.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.audit.trail import record_audit
from clinic_portal.auth.models import User
from clinic_portal.csv_safety import csv_text
from clinic_portal.patients.models import Patient

PAGE_SIZE = 50
MAX_TEXT = 100


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclasses.dataclass(frozen=True)
class AuditQuery:
    """The audit page's filters: actor (e-mail or name part), patient (id or name part),
    action (prefix, e.g. ``share.`` or ``login.failure``), local dates ``since``-``until``
    inclusive in the clinic's time zone, and the page number."""

    actor: str = ""
    patient: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1
    time_zone: str = "UTC"

    @classmethod
    def from_args(cls, args: Mapping[str, str], *, time_zone: str) -> AuditQuery:
        """The filters from a request's query string; invalid values are ignored."""
        try:
            page = max(1, int(args.get("page", "1") or 1))
        except ValueError:
            page = 1
        return cls(
            actor=(args.get("actor") or "").strip()[:MAX_TEXT],
            patient=(args.get("patient") or "").strip()[:MAX_TEXT],
            action=(args.get("action") or "").strip()[:64],
            since=_date(args.get("since")),
            until=_date(args.get("until")),
            page=page,
            time_zone=time_zone,
        )

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The UTC instants of the local-date filters ([since 00:00, until+1 00:00))."""
        zone = ZoneInfo(self.time_zone)
        start = datetime.combine(self.since, time(), zone) if self.since else None
        end = datetime.combine(self.until + timedelta(days=1), time(), zone) if self.until else None
        # The column holds UTC wall time: compare with UTC instants on both engines.
        return (
            start.astimezone(UTC) if start else None,
            end.astimezone(UTC) if end else None,
        )


@dataclasses.dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    actor: User | None
    patient: Patient | None


@dataclasses.dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    total: int
    page: int
    pages: int
    actions: list[str]  # every action the clinic's trail holds, for the filter


def _conditions(clinic_id: int, query: AuditQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [col(AuditEvent.clinic_id) == clinic_id]
    if query.actor:
        conditions.append(
            col(AuditEvent.actor_id).in_(
                select(User.id).where(
                    sa.or_(
                        func.lower(User.email).like(_like(query.actor), escape="\\"),
                        func.lower(User.name).like(_like(query.actor), escape="\\"),
                    )
                )
            )
        )
    if query.patient:
        if query.patient.isdigit():
            conditions.append(col(AuditEvent.patient_id) == int(query.patient))
        else:
            conditions.append(
                col(AuditEvent.patient_id).in_(
                    select(Patient.id).where(
                        Patient.clinic_id == clinic_id,
                        col(Patient.search_name).like(_like(query.patient), escape="\\"),
                    )
                )
            )
    if query.action:
        conditions.append(col(AuditEvent.action).startswith(query.action, autoescape=True))
    start, end = query.bounds()
    if start is not None:
        conditions.append(col(AuditEvent.time) >= start)
    if end is not None:
        conditions.append(col(AuditEvent.time) < end)
    return conditions


def _entries(session: Session, conditions: list[sa.ColumnElement[bool]]) -> Any:
    return (
        select(AuditEvent, User, Patient)
        .outerjoin(User, col(User.id) == AuditEvent.actor_id)
        .outerjoin(Patient, col(Patient.id) == AuditEvent.patient_id)
        .where(*conditions)
        .order_by(col(AuditEvent.time).desc(), col(AuditEvent.id).desc())
    )


def search_audit(session: Session, *, clinic_id: int, query: AuditQuery) -> AuditPage:
    """One page (newest first) of the clinic's audit entries matching ``query``."""
    conditions = _conditions(clinic_id, query)
    total = session.exec(select(func.count()).select_from(AuditEvent).where(*conditions)).one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(query.page, pages)
    rows = session.exec(
        _entries(session, conditions).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    actions = list(
        session.exec(
            select(AuditEvent.action)
            .where(AuditEvent.clinic_id == clinic_id)
            .distinct()
            .order_by(AuditEvent.action)
        )
    )
    return AuditPage(
        rows=[AuditRow(event, actor, patient) for event, actor, patient in rows],
        total=total,
        page=page,
        pages=pages,
        actions=actions,
    )


EXPORT_LIMIT = 100_000
EXPORT_HEADER = (
    "time (UTC)",
    "action",
    "actor e-mail",
    "actor name",
    "patient id",
    "patient",
    "address",
    "detail",
)


def export_audit_csv(
    session: Session,
    *,
    actor: User,
    clinic_id: int,
    query: AuditQuery,
    filters: Mapping[str, str] | None = None,
) -> str:
    """The entries matching ``query`` (all pages, newest first, at most ``EXPORT_LIMIT``) as CSV;
    the export itself is audited as ``audit.export`` with the number of entries and ``filters``
    (the page's query arguments).

    Every text cell is neutralised against spreadsheet formulas: audit details hold text that
    users typed (e-mail addresses tried at sign-in, names), which an attacker can choose.
    """
    rows = session.exec(_entries(session, _conditions(clinic_id, query)).limit(EXPORT_LIMIT)).all()
    lines = [
        (
            event.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            event.action,
            actor.email if actor else "",
            actor.name if actor else "",
            event.patient_id if event.patient_id is not None else "",
            patient.display_name if patient else "",
            event.ip_address or "",
            json.dumps(event.detail, ensure_ascii=False, sort_keys=True) if event.detail else "",
        )
        for event, actor, patient in rows
    ]
    record_audit(
        session,
        actor=actor,
        action="audit.export",
        detail={"entries": len(lines), "filters": dict(filters or {})},
    )
    return csv_text(EXPORT_HEADER, lines)


def clinic_users(session: Session, *, clinic_id: int) -> list[User]:
    """The clinic's staff accounts by name (patient accounts belong to no clinic)."""
    return list(session.exec(select(User).where(User.clinic_id == clinic_id).order_by(User.name)))
