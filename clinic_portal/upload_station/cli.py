"""``flask upload``: look inside an export file, or import one for a patient.

``flask upload inspect FILE [--tz ZONE]`` prints one JSON object describing the file and stores
nothing; ``flask upload import FILE (--patient ID | --mrn MRN) [--clinic ID]`` stores it in one
transaction and prints the upload summary. Errors go to stderr with a non-zero exit status.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlmodel import Session, col, select

from clinic_portal.auth.models import Clinic
from clinic_portal.db import job_session
from clinic_portal.patients.models import Patient
from clinic_portal.timeutil import is_valid_time_zone
from clinic_portal.upload_station.importers import ImportFileError
from clinic_portal.upload_station.services import (
    UploadError,
    import_file,
    preview_file,
    summary_text,
    upload_summary,
)

upload_cli = AppGroup("upload", help="Inspect and import device export files.")

FILE = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


def _read(path: Path) -> bytes:
    limit = current_app.config["UPLOAD_MAX_BYTES"]
    with path.open("rb") as handle:
        # One byte over the limit is enough to refuse the file without reading all of it.
        return handle.read(limit + 1)


@upload_cli.command("inspect")
@click.argument("file", type=FILE)
@click.option(
    "--tz",
    "zone",
    default="UTC",
    show_default=True,
    help="IANA zone in which the device's local times are read.",
)
def inspect(file: Path, zone: str) -> None:
    """Print what FILE holds as one JSON object; nothing is stored."""
    try:
        content = preview_file(
            _read(file), tz=zone, max_bytes=current_app.config["UPLOAD_MAX_BYTES"]
        )
    except ImportFileError as exc:
        raise click.ClickException(f"{file.name}: {exc}") from exc
    click.echo(json.dumps(content, ensure_ascii=False))


def _clinic(session: Session, clinic_id: int | None) -> Clinic:
    if clinic_id is not None:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            raise click.ClickException(f"there is no clinic {clinic_id}")
        return clinic
    clinics = session.exec(select(Clinic).order_by(col(Clinic.id)).limit(2)).all()
    if not clinics:
        raise click.ClickException("there is no clinic in this database")
    if len(clinics) > 1:
        raise click.ClickException("this database has several clinics: name one with --clinic ID")
    return clinics[0]


def _patient(
    session: Session, *, patient_id: int | None, mrn: str | None, clinic_id: int | None
) -> tuple[Patient, Clinic]:
    if patient_id is not None:
        patient = session.get(Patient, patient_id)
        if patient is None or (clinic_id is not None and patient.clinic_id != clinic_id):
            raise click.ClickException(f"there is no patient {patient_id}")
        clinic = session.get(Clinic, patient.clinic_id)
        assert clinic is not None
        return patient, clinic
    clinic = _clinic(session, clinic_id)
    matches = session.exec(
        select(Patient).where(Patient.clinic_id == clinic.id, Patient.mrn == mrn).limit(2)
    ).all()
    if not matches:
        raise click.ClickException(f"no patient of {clinic.name} has MRN {mrn}")
    if len(matches) > 1:
        raise click.ClickException(
            f"several patients of {clinic.name} have MRN {mrn}: use --patient"
        )
    return matches[0], clinic


@upload_cli.command("import")
@click.argument("file", type=FILE)
@click.option("--patient", "patient_id", type=int, help="The patient's id.")
@click.option("--mrn", help="The patient's MRN within the clinic.")
@click.option("--clinic", "clinic_id", type=int, help="The clinic (needed with several clinics).")
def import_command(
    file: Path, patient_id: int | None, mrn: str | None, clinic_id: int | None
) -> None:
    """Store FILE for one patient (exactly one of --patient or --mrn) and print the summary."""
    if (patient_id is None) == (mrn is None):
        raise click.UsageError("give exactly one of --patient ID or --mrn MRN")
    data = _read(file)
    try:
        with job_session() as session:
            patient, clinic = _patient(session, patient_id=patient_id, mrn=mrn, clinic_id=clinic_id)
            if not is_valid_time_zone(patient.time_zone):
                raise click.ClickException(
                    f"the patient's time zone {patient.time_zone!r} is unknown"
                )
            upload = import_file(
                session,
                data,
                filename=file.name,
                clinic=clinic,
                actor=None,
                patient=patient,
                max_bytes=current_app.config["UPLOAD_MAX_BYTES"],
            )
            summary = upload_summary(upload, time_zone=patient.time_zone)
            name = patient.display_name
    except UploadError as exc:
        raise click.ClickException(f"{file.name}: {exc}; nothing was stored") from exc
    click.echo(f"{file.name} for {name}:")
    click.echo(summary_text(summary))
