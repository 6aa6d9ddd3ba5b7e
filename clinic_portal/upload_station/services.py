"""Uploading export files: preview, store, the unassigned inbox and the summaries people read.

The flow (docs/uploads.md):

1. :func:`create_preview` parses the file, keeps it server-side as an upload row in the
   *preview* stage (status ``running``, ``progress_total == 0``) with its bytes in
   ``upload_payload``, and returns what the file holds. Nothing else is written.
2. :func:`start_storing` claims the preview and stores it in a job (a background thread with
   its own sessions): the file is parsed outside any write transaction while progress is
   written to the upload row in short transactions, then everything is stored in one
   transaction by :func:`~clinic_portal.upload_station.ingest.ingest_batch`, which fills in the
   same upload row. A failure marks the row ``failed`` with the message; no record is stored.
3. Devices are matched by serial within the clinic. An upload whose devices belong to nobody is
   ``unassigned``: its file stays in ``upload_payload`` (the inbox) until
   :func:`assign_upload` stores it for a patient, which links the devices so the next upload of
   the same serial lands on that patient directly.

:func:`import_file` is the same in one step (the CLI). Services flush and audit; the request or
job commits. The exceptions are the job functions (:func:`start_storing`, :func:`run_store_job`),
which are jobs and commit their own short transactions.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from datetime import datetime, timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, col, select

from clinic_portal.audit.trail import record_audit
from clinic_portal.auth.models import Clinic, User
from clinic_portal.db import get_engine, job_session
from clinic_portal.patients.models import Patient
from clinic_portal.patients.services import search_patients
from clinic_portal.records import DeviceInfo, RecordBatch
from clinic_portal.timeutil import local_datetime, utcnow
from clinic_portal.upload_station.importers import DEFAULT_MAX_BYTES as IMPORTER_MAX_BYTES
from clinic_portal.upload_station.importers import ImportFileError, parse_file, preview
from clinic_portal.upload_station.ingest import IngestError, ProgressCallback, ingest_batch
from clinic_portal.upload_station.models import Device, Upload, UploadPayload, UploadStatus

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = IMPORTER_MAX_BYTES
# A preview nobody stored is discarded after this long: the file holds patient data and has no
# reason to stay on the server.
PREVIEW_TTL = timedelta(hours=2)
# Storing a 90-day export takes about a second; a row still storing after an hour lost its
# worker (the process was restarted) and is marked failed.
STALLED_AFTER = timedelta(hours=1)
# Progress is written at most this often (seconds), each time in its own short transaction.
PROGRESS_INTERVAL = 0.25
MAX_FILENAME = 255

# What each count key means, in the words of the upload summary.
COUNT_LABELS: dict[str, str] = {
    "cgm": "CGM readings",
    "bg": "Blood glucose readings",
    "bolus": "Boluses",
    "basal": "Basal segments",
    "carbs": "Carbohydrate entries",
    "device_event": "Device events",
    "pump_settings": "Settings snapshots",
}
NO_NEW_DATA = "No new data"


class UploadError(ValueError):
    """An upload was refused; nothing was stored. The message is for the person uploading and
    names the line and column of the file where there is one."""


class UploadStage(enum.StrEnum):
    """Where an upload row is in its life (derived from status and progress, no extra column)."""

    PREVIEW = "preview"  # parsed and shown, waiting for "Store this data"
    STORING = "storing"  # a job is reading and storing the file
    DONE = "done"
    FAILED = "failed"
    UNASSIGNED = "unassigned"  # in the clinic's inbox


def upload_stage(upload: Upload) -> UploadStage:
    """The stage of ``upload``: a running row that no job has claimed yet is a preview."""
    if upload.status == UploadStatus.RUNNING:
        return UploadStage.PREVIEW if upload.progress_total == 0 else UploadStage.STORING
    return UploadStage(str(upload.status))


# --------------------------------------------------------------------------- parsing


def _parse(
    data: bytes,
    *,
    tz: str,
    max_bytes: int,
    progress: ProgressCallback | None = None,
    now: datetime | None = None,
) -> RecordBatch:
    try:
        return parse_file(data, tz=tz, max_bytes=max_bytes, progress=progress, now=now)
    except ImportFileError as exc:
        raise UploadError(str(exc)) from exc


def preview_file(
    data: bytes, *, tz: str, max_bytes: int = DEFAULT_MAX_BYTES, now: datetime | None = None
) -> dict[str, Any]:
    """What an export file holds, without storing anything (backs ``flask upload inspect``).

    Args:
        data: the file's bytes.
        tz: IANA zone in which device-local times are read.
        max_bytes: files larger than this are refused.
        now: bounds plausible timestamps (default: the current time).

    Returns:
        ``importers.preview``'s dict: format, devices, first/last (UTC ISO 8601), counts after
        in-file duplicates are collapsed, units_in_file, warnings.

    Raises:
        ImportFileError: the file cannot be read; the message names line and column.
    """
    batch = parse_file(data, tz=tz, max_bytes=max_bytes, now=now)
    return preview(batch, batch.source)


def clean_filename(name: str | None) -> str | None:
    """The uploaded file's own name without any client path, at most 255 characters."""
    if not name:
        return None
    base = PureWindowsPath(PurePosixPath(name).name).name.strip()
    return base[:MAX_FILENAME] or None


