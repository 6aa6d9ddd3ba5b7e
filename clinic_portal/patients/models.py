"""Patients on a clinic's roster.

``TargetPreset`` is defined once, with its goals, in ``analytics.targets`` and re-exported here.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from clinic_portal.analytics.targets import TargetPreset
from clinic_portal.timeutil import utcnow


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class DiabetesType(enum.StrEnum):
    TYPE1 = "type1"
    TYPE2 = "type2"
    GESTATIONAL = "gestational"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "type1": "Type 1",
            "type2": "Type 2",
            "gestational": "Gestational",
            "other": "Other",
        }[self.value]


class GlucoseUnits(enum.StrEnum):
    MGDL = "mg/dL"
    MMOLL = "mmol/L"


class Patient(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_patient_clinic_name", "clinic_id", "last_name", "first_name"),
        sa.Index("ix_patient_clinic_mrn", "clinic_id", "mrn"),
        sa.Index("ix_patient_clinic_dob", "clinic_id", "date_of_birth"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id")
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    # Lower-cased "first last" for case-insensitive search that works the same on both engines.
    search_name: str = Field(default="", max_length=210)
    date_of_birth: date
    mrn: str | None = Field(default=None, max_length=64)
    sex: Sex = Field(default=Sex.UNKNOWN, sa_column=Column(sa.String(16), nullable=False))
    diabetes_type: DiabetesType = Field(
        default=DiabetesType.TYPE1, sa_column=Column(sa.String(16), nullable=False)
    )
    time_zone: str = Field(default="Europe/Berlin", max_length=64)
    glucose_units: GlucoseUnits = Field(
        default=GlucoseUnits.MGDL, sa_column=Column(sa.String(8), nullable=False)
    )
    target_preset: TargetPreset = Field(
        default=TargetPreset.STANDARD, sa_column=Column(sa.String(24), nullable=False)
    )
    email: str | None = Field(default=None, max_length=254)
    # The patient's own login, when they have one.
    account_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Kept by the ingest service so the roster can sort by data recency without a join.
    last_upload_at: datetime | None = None
    last_data_time: int | None = Field(default=None, sa_type=sa.BigInteger)

    @property
    def display_name(self) -> str:
        return f"{self.last_name}, {self.first_name}"


class PatientTag(SQLModel, table=True):
    __tablename__ = "patient_tag"
    __table_args__ = (sa.Index("ix_patient_tag_name", "name"),)

    patient_id: int = Field(foreign_key="patient.id", primary_key=True, ondelete="CASCADE")
    name: str = Field(max_length=40, primary_key=True)


__all__ = ["DiabetesType", "GlucoseUnits", "Patient", "PatientTag", "Sex", "TargetPreset"]
