"""Every table of the portal, imported in one place for Alembic and ``SQLModel.metadata``."""

from clinic_portal.analytics.summary import PatientMetricsSummary
from clinic_portal.auth.models import AuditEvent, Clinic, Role, User
from clinic_portal.patients.models import (
    DiabetesType,
    GlucoseUnits,
    Patient,
    PatientTag,
    Sex,
    TargetPreset,
)
from clinic_portal.upload_station.models import (
    EVENT_TABLES,
    BasalSegmentRow,
    BolusRow,
    CarbEntryRow,
    CgmReadingRow,
    Device,
    DeviceEventRow,
    MeterReadingRow,
    SettingsSnapshotRow,
    Upload,
    UploadPayload,
    UploadStatus,
)

__all__ = [
    "EVENT_TABLES",
    "AuditEvent",
    "BasalSegmentRow",
    "BolusRow",
    "CarbEntryRow",
    "CgmReadingRow",
    "Clinic",
    "Device",
    "DeviceEventRow",
    "DiabetesType",
    "GlucoseUnits",
    "MeterReadingRow",
    "Patient",
    "PatientMetricsSummary",
    "PatientTag",
    "Role",
    "SettingsSnapshotRow",
    "Sex",
    "TargetPreset",
    "Upload",
    "UploadPayload",
    "UploadStatus",
    "User",
]
