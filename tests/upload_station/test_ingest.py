"""The ingest service: idempotent, atomic, deduplicated, device-aware."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from clinic_portal.records import (
    BasalKind,
    BasalSegment,
    Bolus,
    BolusSource,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    DeviceInfo,
    DeviceKind,
    MeterReading,
    PumpSettings,
    RecordBatch,
)
from clinic_portal.upload_station.ingest import COPY_THRESHOLD, IngestError, ingest_batch
from clinic_portal.upload_station.models import (
    EVENT_TABLES,
    BolusRow,
    CgmReadingRow,
    Device,
    Upload,
    UploadStatus,
)

PUMP = DeviceInfo("NG1234567H", "Medtronic", "MiniMed 780G", DeviceKind.PUMP)
CGM = DeviceInfo("SM-55501", "Medtronic", "Guardian 4", DeviceKind.CGM)
T0 = 1_700_000_000


def batch(n_cgm: int = 12, *, start: int = T0) -> RecordBatch:
    records: list = [
        CgmReading(device_serial=CGM.serial, time=start + 300 * i, utc_offset=60, glucose=100.0 + i)
        for i in range(n_cgm)
    ]
    records += [
        MeterReading(device_serial=PUMP.serial, time=start + 100, glucose=112.0),
        Bolus(
            device_serial=PUMP.serial,
            time=start + 200,
            delivered=4.5,
            programmed=4.5,
            source=BolusSource.WIZARD,
            wizard_carbs=45.0,
            recommended=4.5,
        ),
        BasalSegment(
            device_serial=PUMP.serial,
            time=start,
            rate=0.8,
            duration=3600,
            kind=BasalKind.SCHEDULED,
            schedule_name="Pattern 1",
        ),
        CarbEntry(device_serial=PUMP.serial, time=start + 200, carbs=45.0),
        DeviceEvent(
            device_serial=PUMP.serial, time=start + 400, kind=DeviceEventKind.PRIME, value=0.3
        ),
        PumpSettings(
            device_serial=PUMP.serial,
            time=start,
            active_schedule="Pattern 1",
            basal_schedules={"Pattern 1": [(0, 0.8), (21600, 1.1)]},
        ),
    ]
    return RecordBatch(source="test", devices=[PUMP, CGM], records=records)


def row_counts(db) -> dict[str, int]:
    return {
        t.__tablename__: db.exec(select(func.count()).select_from(t)).one() for t in EVENT_TABLES
    }


def test_first_upload_stores_everything(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic)
    upload = ingest_batch(db, batch(), clinic=clinic, actor=None, patient=patient)
    db.commit()
    assert upload.status == UploadStatus.DONE
    assert upload.counts == {
        "cgm": 12,
        "bg": 1,
        "bolus": 1,
        "basal": 1,
        "carbs": 1,
        "device_event": 1,
        "pump_settings": 1,
    }
    assert (upload.new_count, upload.duplicate_count) == (18, 0)
    assert (upload.first_time, upload.last_time) == (T0, T0 + 300 * 11)
    bolus = db.exec(select(BolusRow)).one()
    assert (bolus.source, bolus.wizard_carbs, bolus.patient_id) == ("wizard", 45.0, patient.id)
    devices = db.exec(select(Device).order_by(Device.serial)).all()
    assert [(d.serial, d.patient_id) for d in devices] == [
        (PUMP.serial, patient.id),
        (CGM.serial, patient.id),
    ]
    db.refresh(patient)
    assert patient.last_data_time == T0 + 300 * 11


def test_second_upload_of_the_same_data_adds_nothing(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic)
    ingest_batch(db, batch(), clinic=clinic, actor=None, patient=patient)
    db.commit()
    before = row_counts(db)
    again = ingest_batch(db, batch(), clinic=clinic, actor=None, patient=patient)
    db.commit()
    assert row_counts(db) == before
    assert (again.new_count, again.duplicate_count) == (0, 18)


def test_overlapping_upload_adds_only_the_new_part(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic)
    ingest_batch(db, batch(12), clinic=clinic, actor=None, patient=patient)
    later = ingest_batch(
        db, batch(12, start=T0 + 300 * 6), clinic=clinic, actor=None, patient=patient
    )
    assert later.counts["cgm"] == 6


def test_duplicates_within_a_batch_are_collapsed(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    data = batch(3)
    data.records.append(data.records[0])  # a source that repeats itself (CareLink)
    upload = ingest_batch(db, data, clinic=clinic, actor=None, patient=make_patient(clinic))
    assert upload.counts["cgm"] == 3 and upload.duplicate_count == 1


def test_known_serial_finds_its_patient(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic)
    ingest_batch(db, batch(2), clinic=clinic, actor=None, patient=patient)
    upload = ingest_batch(db, batch(4, start=T0 + 10_000), clinic=clinic, actor=None)
    assert upload.patient_id == patient.id and upload.status == UploadStatus.DONE


def test_unknown_serial_without_patient_goes_to_the_inbox(db, make_clinic) -> None:
    clinic = make_clinic()
    upload = ingest_batch(db, batch(), clinic=clinic, actor=None)
    assert upload.status == UploadStatus.UNASSIGNED and upload.patient_id is None
    assert sum(row_counts(db).values()) == 0


def test_device_of_another_patient_is_refused(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    ingest_batch(db, batch(), clinic=clinic, actor=None, patient=make_patient(clinic))
    db.commit()
    with pytest.raises(IngestError, match="belongs to another patient"):
        ingest_batch(db, batch(), clinic=clinic, actor=None, patient=make_patient(clinic))


def test_failed_batch_leaves_the_database_as_it_was(db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic)
    data = batch()
    data.records.append(CgmReading(device_serial="UNLISTED", time=T0, glucose=90.0))
    before = row_counts(db)
    uploads_before = db.exec(select(func.count()).select_from(Upload)).one()
    with pytest.raises(IngestError, match="UNLISTED"):
        ingest_batch(db, data, clinic=clinic, actor=None, patient=patient)
    db.rollback()
    assert row_counts(db) == before
    assert db.exec(select(func.count()).select_from(Upload)).one() == uploads_before


def test_same_serial_in_two_clinics_is_two_devices(db, make_clinic, make_patient) -> None:
    a, b = make_clinic("A"), make_clinic("B")
    ingest_batch(db, batch(), clinic=a, actor=None, patient=make_patient(a))
    upload = ingest_batch(db, batch(), clinic=b, actor=None, patient=make_patient(b))
    assert upload.new_count == 18  # nothing of clinic A's rows counts against clinic B


def test_database_refuses_a_duplicate_row(db, make_clinic, make_patient) -> None:
    """The uniqueness key is in the schema, not only in the service."""
    clinic = make_clinic()
    patient = make_patient(clinic)
    ingest_batch(db, batch(1), clinic=clinic, actor=None, patient=patient)
    db.commit()
    row = db.exec(select(CgmReadingRow)).one()
    with pytest.raises(sa.exc.IntegrityError):
        db.add(
            CgmReadingRow(
                patient_id=patient.id, device_id=row.device_id, time=row.time, glucose=55.0
            )
        )
        db.flush()
    db.rollback()


def test_large_batch_takes_the_bulk_path_and_stays_idempotent(db, make_clinic, make_patient):
    """Above COPY_THRESHOLD rows PostgreSQL uses COPY; the outcome must be the same."""
    clinic = make_clinic()
    patient = make_patient(clinic)
    first = ingest_batch(db, batch(2 * COPY_THRESHOLD), clinic=clinic, actor=None, patient=patient)
    db.commit()
    assert first.counts["cgm"] == 2 * COPY_THRESHOLD
    overlapping = ingest_batch(
        db,
        batch(2 * COPY_THRESHOLD, start=T0 + 300 * COPY_THRESHOLD),
        clinic=clinic,
        actor=None,
        patient=patient,
    )
    db.commit()
    assert overlapping.counts["cgm"] == COPY_THRESHOLD
    stored = db.exec(select(func.count()).select_from(CgmReadingRow)).one()
    assert stored == 3 * COPY_THRESHOLD
    newest = db.exec(select(CgmReadingRow).order_by(CgmReadingRow.time.desc())).first()
    assert (newest.glucose, newest.utc_offset, newest.patient_id) == (
        100.0 + 2 * COPY_THRESHOLD - 1,
        60,
        patient.id,
    )