def _time_range(batch: RecordBatch) -> tuple[int | None, int | None]:
    times = [r.time for r in batch.records]
    return (min(times), max(times)) if times else (None, None)


def _zone(clinic: Clinic, patient: Patient | None) -> str:
    # Device clocks show local time where the patient lives; without a patient the clinic's
    # zone is the best guess until the upload is assigned (and re-read in the patient's zone).
    return patient.time_zone if patient is not None else clinic.time_zone


# --------------------------------------------------------------------------- preview


@dataclasses.dataclass(frozen=True)
class Preview:
    """A previewed file: its upload row (preview stage) and what the file holds."""

    upload: Upload
    content: dict[str, Any]
    time_zone: str


def create_preview(
    session: Session,
    data: bytes,
    *,
    filename: str | None,
    clinic: Clinic,
    actor: User,
    patient: Patient | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> Preview:
    """Parse an uploaded file and keep it server-side until someone stores or discards it.

    Args:
        data: the file's bytes (the caller read at most ``max_bytes + 1``).
        clinic: the clinic receiving the data.
        actor: who uploaded.
        patient: the patient chosen on the form, if any; only its time zone is used here
            (the choice is confirmed when storing).
        max_bytes: the configured upload limit (``UPLOAD_MAX_BYTES``).

    Returns:
        The preview: an upload row with status ``running`` and ``progress_total`` 0, its
        payload, and the importer's summary of the file.

    Raises:
        UploadError: the file cannot be imported (nothing is written).
    """
    if len(data) > max_bytes:
        raise UploadError(f"The file is larger than the {max_bytes:,}-byte upload limit.")
    zone = _zone(clinic, patient)
    batch = _parse(data, tz=zone, max_bytes=max_bytes, now=now)
    discard_stale_uploads(session, clinic_id=clinic.id)
    first, last = _time_range(batch)
    upload = Upload(
        clinic_id=clinic.id,  # type: ignore[arg-type]
        actor_id=actor.id,
        source=batch.source,
        filename=clean_filename(filename),
        status=UploadStatus.RUNNING,
        counts=batch.counts(),
        warnings=list(batch.warnings),
        first_time=first,
        last_time=last,
    )
    session.add(upload)
    session.flush()
    session.add(UploadPayload(upload_id=upload.id, data=data, time_zone=zone))  # type: ignore[arg-type]
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="upload.preview",
        clinic_id=clinic.id,
        patient_id=patient.id if patient else None,
        detail={"upload_id": upload.id, "format": batch.source, "bytes": len(data)},
        ip_address=ip_address,
    )
    return Preview(upload, preview(batch, batch.source), zone)


def preview_content(session: Session, upload: Upload) -> Preview | None:
    """Re-read a kept file to show its preview again (the file itself never left the server).

    Returns ``None`` when the upload is not a preview or its file is gone.
    """
    if upload_stage(upload) != UploadStage.PREVIEW:
        return None
    payload = session.get(UploadPayload, upload.id)
    if payload is None:
        return None
    try:
        batch = _parse(payload.data, tz=payload.time_zone, max_bytes=len(payload.data))
    except UploadError:
        return None
    return Preview(upload, preview(batch, batch.source), payload.time_zone)


