"""Create the demo clinic through the same services every real source uses."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, func, select

from clinic_portal.auth.models import Clinic, Role
from clinic_portal.auth.services import create_user
from clinic_portal.demo.generator import generate_clinic
from clinic_portal.patients.models import DiabetesType, GlucoseUnits, Sex, TargetPreset
from clinic_portal.patients.services import PatientDetails, create_patient
from clinic_portal.upload_station.ingest import ingest_batch

DEMO_CLINIC_NAME = "Demo Diabetes Clinic"
# Demo accounts only: a seeded demo database is for trying the portal on one's own machine and
# the production start refuses to run with development settings.
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105
DEMO_LOGINS: tuple[tuple[str, str, str], ...] = (
    ("admin@demo.clinic", DEMO_PASSWORD, "clinic admin"),
    ("clinician@demo.clinic", DEMO_PASSWORD, "clinician"),
    ("staff@demo.clinic", DEMO_PASSWORD, "staff"),
    ("patient1@demo.clinic", DEMO_PASSWORD, "patient"),
    ("patient2@demo.clinic", DEMO_PASSWORD, "patient"),
)
_ROLES = {
    "clinic admin": Role.CLINIC_ADMIN,
    "clinician": Role.CLINICIAN,
    "staff": Role.STAFF,
    "patient": Role.PATIENT,
}


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    clinic_name: str
    clinic_id: int
    patients: int
    records: int


def clinic_is_empty(session: Session) -> bool:
    return session.exec(select(func.count()).select_from(Clinic)).one() == 0


def seed_demo_clinic(
    session: Session,
    *,
    n_patients: int,
    days: int,
    seed: int,
    end: datetime,
    progress: Callable[[], None] | None = None,
) -> SeedSummary:
    """Create the demo clinic, its five demo accounts and ``n_patients`` patients with data.

    Args:
        n_patients: how many patients (each with ``days`` days of device data ending at ``end``).
        seed: the generator seed; the same seed gives the same clinic.
        progress: called once per patient stored.
    """
    clinic = Clinic(name=DEMO_CLINIC_NAME, time_zone="Europe/Berlin")
    session.add(clinic)
    session.flush()
    accounts = {}
    for email, password, role_name in DEMO_LOGINS:
        role = _ROLES[role_name]
        accounts[email] = create_user(
            session,
            actor=None,
            clinic=None if role == Role.PATIENT else clinic,
            email=email,
            name=_demo_name(email, role_name),
            role=role,
            password=password,
        )
    patient_accounts = [accounts["patient1@demo.clinic"], accounts["patient2@demo.clinic"]]
    records = 0
    count = 0
    for demo in generate_clinic(n_patients, days=days, seed=seed, end=end):
        patient = create_patient(
            session,
            actor=None,
            clinic=clinic,
            details=PatientDetails(
                first_name=demo.first_name,
                last_name=demo.last_name,
                date_of_birth=demo.date_of_birth,
                mrn=demo.mrn,
                sex=Sex(demo.sex),
                diabetes_type=DiabetesType(demo.diabetes_type),
                time_zone=demo.time_zone,
                glucose_units=GlucoseUnits(demo.glucose_units),
                target_preset=TargetPreset(demo.target_preset),
                tags=list(demo.tags),
            ),
        )
        if count < len(patient_accounts):
            account = patient_accounts[count]
            patient.account_id = account.id
            patient.email = account.email
        upload = ingest_batch(session, demo.batch, clinic=clinic, actor=None, patient=patient)
        records += upload.new_count
        count += 1
        if progress is not None:
            progress()
    session.flush()
    return SeedSummary(DEMO_CLINIC_NAME, clinic.id or 0, count, records)


def _demo_name(email: str, role_name: str) -> str:
    if role_name == "patient":
        return "Demo Patient " + email[len("patient")]
    return "Demo " + role_name.title()
