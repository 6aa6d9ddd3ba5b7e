"""Every table of the portal, imported in one place for Alembic and ``SQLModel.metadata``.

Only model modules are imported here (a test checks that this loads no compute code such as
numba), so Alembic and the command line start quickly.
"""

from clinic_portal.analytics.models import PatientMetricsSummary
from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Clinic, PasswordResetToken, Role, User, VerificationCode
from clinic_portal.patients.models import (
    DiabetesType,
    GlucoseUnits,
    Patient,
    PatientTag,
    Sex,
    TargetPreset,
)
from clinic_portal.sharing.models import ShareRequest, ShareState
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
    "PasswordResetToken",
    "Patient",
    "PatientMetricsSummary",
    "PatientTag",
    "Role",
    "SettingsSnapshotRow",
    "Sex",
    "ShareRequest",
    "ShareState",
    "TargetPreset",
    "Upload",
    "UploadPayload",
    "UploadStatus",
    "User",
    "VerificationCode",
]