def device_owners(session: Session, clinic_id: int, serials: list[str]) -> dict[str, Patient]:
    """The patient each already-known serial belongs to (serials nobody owns are left out)."""
    if not serials:
        return {}
    rows = session.exec(
        select(Device.serial, Patient)
        .join(Patient, col(Patient.id) == Device.patient_id)
        .where(Device.clinic_id == clinic_id, col(Device.serial).in_(serials))
    )
    return {serial: patient for serial, patient in rows}


def discard_upload(
    session: Session, upload: Upload, *, actor: User, ip_address: str | None = None
) -> None:
    """Throw away a preview that nobody wants to store (its file is deleted).

    Raises:
        UploadError: the upload is no longer a preview.
    """
    if upload_stage(upload) != UploadStage.PREVIEW:
        raise UploadError("Only an upload that has not been stored can be discarded.")
    upload_id = upload.id
    _delete_upload(session, upload)
    record_audit(
        session,
        actor=actor,
        action="upload.discard",
        clinic_id=upload.clinic_id,
        detail={"upload_id": upload_id},
        ip_address=ip_address,
    )


def _delete_upload(session: Session, upload: Upload) -> None:
    session.execute(sa.delete(UploadPayload).where(col(UploadPayload.upload_id) == upload.id))
    session.delete(upload)
    session.flush()


def discard_stale_uploads(
    session: Session, *, clinic_id: int | None = None, now: datetime | None = None
) -> int:
    """Delete previews older than :data:`PREVIEW_TTL` and fail rows stalled in storing.

    Called whenever a new preview is made (and fit for a scheduled cleanup job with
    ``clinic_id=None``). Returns how many rows were touched.
    """
    now = now or utcnow()
    running = [Upload.status == UploadStatus.RUNNING]
    if clinic_id is not None:
        running.append(Upload.clinic_id == clinic_id)
    touched = 0
    stale = session.exec(
        select(Upload).where(
            *running, Upload.progress_total == 0, Upload.created_at < now - PREVIEW_TTL
        )
    ).all()
    for upload in stale:
        _delete_upload(session, upload)
        touched += 1
    stalled = session.exec(
        select(Upload).where(
            *running, Upload.progress_total > 0, Upload.created_at < now - STALLED_AFTER
        )
    ).all()
    for upload in stalled:
        _mark_failed(
            session, upload, "storing was interrupted (the server restarted); upload again"
        )
        touched += 1
    session.flush()
    return touched


# --------------------------------------------------------------------------- storing


def _after_ingest(
    session: Session,
    upload: Upload,
    *,
    data: bytes,
    zone: str,
    batch: RecordBatch,
    actor: User | None,
    ip_address: str | None,
) -> None:
    """Keep the file of an unassigned upload for the inbox; drop it once the data is stored."""
    payload = session.get(UploadPayload, upload.id)
    if upload.status == UploadStatus.UNASSIGNED:
        # The inbox shows the file's date range; nothing is stored yet.
        upload.first_time, upload.last_time = _time_range(batch)
        if payload is None:
            session.add(UploadPayload(upload_id=upload.id, data=data, time_zone=zone))  # type: ignore[arg-type]
        else:
            payload.time_zone = zone
        session.flush()
        record_audit(
            session,
            actor=actor,
            action="upload.unassigned",
            clinic_id=upload.clinic_id,
            detail={"upload_id": upload.id, "devices": [d.serial for d in batch.devices]},
            ip_address=ip_address,
        )
    elif payload is not None:
        session.delete(payload)
        session.flush()


