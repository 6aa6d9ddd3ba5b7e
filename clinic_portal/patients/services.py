"""Roster operations: search, add and edit patients, always within the actor's clinic."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from clinic_portal.analytics.models import PatientMetricsSummary
from clinic_portal.analytics.summaries import ROSTER_PERIOD, mark_stale, roster_summaries
from clinic_portal.audit.trail import record_audit
from clinic_portal.auth.models import Clinic, User
from clinic_portal.patients.models import (
    DiabetesType,
    GlucoseUnits,
    Patient,
    PatientTag,
    Sex,
    TargetPreset,
)
from clinic_portal.reports.glucose import GlucoseReport, glucose_report
from clinic_portal.sharing.models import ShareRequest, ShareState
from clinic_portal.sharing.services import (
    closed_patient_ids,
    data_open_clause,
    latest_shares,
    shares_of_account,
)
from clinic_portal.timeutil import is_valid_time_zone, utcnow
from clinic_portal.upload_station.models import Device, Upload

SORTS: dict[str, tuple[Any, ...]] = {
    "name": (Patient.last_name, Patient.first_name, Patient.id),
    "-name": (
        col(Patient.last_name).desc(),
        col(Patient.first_name).desc(),
        col(Patient.id).desc(),
    ),
    "dob": (Patient.date_of_birth, Patient.id),
    "-dob": (col(Patient.date_of_birth).desc(), col(Patient.id).desc()),
    "mrn": (Patient.mrn, Patient.id),
    "-mrn": (col(Patient.mrn).desc(), col(Patient.id).desc()),
    # Most recent data first; patients with no data at all last.
    "recent": (col(Patient.last_data_time).desc().nulls_last(), Patient.id),
    "-recent": (col(Patient.last_data_time).asc().nulls_first(), Patient.id),
}
# Sorts on the 14-day summary cache (clinicians and admins only). "tir" puts the lowest time in
# range first and "below" the most time below range first: the patients to look at come first.
_IN_TARGET = col(PatientMetricsSummary.pct_in_target)
_BELOW_TARGET = col(PatientMetricsSummary.pct_below_target)
CLINICAL_SORTS: dict[str, tuple[Any, ...]] = {
    "tir": (_IN_TARGET.asc().nulls_last(), Patient.id),
    "-tir": (_IN_TARGET.desc().nulls_last(), Patient.id),
    "below": (_BELOW_TARGET.desc().nulls_last(), Patient.id),
    "-below": (_BELOW_TARGET.asc().nulls_last(), Patient.id),
}
MAX_TAGS = 20
MAX_QUERY_LENGTH = 100


class PatientError(ValueError):
    """A patient change was refused; the message names the field and the reason."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class RosterPage:
    patients: list[Patient]
    tags: dict[int, list[str]]
    total: int
    page: int
    page_size: int
    # The 14-day metrics per patient id; empty unless the roster was asked for clinical columns.
    summaries: dict[int, PatientMetricsSummary] = dataclasses.field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclasses.dataclass
class PatientDetails:
    """What a person may enter about a patient (add and edit forms)."""

    first_name: str
    last_name: str
    date_of_birth: date
    mrn: str | None = None
    sex: Sex = Sex.UNKNOWN
    diabetes_type: DiabetesType = DiabetesType.TYPE1
    time_zone: str = "Europe/Berlin"
    glucose_units: GlucoseUnits = GlucoseUnits.MGDL
    target_preset: TargetPreset = TargetPreset.STANDARD
    email: str | None = None
    tags: list[str] = dataclasses.field(default_factory=list)


def _parse_date(text: str) -> date | None:
    for parse in (date.fromisoformat, _parse_dmy):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


def _parse_dmy(text: str) -> date:
    # Clinic staff type dates of birth as they read them off a card: 31.12.1980 or 31/12/1980.
    for sep in (".", "/"):
        parts = text.split(sep)
        if len(parts) == 3 and all(p.isdigit() for p in parts) and len(parts[2]) == 4:
            return date(int(parts[2]), int(parts[1]), int(parts[0]))
    raise ValueError(text)


