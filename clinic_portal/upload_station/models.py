"""Devices, uploads and the event tables that hold every normalized record.

Every event row stores its instant as integer epoch seconds UTC (``time``) plus the device's
offset from UTC in minutes (``utc_offset``): fast to load into numpy, no naive datetimes. Each table
has a uniqueness key so a re-upload inserts nothing twice (``INSERT ... ON CONFLICT DO NOTHING``
on SQLite and PostgreSQL), and an index on (patient, time) for the analytics loader.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from clinic_portal.timeutil import utcnow

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UploadStatus(enum.StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    UNASSIGNED = "unassigned"  # device serial not yet linked to a patient (the inbox)


class Device(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "serial", name="uq_device_clinic_serial"),
        sa.Index("ix_device_patient", "patient_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id")
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    serial: str = Field(max_length=64)
    manufacturer: str = Field(max_length=100)
    model: str = Field(max_length=100)
    kind: str = Field(max_length=8)  # records.DeviceKind
    created_at: datetime = Field(default_factory=utcnow)
    last_upload_at: datetime | None = None


class Upload(SQLModel, table=True):
    __table_args__ = (
        sa.Index("ix_upload_clinic_created", "clinic_id", "created_at"),
        sa.Index("ix_upload_patient_created", "patient_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    clinic_id: int = Field(foreign_key="clinic.id")
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    device_id: int | None = Field(default=None, foreign_key="device.id")
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    source: str = Field(max_length=40)
    filename: str | None = Field(default=None, max_length=255)
    status: UploadStatus = Field(
        default=UploadStatus.RUNNING, sa_column=Column(sa.String(12), nullable=False)
    )
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    new_count: int = 0
    duplicate_count: int = 0
    rejected_count: int = 0
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    first_time: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    last_time: int | None = Field(default=None, sa_column=Column(sa.BigInteger))
    error: str | None = None
    progress_done: int = 0
    progress_total: int = 0


class UploadPayload(SQLModel, table=True):
    """The file of an upload whose devices match no patient, kept until staff assign it
    (the unassigned-uploads inbox); deleted once its data is stored. A table of its own so that
    listing uploads never loads file contents."""

    __tablename__ = "upload_payload"

    upload_id: int = Field(foreign_key="upload.id", primary_key=True, ondelete="CASCADE")
    data: bytes = Field(sa_column=Column(sa.LargeBinary, nullable=False))
    time_zone: str = Field(max_length=64)


def _event_table_args(name: str, *unique: str) -> tuple[Any, ...]:
    return (
        sa.UniqueConstraint("device_id", "time", *unique, name=f"uq_{name}_device_time"),
        sa.Index(f"ix_{name}_patient_time", "patient_id", "time"),
    )


class EventColumns(SQLModel):
    """The columns every event table shares."""

    id: int | None = Field(default=None, sa_type=BigId, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id")
    device_id: int = Field(foreign_key="device.id")
    upload_id: int | None = Field(default=None, foreign_key="upload.id")
    time: int = Field(sa_type=sa.BigInteger)
    utc_offset: int = Field(default=0, sa_type=sa.SmallInteger)
    source_id: str | None = Field(default=None, max_length=64)


class CgmReadingRow(EventColumns, table=True):
    __tablename__ = "cgm_reading"
    __table_args__ = _event_table_args("cgm_reading")

    glucose: float  # mg/dL
    flag: str = Field(default="", max_length=12)


class MeterReadingRow(EventColumns, table=True):
    __tablename__ = "meter_reading"
    __table_args__ = _event_table_args("meter_reading")

    glucose: float  # mg/dL
    source: str = Field(default="meter", max_length=12)
    flag: str = Field(default="", max_length=12)


class BolusRow(EventColumns, table=True):
    __tablename__ = "bolus"
    __table_args__ = _event_table_args("bolus", "long_acting")

    kind: str = Field(default="normal", max_length=8)
    source: str = Field(default="manual", max_length=10)
    programmed: float | None = None
    delivered: float = 0.0
    extended: float | None = None
    duration: int | None = None
    wizard_carbs: float | None = None
    wizard_bg: float | None = None
    carb_ratio: float | None = None
    sensitivity: float | None = None
    target_low: float | None = None
    target_high: float | None = None
    insulin_on_board: float | None = None
    food_estimate: float | None = None
    correction_estimate: float | None = None
    recommended: float | None = None
    long_acting: bool = False


class BasalSegmentRow(EventColumns, table=True):
    __tablename__ = "basal_segment"
    __table_args__ = _event_table_args("basal_segment", "kind")

    kind: str = Field(default="scheduled", max_length=10)
    rate: float = 0.0  # U/h
    duration: int = 0  # s
    percent: float | None = None
    schedule_name: str | None = Field(default=None, max_length=40)


class CarbEntryRow(EventColumns, table=True):
    __tablename__ = "carb_entry"
    __table_args__ = _event_table_args("carb_entry")

    carbs: float  # g


class DeviceEventRow(EventColumns, table=True):
    __tablename__ = "device_event"
    __table_args__ = _event_table_args("device_event", "kind")

    kind: str = Field(max_length=20)
    value: float | None = None
    text: str | None = Field(default=None, max_length=500)
    duration: int | None = None


class SettingsSnapshotRow(EventColumns, table=True):
    """Pump therapy settings or CGM alert settings as they were at ``time``."""

    __tablename__ = "settings_snapshot"
    __table_args__ = _event_table_args("settings_snapshot", "kind")

    kind: str = Field(max_length=8)  # "pump" or "cgm"
    settings: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


EVENT_TABLES: tuple[type[EventColumns], ...] = (
    CgmReadingRow,
    MeterReadingRow,
    BolusRow,
    BasalSegmentRow,
    CarbEntryRow,
    DeviceEventRow,
    SettingsSnapshotRow,
)