def import_file(
    session: Session,
    data: bytes,
    *,
    filename: str | None,
    clinic: Clinic,
    actor: User | None,
    patient: Patient | None = None,
    tz: str | None = None,
    progress: ProgressCallback | None = None,
    ip_address: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    now: datetime | None = None,
) -> Upload:
    """Parse and store an export file in one step (the CLI; the web uses preview + store).

    Args:
        data: the file's bytes.
        clinic: the clinic receiving the data; device serials are matched within it.
        actor: who uploaded (``None`` for a command-line import).
        patient: whose data this is; ``None`` to match by device serial, and send unknown
            devices to the clinic's inbox.
        tz: IANA zone for device-local times; default the patient's zone, else the clinic's.
        progress: called with (lines read, lines total) while the file is parsed.
        max_bytes: files larger than this are refused.

    Returns:
        The upload row: ``done`` (``new_count`` 0 means "No new data") or ``unassigned`` (the
        file is kept in ``upload_payload`` for the inbox).

    Raises:
        UploadError: the file is unreadable or the data cannot be stored (a device belongs to
            another patient); nothing was written.
    """
    if patient is not None and patient.clinic_id != clinic.id:
        raise UploadError("That patient is not on this clinic's roster.")
    zone = tz or _zone(clinic, patient)
    batch = _parse(data, tz=zone, max_bytes=max_bytes, progress=progress, now=now)
    try:
        upload = ingest_batch(
            session,
            batch,
            clinic=clinic,
            actor=actor,
            patient=patient,
            filename=clean_filename(filename),
            ip_address=ip_address,
        )
    except IngestError as exc:
        raise UploadError(str(exc)) from exc
    _after_ingest(
        session, upload, data=data, zone=zone, batch=batch, actor=actor, ip_address=ip_address
    )
    return upload