def search_patients(
    session: Session,
    *,
    clinic_id: int,
    query: str = "",
    tag: str | None = None,
    sort: str = "name",
    page: int = 1,
    page_size: int = 25,
    clinical: bool = False,
    now: int | None = None,
) -> RosterPage:
    """One page of the clinic's roster.

    Args:
        query: matched against name (any part, case-insensitive), MRN (prefix) and date of
            birth (``YYYY-MM-DD`` or ``DD.MM.YYYY``).
        tag: only patients carrying this tag.
        sort: a key of :data:`SORTS`; unknown keys sort by name.
        page: 1-based page number; clamped to the last page.
        clinical: add each patient's 14-day metrics (``RosterPage.summaries``, refreshing the
            page's stale ones) and allow the :data:`CLINICAL_SORTS`; only for users who may
            see glucose data.
        now: epoch s UTC for that refresh (default: the current time).
    """
    conditions: list[Any] = [Patient.clinic_id == clinic_id]
    query = query.strip()[:MAX_QUERY_LENGTH]
    if query:
        needle = query.lower()
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        alternatives = [
            Patient.search_name.like(f"%{escaped}%", escape="\\"),  # type: ignore[attr-defined]
            func.lower(Patient.mrn).like(f"{escaped}%", escape="\\"),
        ]
        born = _parse_date(query)
        if born is not None:
            alternatives.append(Patient.date_of_birth == born)
        conditions.append(sa.or_(*alternatives))
    if tag:
        conditions.append(
            sa.exists().where(col(PatientTag.patient_id) == Patient.id, col(PatientTag.name) == tag)
        )
    total = session.exec(select(func.count()).select_from(Patient).where(*conditions)).one()
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    statement = select(Patient).where(*conditions)
    if clinical and sort in CLINICAL_SORTS:
        statement = statement.outerjoin(
            PatientMetricsSummary,
            sa.and_(
                col(PatientMetricsSummary.patient_id) == Patient.id,
                col(PatientMetricsSummary.period_days) == ROSTER_PERIOD,
                # A patient who stopped sharing sorts as "no data", never by their numbers.
                data_open_clause(Patient.id),
            ),
        ).order_by(*CLINICAL_SORTS[sort])
    else:
        statement = statement.order_by(*SORTS.get(sort, SORTS["name"]))
    rows = list(session.exec(statement.offset((page - 1) * page_size).limit(page_size)))
    ids = [p.id for p in rows if p.id is not None]
    return RosterPage(
        patients=rows,
        tags=tags_for(session, ids),
        total=total,
        page=page,
        page_size=page_size,
        summaries=roster_summaries(session, ids, now=now) if clinical else {},
    )


