"""The ingest service: normalized records in, deduplicated rows and one upload row out.

Every source (export files, USB/BLE devices, Nightscout sync, the demo generator) calls
:func:`ingest_batch`. It only flushes; the request or job that called it commits once, so a batch
that fails part-way leaves the database exactly as it was.

Deduplication works at two levels:

* within the batch, records with the same uniqueness key are collapsed (a source that repeats
  itself, such as CareLink's duplicated bolus rows, counts them as duplicates);
* against the database, keys already stored for the device are skipped before inserting, and the
  insert itself is ``ON CONFLICT DO NOTHING`` so two concurrent uploads of the same file cannot
  store a record twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from clinic_portal.audit.trail import record_audit
from clinic_portal.auth.models import Clinic, User
from clinic_portal.patients.models import Patient
from clinic_portal.records import (
    COUNT_KEYS,
    AnyRecord,
    BasalSegment,
    Bolus,
    CarbEntry,
    CgmReading,
    CgmSettings,
    DeviceEvent,
    MeterReading,
    PumpSettings,
    RecordBatch,
)
from clinic_portal.signals import records_ingested
from clinic_portal.timeutil import utcnow
from clinic_portal.upload_station.models import (
    BasalSegmentRow,
    BolusRow,
    CarbEntryRow,
    CgmReadingRow,
    Device,
    DeviceEventRow,
    MeterReadingRow,
    SettingsSnapshotRow,
    Upload,
    UploadStatus,
)

ProgressCallback = Callable[[int, int], None]

# Rows are inserted in chunks: small enough for SQLite's variable limit with insertmanyvalues,
# large enough that a 90-day export is a few dozen statements.
CHUNK = 2000


class IngestError(ValueError):
    """The batch cannot be stored; nothing was written. The message says why."""


@dataclasses.dataclass(frozen=True)
class _TableSpec:
    table: sa.Table
    key: tuple[str, ...]  # uniqueness key after device_id (matches the table's constraint)
    to_row: Callable[[Any], dict[str, Any]]


def _table(model: type) -> sa.Table:
    """The Core table behind a SQLModel class (for bulk inserts without ORM objects)."""
    return model.__table__  # type: ignore[attr-defined]


def _common(record: AnyRecord) -> dict[str, Any]:
    return {"time": record.time, "utc_offset": record.utc_offset, "source_id": record.source_id}


def _row_fields(record: Any, *names: str) -> dict[str, Any]:
    row = _common(record)
    for name in names:
        value = getattr(record, name)
        row[name] = value.value if hasattr(value, "value") else value
    return row


def _pump_settings_row(record: PumpSettings) -> dict[str, Any]:
    return {**_common(record), "kind": "pump", "settings": record.settings_json()}


def _cgm_settings_row(record: CgmSettings) -> dict[str, Any]:
    return {
        **_common(record),
        "kind": "cgm",
        "settings": {
            "low_alert": record.low_alert,
            "high_alert": record.high_alert,
            "urgent_low": record.urgent_low,
        },
    }


_BOLUS_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(Bolus)
    if f.name not in {"device_serial", "time", "utc_offset", "source_id"}
)

SPECS: dict[type, _TableSpec] = {
    CgmReading: _TableSpec(
        _table(CgmReadingRow),
        ("time",),
        lambda r: _row_fields(r, "glucose", "flag"),
    ),
    MeterReading: _TableSpec(
        _table(MeterReadingRow),
        ("time",),
        lambda r: _row_fields(r, "glucose", "source", "flag"),
    ),
    Bolus: _TableSpec(
        _table(BolusRow),
        ("time", "long_acting"),
        lambda r: _row_fields(r, *_BOLUS_FIELDS),
    ),
    BasalSegment: _TableSpec(
        _table(BasalSegmentRow),
        ("time", "kind"),
        lambda r: _row_fields(r, "kind", "rate", "duration", "percent", "schedule_name"),
    ),
    CarbEntry: _TableSpec(_table(CarbEntryRow), ("time",), lambda r: _row_fields(r, "carbs")),
    DeviceEvent: _TableSpec(
        _table(DeviceEventRow),
        ("time", "kind"),
        lambda r: _row_fields(r, "kind", "value", "text", "duration"),
    ),
    PumpSettings: _TableSpec(_table(SettingsSnapshotRow), ("time", "kind"), _pump_settings_row),
    CgmSettings: _TableSpec(_table(SettingsSnapshotRow), ("time", "kind"), _cgm_settings_row),
}


# Above this many rows PostgreSQL gets COPY into a scratch table and one INSERT ... SELECT:
# psycopg's executemany still sends one INSERT ... ON CONFLICT per row (about 0.6 s for a 90-day
# CareLink export, measured by bench/imports.py), COPY streams them in one round trip.
COPY_THRESHOLD = 500


def _insert(
    session: Session, table: sa.Table, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        if len(rows) >= COPY_THRESHOLD and not _has_json(table):
            _copy_insert(session, table, rows, key)
            return
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing(
            index_elements=["device_id", *key]
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["device_id", *key])
    else:  # pragma: no cover - only the two supported engines exist
        raise IngestError(f"unsupported database {dialect}")
    for start in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[start : start + CHUNK])


def _has_json(table: sa.Table) -> bool:
    return any(isinstance(column.type, sa.JSON) for column in table.columns)


def _copy_insert(
    session: Session, table: sa.Table, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> None:
    """PostgreSQL bulk path: COPY into a temporary table, then one conflict-safe INSERT."""
    columns = list(rows[0])
    names = ", ".join(f'"{c}"' for c in columns)
    scratch = f"ingest_{table.name}"
    # Identifiers come from our own table metadata, never from input.
    connection = session.connection()
    connection.exec_driver_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS "{scratch}" ON COMMIT DROP AS '  # noqa: S608
        f'SELECT {names} FROM "{table.name}" WITH NO DATA'
    )
    connection.exec_driver_sql(f'TRUNCATE "{scratch}"')
    driver = connection.connection.driver_connection
    with (
        driver.cursor() as cursor,  # type: ignore[union-attr]
        cursor.copy(f'COPY "{scratch}" ({names}) FROM STDIN') as copy,
    ):
        for row in rows:
            copy.write_row([row[c] for c in columns])
    conflict = ", ".join(f'"{c}"' for c in ("device_id", *key))
    connection.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{scratch}" '  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING"
    )


def resolve_devices(
    session: Session, batch: RecordBatch, *, clinic: Clinic, patient: Patient | None
) -> tuple[dict[str, Device], Patient | None]:
    """Find or create the batch's devices and decide whose data this is.

    A known serial lands on its patient. With ``patient`` given, unknown serials are linked to
    that patient. Without it, all devices must already belong to one patient; otherwise the
    result's patient is ``None`` (the upload goes to the clinic's unassigned inbox).

    Raises:
        IngestError: a device already belongs to another patient, or the batch names none.
    """
    if not batch.devices:
        raise IngestError("the data names no device")
    serials = [d.serial for d in batch.devices]
    known = {
        d.serial: d
        for d in session.exec(
            select(Device).where(Device.clinic_id == clinic.id, Device.serial.in_(serials))  # type: ignore[attr-defined]
        )
    }
    owners = {d.patient_id for d in known.values() if d.patient_id is not None}
    if patient is not None:
        others = owners - {patient.id}
        if others:
            serial = next(s for s, d in known.items() if d.patient_id in others)
            raise IngestError(
                f"device {serial} belongs to another patient of this clinic; "
                "check the patient, or reassign the device first"
            )
        owner: Patient | None = patient
    elif (
        len(owners) == 1
        and len(known) == len(set(serials))
        and all(d.patient_id is not None for d in known.values())
    ):
        owner = session.get(Patient, owners.pop())
    else:
        owner = None
    devices: dict[str, Device] = {}
    now = utcnow()
    for info in batch.devices:
        device = known.get(info.serial)
        if device is None:
            device = Device(
                clinic_id=clinic.id,  # type: ignore[arg-type]
                serial=info.serial,
                manufacturer=info.manufacturer,
                model=info.model,
                kind=str(info.kind),
            )
            session.add(device)
        if owner is not None:
            device.patient_id = owner.id
            device.last_upload_at = now
        devices[info.serial] = device
    session.flush()
    return devices, owner


def ingest_batch(
    session: Session,
    batch: RecordBatch,
    *,
    clinic: Clinic,
    actor: User | None,
    patient: Patient | None = None,
    filename: str | None = None,
    progress: ProgressCallback | None = None,
    ip_address: str | None = None,
    upload: Upload | None = None,
) -> Upload:
    """Store a batch of records for one patient, idempotently, and return its upload row.

    Args:
        session: the caller's session; this function flushes but never commits.
        batch: the records and the devices they came from.
        clinic: the clinic receiving the data (device serials are matched within it).
        actor: who uploaded (``None`` for jobs such as the demo seeder).
        patient: whose data this is; ``None`` to match by device serial.
        filename: the uploaded file's name, for the upload history.
        progress: called with (records done, records total) as chunks are stored.
        upload: an upload row created earlier to fill in instead of a new one (the portal's
            preview row that the progress page polls, or an inbox upload being assigned); its
            clinic, uploader, file name and creation time are kept.

    Returns:
        The upload row: status ``done`` with counts new/duplicate per record type, or
        ``unassigned`` when no patient could be found for the devices (nothing stored).

    Raises:
        IngestError: the batch is inconsistent (a record names a device the batch does not
            list, a device belongs to another patient). Nothing was written.
    """
    devices, owner = resolve_devices(session, batch, clinic=clinic, patient=patient)
    if upload is None:
        upload = Upload(
            clinic_id=clinic.id,  # type: ignore[arg-type]
            actor_id=actor.id if actor else None,
            source=batch.source,
            filename=filename,
        )
    upload.patient_id = owner.id if owner else None
    upload.device_id = devices[batch.devices[0].serial].id
    upload.source = batch.source
    upload.warnings = list(batch.warnings)
    upload.progress_total = len(batch.records)
    upload.error = None
    session.add(upload)
    session.flush()
    if owner is None:
        upload.status = UploadStatus.UNASSIGNED
        upload.counts = batch.counts()
        upload.finished_at = utcnow()
        session.flush()
        return upload

    grouped = _group(batch.records, devices)
    counts_new = dict.fromkeys(batch.counts(), 0)
    duplicates = 0
    done = 0
    first: int | None = None
    last: int | None = None
    for (record_type, device_id), records in grouped.items():
        spec = SPECS[record_type]
        key_names = spec.key
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        for record in records:
            row = spec.to_row(record)
            key = tuple(row[k] for k in key_names)
            if key in rows:
                duplicates += 1
                continue
            rows[key] = row
        existing = _existing_keys(session, spec, device_id, rows)
        fresh = [row for key, row in rows.items() if key not in existing]
        duplicates += len(rows) - len(fresh)
        for row in fresh:
            row["patient_id"] = owner.id
            row["device_id"] = device_id
            row["upload_id"] = upload.id
        if fresh:
            _insert(session, spec.table, fresh, key_names)
            times = [row["time"] for row in fresh]
            first = min(times) if first is None else min(first, *times)
            last = max(times) if last is None else max(last, *times)
        counts_new[COUNT_KEYS[record_type]] += len(fresh)
        done += len(records)
        if progress is not None:
            progress(done, len(batch.records))

    upload.counts = counts_new
    upload.new_count = sum(counts_new.values())
    upload.duplicate_count = duplicates
    upload.first_time, upload.last_time = first, last
    upload.status = UploadStatus.DONE
    upload.progress_done = len(batch.records)
    upload.finished_at = utcnow()
    owner.last_upload_at = upload.finished_at
    if last is not None and (owner.last_data_time is None or last > owner.last_data_time):
        owner.last_data_time = last
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="upload.ingest",
        clinic_id=clinic.id,
        patient_id=owner.id,
        detail={
            "upload_id": upload.id,
            "source": batch.source,
            "new": upload.new_count,
            "duplicates": duplicates,
        },
        ip_address=ip_address,
    )
    records_ingested.send(session, patient_id=owner.id, upload=upload)
    return upload


def _group(
    records: Iterable[AnyRecord], devices: dict[str, Device]
) -> dict[tuple[type, int], list[AnyRecord]]:
    grouped: dict[tuple[type, int], list[AnyRecord]] = {}
    for record in records:
        device = devices.get(record.device_serial)
        if device is None:
            raise IngestError(
                f"a {type(record).__name__} record names device {record.device_serial!r}, "
                "which the data does not list"
            )
        grouped.setdefault((type(record), device.id), []).append(record)  # type: ignore[arg-type]
    return grouped


def _existing_keys(
    session: Session, spec: _TableSpec, device_id: int, rows: dict[tuple[Any, ...], dict[str, Any]]
) -> set[tuple[Any, ...]]:
    if not rows:
        return set()
    times = [key[0] for key in rows]
    table = spec.table
    columns = [table.c[name] for name in spec.key]
    query = sa.select(*columns).where(
        table.c.device_id == device_id, table.c.time.between(min(times), max(times))
    )
    return {tuple(row) for row in session.execute(query)}