def _claim(session: Session, upload_id: int, *, from_status: UploadStatus, total: int) -> bool:
    """Move an upload on atomically; False when someone else got there first.

    A conditional UPDATE takes the row (PostgreSQL) or the write lock (SQLite) before anything
    else happens, so two clicks on "Store" or two staff assigning at once cannot both proceed.
    """
    condition = [col(Upload.id) == upload_id, col(Upload.status) == from_status.value]
    if from_status == UploadStatus.RUNNING:
        condition.append(col(Upload.progress_total) == 0)
    result = session.execute(
        sa.update(Upload)
        .where(*condition)
        .values(status=UploadStatus.RUNNING.value, progress_total=total, progress_done=0)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def start_storing(
    app: Flask,
    upload: Upload,
    *,
    patient: Patient | None,
    actor: User,
    ip_address: str | None = None,
    background: bool = True,
) -> threading.Thread | None:
    """Store a previewed upload in a job and return at once (the page then polls progress).

    The claim is committed at once in its own short transaction, so the progress page sees the
    upload as storing even before the job has started. With ``background=False`` the job runs
    in the calling thread (tests, single-user tools).

    Args:
        patient: the patient chosen for the data (already checked against the actor's clinic
            or own records); ``None`` to match devices by serial.

    Returns:
        The job's thread when it runs in the background, else ``None``.

    Raises:
        UploadError: the upload is not a preview any more (already stored or discarded).
    """
    if upload_stage(upload) != UploadStage.PREVIEW:
        raise UploadError("This upload is already being stored or was stored.")
    if patient is not None and patient.clinic_id != upload.clinic_id:
        raise UploadError("That patient is not on this clinic's roster.")
    with job_session(app) as session:
        claimed = _claim(session, upload.id, from_status=UploadStatus.RUNNING, total=1)  # type: ignore[arg-type]
    if not claimed:
        raise UploadError("This upload is already being stored or was stored.")
    upload.progress_total = 1
    kwargs = {
        "patient_id": patient.id if patient else None,
        "actor_id": actor.id,
        "ip_address": ip_address,
    }
    if not background:
        run_store_job(app, upload.id, **kwargs)  # type: ignore[arg-type]
        return None
    thread = threading.Thread(
        target=run_store_job,
        args=(app, upload.id),
        kwargs=kwargs,
        name=f"store-upload-{upload.id}",
        daemon=True,
    )
    thread.start()
    return thread


def _progress_writer(app: Flask, upload_id: int) -> ProgressCallback:
    """Write (done, total) to the upload row, each time in its own short transaction."""
    engine = get_engine(app)
    last = 0.0
    table = Upload.__table__  # type: ignore[attr-defined]

    def write(done: int, total: int) -> None:
        nonlocal last
        moment = time.monotonic()
        if moment - last < PROGRESS_INTERVAL and done < total:
            return
        last = moment
        with engine.begin() as conn:
            conn.execute(
                sa.update(table)
                .where(table.c.id == upload_id, table.c.status == UploadStatus.RUNNING.value)
                .values(progress_done=done, progress_total=max(total, 1))
            )

    return write


def run_store_job(
    app: Flask,
    upload_id: int,
    *,
    patient_id: int | None,
    actor_id: int | None,
    ip_address: str | None = None,
) -> None:
    """The job behind :func:`start_storing`: parse with progress, then store in one transaction.

    Never raises: any failure marks the upload ``failed`` with a message for the uploader and
    stores no record.
    """
    with app.app_context():
        try:
            with job_session(app) as session:
                payload = session.get(UploadPayload, upload_id)
                if payload is None:
                    raise UploadError("the file of this upload is no longer on the server")
                data = payload.data
                patient = session.get(Patient, patient_id) if patient_id else None
                zone = patient.time_zone if patient is not None else payload.time_zone
            # Parsing is the long part: it runs outside any write transaction (SQLite has one
            # writer at a time) while progress goes to the row in short transactions.
            batch = _parse(
                data, tz=zone, max_bytes=len(data), progress=_progress_writer(app, upload_id)
            )
            with job_session(app) as session:
                upload = session.get(Upload, upload_id)
                clinic = session.get(Clinic, upload.clinic_id) if upload else None
                if upload is None or clinic is None:
                    return
                actor = session.get(User, actor_id) if actor_id else None
                patient = session.get(Patient, patient_id) if patient_id else None
                try:
                    ingest_batch(
                        session,
                        batch,
                        clinic=clinic,
                        actor=actor,
                        patient=patient,
                        filename=upload.filename,
                        ip_address=ip_address,
                        upload=upload,
                    )
                except IngestError as exc:
                    raise UploadError(str(exc)) from exc
                _after_ingest(
                    session,
                    upload,
                    data=data,
                    zone=zone,
                    batch=batch,
                    actor=actor,
                    ip_address=ip_address,
                )
        except UploadError as exc:
            _fail_in_new_transaction(app, upload_id, str(exc), actor_id, ip_address)
        except Exception:  # the worker must never die silently
            log.exception("storing upload %s failed", upload_id)
            _fail_in_new_transaction(
                app,
                upload_id,
                "the upload failed because of an error in the portal; nothing was stored",
                actor_id,
                ip_address,
            )


def _mark_failed(session: Session, upload: Upload, message: str) -> None:
    upload.status = UploadStatus.FAILED
    upload.error = message[:2000]
    upload.finished_at = utcnow()
    session.execute(sa.delete(UploadPayload).where(col(UploadPayload.upload_id) == upload.id))
    session.flush()


def _fail_in_new_transaction(
    app: Flask, upload_id: int, message: str, actor_id: int | None, ip_address: str | None
) -> None:
    try:
        with job_session(app) as session:
            upload = session.get(Upload, upload_id)
            if upload is None:
                return
            _mark_failed(session, upload, message)
            record_audit(
                session,
                actor=session.get(User, actor_id) if actor_id else None,
                action="upload.failed",
                clinic_id=upload.clinic_id,
                detail={"upload_id": upload_id, "error": message[:500]},
                ip_address=ip_address,
            )
    except Exception:  # the database itself is failing: nothing more can be recorded
        log.exception("could not mark upload %s as failed", upload_id)


# --------------------------------------------------------------------------- inbox


@dataclasses.dataclass(frozen=True)
class InboxItem:
    """An unassigned upload and the devices its file names."""

    upload: Upload
    devices: list[DeviceInfo]
    uploader: str | None


def file_devices(session: Session, upload: Upload) -> list[DeviceInfo]:
    """The devices named by an upload's kept file (re-read from the payload; [] if gone)."""
    payload = session.get(UploadPayload, upload.id)
    if payload is None:
        return []
    try:
        return _parse(payload.data, tz=payload.time_zone, max_bytes=len(payload.data)).devices
    except UploadError:
        return []


def inbox(session: Session, clinic_id: int) -> list[InboxItem]:
    """The clinic's unassigned uploads, newest first, with the devices each file names.

    The device list is read from each kept file (there is no device-per-upload table); the
    inbox holds few files, each parsed in well under a second.
    """
    rows = session.exec(
        select(Upload, User.name)
        .join(User, col(User.id) == Upload.actor_id, isouter=True)
        .where(Upload.clinic_id == clinic_id, Upload.status == UploadStatus.UNASSIGNED)
        .order_by(col(Upload.created_at).desc(), col(Upload.id).desc())
    ).all()
    return [InboxItem(upload, file_devices(session, upload), name) for upload, name in rows]


def inbox_count(session: Session, clinic_id: int) -> int:
    """How many uploads wait in the clinic's inbox."""
    return session.exec(
        select(sa.func.count())
        .select_from(Upload)
        .where(Upload.clinic_id == clinic_id, Upload.status == UploadStatus.UNASSIGNED)
    ).one()


def assign_upload(
    session: Session,
    upload: Upload,
    patient: Patient,
    actor: User | None,
    *,
    ip_address: str | None = None,
) -> Upload:
    """Store an inbox upload for ``patient`` and remember its devices' serials.

    The file is re-read in the patient's time zone and stored through the ingest service with
    ``patient=``, which links every device of the file to the patient (the next upload of the
    same serial lands on the patient directly, as in diasend). The inbox row itself becomes the
    stored upload (status ``done``); its kept file is deleted.

    Raises:
        UploadError: the upload is not in the inbox (any more), the patient is in another
            clinic, or a device of the file belongs to another patient. Nothing was written.
    """
    if upload.status != UploadStatus.UNASSIGNED:
        raise UploadError("This upload is not waiting in the inbox any more.")
    if patient.clinic_id != upload.clinic_id:
        raise UploadError("That patient is not on this clinic's roster.")
    payload = session.get(UploadPayload, upload.id)
    clinic = session.get(Clinic, upload.clinic_id)
    if payload is None or clinic is None:
        raise UploadError("The file of this upload is no longer on the server.")
    data = payload.data
    batch = _parse(data, tz=patient.time_zone, max_bytes=len(data))
    if not _claim(session, upload.id, from_status=UploadStatus.UNASSIGNED, total=1):  # type: ignore[arg-type]
        raise UploadError("This upload is not waiting in the inbox any more.")
    try:
        ingest_batch(
            session,
            batch,
            clinic=clinic,
            actor=actor,
            patient=patient,
            filename=upload.filename,
            ip_address=ip_address,
            upload=upload,
        )
    except IngestError as exc:
        raise UploadError(str(exc)) from exc
    _after_ingest(
        session,
        upload,
        data=data,
        zone=patient.time_zone,
        batch=batch,
        actor=actor,
        ip_address=ip_address,
    )
    record_audit(
        session,
        actor=actor,
        action="upload.assign",
        clinic_id=upload.clinic_id,
        patient_id=patient.id,
        detail={"upload_id": upload.id, "devices": [d.serial for d in batch.devices]},
        ip_address=ip_address,
    )
    return upload


# --------------------------------------------------------------------------- looking up


def upload_in_clinic(session: Session, clinic_id: int | None, upload_id: int) -> Upload | None:
    """The upload when it belongs to ``clinic_id``; ``None`` otherwise (answer 404 for both)."""
    if clinic_id is None:
        return None
    return session.exec(
        select(Upload).where(Upload.id == upload_id, Upload.clinic_id == clinic_id)
    ).first()


def own_patient_records(session: Session, account_id: int) -> list[Patient]:
    """The patient records (one per clinic) linked to a patient's own account."""
    return list(
        session.exec(
            select(Patient).where(Patient.account_id == account_id).order_by(col(Patient.id))
        )
    )


def upload_of_account(session: Session, account_id: int, upload_id: int) -> Upload | None:
    """An upload a patient may see: one they made, or one stored on their own record."""
    own = select(Patient.id).where(Patient.account_id == account_id)
    return session.exec(
        select(Upload).where(
            Upload.id == upload_id,
            sa.or_(col(Upload.actor_id) == account_id, col(Upload.patient_id).in_(own)),
        )
    ).first()


def patient_choices(
    session: Session, clinic_id: int, *, query: str = "", limit: int = 200
) -> list[Patient]:
    """Patients to choose from when assigning (the roster search, first ``limit`` by name)."""
    return search_patients(
        session, clinic_id=clinic_id, query=query, sort="name", page=1, page_size=limit
    ).patients


# --------------------------------------------------------------------------- summaries


@dataclasses.dataclass(frozen=True)
class UploadSummary:
    """What an upload brought, in words and numbers for the summary page and the CLI."""

    headline: str  # "No new data" or "1,234 new records"
    first: str | None  # local "YYYY-MM-DD HH:MM" of the earliest new record
    last: str | None
    counts: list[tuple[str, int]]  # (label, records) for each record type present
    new_count: int
    duplicate_count: int
    warnings: list[str]
    time_zone: str


def upload_summary(upload: Upload, *, time_zone: str) -> UploadSummary:
    """Summarise an upload row: date range, counts by record type, duplicates, warnings.

    For a stored upload the counts and range are of the *new* records ("No new data" when a
    re-upload added nothing); for a preview or an inbox upload they describe the file.
    """
    stored = upload.status == UploadStatus.DONE
    counts = [(COUNT_LABELS.get(key, key), int(n)) for key, n in (upload.counts or {}).items() if n]
    if stored:
        headline = (
            NO_NEW_DATA
            if upload.new_count == 0
            else f"{upload.new_count:,} new record{'s' if upload.new_count != 1 else ''}"
        )
    else:
        total = sum(n for _, n in counts)
        headline = f"{total:,} record{'s' if total != 1 else ''} in the file"
    return UploadSummary(
        headline=headline,
        first=local_datetime(upload.first_time, time_zone) if upload.first_time else None,
        last=local_datetime(upload.last_time, time_zone) if upload.last_time else None,
        counts=counts,
        new_count=upload.new_count,
        duplicate_count=upload.duplicate_count,
        warnings=list(upload.warnings or []),
        time_zone=time_zone,
    )


def summary_text(summary: UploadSummary) -> str:
    """The summary as plain text lines (the CLI prints this)."""
    lines = [summary.headline]
    if summary.first and summary.last:
        lines.append(f"Data from {summary.first} to {summary.last} ({summary.time_zone})")
    lines += [f"  {label}: {n:,}" for label, n in summary.counts]
    lines.append(f"Duplicates skipped: {summary.duplicate_count:,}")
    lines += [f"Warning: {w}" for w in summary.warnings]
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class UploadPage:
    """Everything the upload page shows for one upload row."""

    upload: Upload
    stage: UploadStage
    summary: UploadSummary
    patient: Patient | None
    preview: Preview | None
    owners: dict[str, Patient]


def upload_page(
    session: Session,
    upload: Upload,
    *,
    actor: User,
    ip_address: str | None = None,
    audit: bool = True,
) -> UploadPage:
    """Gather an upload's page (preview, progress, or summary) and audit the view.

    The view is audited when it shows stored patient data (a finished upload of a patient);
    ``audit=False`` for the progress fragment's intermediate polls.
    """
    stage = upload_stage(upload)
    patient = session.get(Patient, upload.patient_id) if upload.patient_id else None
    clinic = session.get(Clinic, upload.clinic_id)
    zone = patient.time_zone if patient else (clinic.time_zone if clinic else "UTC")
    content = preview_content(session, upload) if stage == UploadStage.PREVIEW else None
    if content is not None:
        zone = content.time_zone
    serials = [d["serial"] for d in content.content["devices"]] if content else []
    if audit and patient is not None:
        record_audit(
            session,
            actor=actor,
            action="upload.view",
            clinic_id=upload.clinic_id,
            patient_id=patient.id,
            detail={"upload_id": upload.id},
            ip_address=ip_address,
        )
    return UploadPage(
        upload=upload,
        stage=stage,
        summary=upload_summary(upload, time_zone=zone),
        patient=patient,
        preview=content,
        owners=device_owners(session, upload.clinic_id, serials),
    )