def tags_for(session: Session, patient_ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {pid: [] for pid in patient_ids}
    if patient_ids:
        for tag in session.exec(
            select(PatientTag)
            .where(PatientTag.patient_id.in_(patient_ids))  # type: ignore[attr-defined]
            .order_by(PatientTag.name)
        ):
            out[tag.patient_id].append(tag.name)
    return out


def clinic_tags(session: Session, clinic_id: int) -> list[str]:
    """Every tag used in the clinic, for the roster's filter."""
    return list(
        session.exec(
            select(PatientTag.name)
            .join(Patient, Patient.id == PatientTag.patient_id)  # type: ignore[arg-type]
            .where(Patient.clinic_id == clinic_id)
            .distinct()
            .order_by(PatientTag.name)
        )
    )


def patient_in_clinic(session: Session, clinic_id: int | None, patient_id: int) -> Patient | None:
    """The patient when it belongs to ``clinic_id``; ``None`` otherwise (answer 404 for both)."""
    if clinic_id is None:
        return None
    return session.exec(
        select(Patient).where(Patient.id == patient_id, Patient.clinic_id == clinic_id)
    ).first()


def _clean_tags(tags: list[str]) -> list[str]:
    cleaned = sorted({t.strip().lower()[:40] for t in tags if t.strip()})
    if len(cleaned) > MAX_TAGS:
        raise PatientError("tags", f"Use at most {MAX_TAGS} tags.")
    return cleaned


def _validate(session: Session, clinic: Clinic, details: PatientDetails, patient_id: int | None):
    if not details.first_name.strip():
        raise PatientError("first_name", "Enter the first name.")
    if not details.last_name.strip():
        raise PatientError("last_name", "Enter the last name.")
    today = utcnow().date()
    if details.date_of_birth > today:
        raise PatientError("date_of_birth", "The date of birth is in the future.")
    if details.date_of_birth.year < 1900:
        raise PatientError("date_of_birth", "The date of birth is before 1900.")
    if not is_valid_time_zone(details.time_zone):
        raise PatientError("time_zone", f"{details.time_zone!r} is not an IANA time zone.")
    mrn = (details.mrn or "").strip() or None
    if clinic.mrn_required and not mrn:
        raise PatientError("mrn", "This clinic requires an MRN.")
    if mrn and clinic.mrn_unique:
        clash = session.exec(
            select(Patient.id).where(
                Patient.clinic_id == clinic.id, Patient.mrn == mrn, Patient.id != patient_id
            )
        ).first()
        if clash is not None:
            raise PatientError("mrn", f"Another patient of this clinic has MRN {mrn}.")
    return mrn


def _apply(patient: Patient, details: PatientDetails, mrn: str | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    values = {
        "first_name": details.first_name.strip(),
        "last_name": details.last_name.strip(),
        "date_of_birth": details.date_of_birth,
        "mrn": mrn,
        "sex": details.sex,
        "diabetes_type": details.diabetes_type,
        "time_zone": details.time_zone,
        "glucose_units": details.glucose_units,
        "target_preset": details.target_preset,
        "email": (details.email or "").strip().lower() or None,
    }
    for name, value in values.items():
        if getattr(patient, name) != value:
            changes[name] = str(value) if value is not None else None
            setattr(patient, name, value)
    patient.search_name = f"{patient.first_name} {patient.last_name}".lower()
    return changes


def _set_tags(session: Session, patient_id: int, tags: list[str]) -> bool:
    current = set(tags_for(session, [patient_id])[patient_id])
    wanted = set(tags)
    for name in current - wanted:
        tag = session.get(PatientTag, (patient_id, name))
        if tag is not None:
            session.delete(tag)
    for name in wanted - current:
        session.add(PatientTag(patient_id=patient_id, name=name))
    return current != wanted


def create_patient(
    session: Session, *, actor: User | None, clinic: Clinic, details: PatientDetails
) -> Patient:
    """Add a patient to ``clinic``'s roster.

    Raises:
        PatientError: a field is missing or invalid (the error names it).
    """
    tags = _clean_tags(details.tags)
    mrn = _validate(session, clinic, details, None)
    patient = Patient(
        clinic_id=clinic.id,  # type: ignore[arg-type]
        first_name="",
        last_name="",
        date_of_birth=details.date_of_birth,
    )
    _apply(patient, details, mrn)
    session.add(patient)
    session.flush()
    _set_tags(session, patient.id, tags)  # type: ignore[arg-type]
    session.flush()
    record_audit(
        session, actor=actor, action="patient.create", clinic_id=clinic.id, patient_id=patient.id
    )
    return patient


def update_patient(
    session: Session, *, actor: User, clinic: Clinic, patient: Patient, details: PatientDetails
) -> Patient:
    """Change a patient's details; the audit entry lists the fields that changed.

    Raises:
        PatientError: a field is missing or invalid (the error names it).
    """
    if patient.clinic_id != clinic.id:
        raise PatientError("patient", "That patient is not on this clinic's roster.")
    tags = _clean_tags(details.tags)
    mrn = _validate(session, clinic, details, patient.id)
    changes = _apply(patient, details, mrn)
    if _set_tags(session, patient.id, tags):  # type: ignore[arg-type]
        changes["tags"] = tags
    if "target_preset" in changes:
        # The preset decides the target range of the cached percentages.
        mark_stale(session, patient.id)  # type: ignore[arg-type]
    if changes:
        patient.updated_at = utcnow()
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="patient.update",
            clinic_id=clinic.id,
            patient_id=patient.id,
            detail={"fields": sorted(changes)},
        )
    return patient


@dataclasses.dataclass(frozen=True)
class PatientOverview:
    patient: Patient
    tags: list[str]
    devices: list[Device]
    uploads: list[Upload]
    glucose: GlucoseReport | None = None  # clinicians and admins only


def patient_overview(
    session: Session,
    patient: Patient,
    *,
    uploads: int = 10,
    clinical: bool = False,
    now: int | None = None,
) -> PatientOverview:
    """The patient page's overview: devices and the most recent uploads.

    With ``clinical`` (users who may see glucose data) it adds the 14-day glucose report:
    metrics against the preset's goals, AGP and daily profiles, as of ``now`` (epoch s UTC,
    default the current time), refreshing the patient's cached summary when it is stale.
    """
    return PatientOverview(
        patient=patient,
        tags=tags_for(session, [patient.id])[patient.id],  # type: ignore[index,list-item]
        devices=list(
            session.exec(
                select(Device).where(Device.patient_id == patient.id).order_by(Device.kind)
            )
        ),
        uploads=list(
            session.exec(
                select(Upload)
                .where(Upload.patient_id == patient.id)
                .order_by(Upload.created_at.desc(), Upload.id.desc())  # type: ignore[attr-defined,union-attr]
                .limit(uploads)
            )
        ),
        glucose=glucose_report(session, patient, now=now) if clinical else None,
    )


def view_patient(
    session: Session,
    *,
    actor: User,
    patient: Patient,
    clinical: bool,
    ip_address: str | None = None,
    now: int | None = None,
) -> PatientOverview:
    """The patient page for a clinic user, audited as ``patient.view``.

    Args:
        actor: the signed-in clinic user (access to ``patient`` already checked).
        clinical: add the glucose report (users who may see clinical data).
        now: epoch s UTC of the report (default: the current time).
    """
    overview = patient_overview(session, patient, clinical=clinical, now=now)
    record_audit(
        session,
        actor=actor,
        action="patient.view",
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        ip_address=ip_address,
    )
    return overview


@dataclasses.dataclass(frozen=True)
class RosterView:
    """Everything the roster page shows: the page of patients, each one's latest share and
    whether its data is closed (stopped sharing), and the clinic's tags for the filter."""

    result: RosterPage
    shares: dict[int, ShareRequest]
    closed: set[int]
    tags: list[str]


def roster_view(
    session: Session,
    *,
    clinic_id: int,
    query: str = "",
    tag: str | None = None,
    sort: str = "name",
    page: int = 1,
    page_size: int = 25,
    clinical: bool = False,
    now: int | None = None,
) -> RosterView:
    """One page of the roster with share states (see :func:`search_patients` for the
    arguments); a patient who stopped sharing is listed in ``closed`` and shows no numbers."""
    result = search_patients(
        session,
        clinic_id=clinic_id,
        query=query,
        tag=tag,
        sort=sort,
        page=page,
        page_size=page_size,
        clinical=clinical,
        now=now,
    )
    ids = [p.id for p in result.patients if p.id is not None]
    return RosterView(
        result=result,
        shares=latest_shares(session, ids),
        closed=closed_patient_ids(session, result.patients),
        tags=clinic_tags(session, clinic_id),
    )


@dataclasses.dataclass(frozen=True)
class PatientHome:
    """A patient's own home page: each clinic record shared with them, with its numbers, and
    the share requests waiting for an answer."""

    overviews: list[PatientOverview]
    waiting: list[tuple[ShareRequest, Clinic]]
    clinics: dict[int, Clinic]


def patient_home(session: Session, *, account: User, now: int | None = None) -> PatientHome:
    """The ``/me`` page of a patient account: its linked records' overviews (glucose report
    included), audited as the patient viewing their own data, and the pending share requests.

    Only records linked to ``account`` are shown: the link exists exactly while a share is
    live (docs/sharing.md).
    """
    records = session.exec(
        select(Patient).where(Patient.account_id == account.id).order_by(col(Patient.id))
    )
    overviews = [patient_overview(session, p, clinical=True, now=now) for p in records]
    for overview in overviews:
        record_audit(
            session,
            actor=account,
            action="patient.view",
            clinic_id=overview.patient.clinic_id,
            patient_id=overview.patient.id,
            detail={"by": "patient"},
        )
    moment = utcnow()
    waiting = [
        (share, clinic)
        for share, clinic in shares_of_account(session, account)
        if share.state_at(moment) == ShareState.PENDING
    ]
    clinic_ids = [o.patient.clinic_id for o in overviews]
    clinics = {c.id: c for c in session.exec(select(Clinic).where(col(Clinic.id).in_(clinic_ids)))}
    return PatientHome(overviews=overviews, waiting=waiting, clinics=clinics)  # type: ignore[arg-type]
