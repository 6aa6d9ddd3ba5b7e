"""Upload services: preview, store (inline and in a thread), idempotence, the inbox, bad files."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import func, select

from clinic_portal.audit.models import AuditEvent
from clinic_portal.auth.models import Role
from clinic_portal.timeutil import utcnow
from clinic_portal.upload_station.models import (
    EVENT_TABLES,
    CgmReadingRow,
    Device,
    DeviceEventRow,
    Upload,
    UploadPayload,
    UploadStatus,
)
from clinic_portal.upload_station.services import (
    NO_NEW_DATA,
    UploadError,
    UploadStage,
    assign_upload,
    create_preview,
    discard_stale_uploads,
    discard_upload,
    import_file,
    inbox,
    preview_file,
    start_storing,
    summary_text,
    upload_stage,
    upload_summary,
)
from tests.upload_station.importers.conftest import fixture_bytes

CARELINK = ("carelink-csv", "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv")
PUMP_SERIAL = "NG4114235H"
TIDEPOOL = ("tidepool-json", "tidepool_omnipod_pumpsettings-wizard-alarms_nodedatatools.json")


def carelink() -> bytes:
    return fixture_bytes(*CARELINK)


def row_counts(db) -> dict[str, int]:
    return {
        t.__tablename__: db.exec(select(func.count()).select_from(t)).one()
        for t in (*EVENT_TABLES, Upload, UploadPayload, Device)
    }


def with_sensor_glucose(data: bytes, value: str) -> tuple[bytes, int]:
    """The CareLink file with the first sensor reading replaced; returns (bytes, line number)."""
    lines = data.decode("utf-8-sig").split("\r\n")
    section = next(i for i, line in enumerate(lines) if ";Sensor;" in line)
    header = lines[section + 1].split(";")
    column = header.index("Sensor Glucose (mg/dL)")
    target = next(i for i in range(section + 2, len(lines)) if lines[i].split(";")[column].strip())
    cells = lines[target].split(";")
    cells[column] = value
    lines[target] = ";".join(cells)
    return "\r\n".join(lines).encode("utf-8"), target + 1


@pytest.fixture
def clinic(make_clinic):
    return make_clinic(time_zone="Europe/Brussels")


@pytest.fixture
def staff(make_user, clinic):
    return make_user(clinic, Role.STAFF)


def test_preview_file_has_exactly_the_documented_keys() -> None:
    content = preview_file(carelink(), tz="Europe/Brussels")
    assert set(content) == {
        "format",
        "devices",
        "first",
        "last",
        "counts",
        "units_in_file",
        "warnings",
    }
    assert content["format"] == "carelink_csv"
    assert content["devices"][0] == {"serial": PUMP_SERIAL, "model": "MiniMed 780G MMT-1886"}
    assert set(content["counts"]) == {
        "cgm",
        "bg",
        "bolus",
        "basal",
        "carbs",
        "device_event",
        "pump_settings",
    }
    assert content["counts"]["cgm"] == 1946


def test_second_import_of_the_same_file_adds_nothing(db, clinic, make_patient) -> None:
    patient = make_patient(clinic, time_zone="Europe/Brussels")
    first = import_file(
        db, carelink(), filename="a.csv", clinic=clinic, actor=None, patient=patient
    )
    db.commit()
    assert first.status == UploadStatus.DONE
    assert first.new_count > 2000 and first.counts["cgm"] == 1946
    before = row_counts(db)
    again = import_file(
        db, carelink(), filename="a.csv", clinic=clinic, actor=None, patient=patient
    )
    db.commit()
    after = row_counts(db)
    assert after["upload"] == before["upload"] + 1  # the attempt is recorded...
    assert {k: v for k, v in after.items() if k != "upload"} == {
        k: v for k, v in before.items() if k != "upload"
    }  # ...and nothing else
    assert (again.new_count, again.duplicate_count) == (0, first.new_count)
    summary = upload_summary(again, time_zone=patient.time_zone)
    assert summary.headline == NO_NEW_DATA
    assert summary.first is None and summary.counts == []
    assert summary_text(summary).startswith("No new data\n")
    text = summary_text(upload_summary(first, time_zone=patient.time_zone))
    assert "1,946" in text and "Data from 2025-10-28 00:00 to 2025-11-05 00:25" in text


def test_unknown_device_goes_to_the_inbox_and_is_remembered_after_assignment(
    db, clinic, staff, make_patient
) -> None:
    patient = make_patient(clinic, time_zone="Europe/Brussels")
    upload = import_file(db, carelink(), filename="pump.csv", clinic=clinic, actor=staff)
    db.commit()
    assert upload.status == UploadStatus.UNASSIGNED and upload.patient_id is None
    assert db.exec(select(func.count()).select_from(CgmReadingRow)).one() == 0
    payload = db.get(UploadPayload, upload.id)
    assert payload is not None and payload.time_zone == "Europe/Brussels"
    assert upload.first_time is not None  # the inbox shows the file's date range

    items = inbox(db, clinic.id)
    assert [item.upload.id for item in items] == [upload.id]
    assert [d.serial for d in items[0].devices] == [PUMP_SERIAL]
    assert items[0].uploader == staff.name

    assign_upload(db, upload, patient, staff)
    db.commit()
    db.refresh(upload)
    assert upload.status == UploadStatus.DONE and upload.patient_id == patient.id
    assert upload.counts["cgm"] == 1946
    assert db.get(UploadPayload, upload.id) is None
    assert inbox(db, clinic.id) == []
    device = db.exec(select(Device).where(Device.serial == PUMP_SERIAL)).one()
    assert device.patient_id == patient.id
    stored = db.exec(
        select(func.count())
        .select_from(CgmReadingRow)
        .where(CgmReadingRow.patient_id == patient.id)
    ).one()
    assert stored == 1946
    actions = set(db.exec(select(AuditEvent.action)).all())
    assert {"upload.unassigned", "upload.ingest", "upload.assign"} <= actions

    # The serial is remembered: the next upload without a patient lands on the patient.
    again = import_file(db, carelink(), filename="pump.csv", clinic=clinic, actor=staff)
    db.commit()
    assert again.status == UploadStatus.DONE and again.patient_id == patient.id
    assert again.new_count == 0


def test_assigning_twice_is_refused(db, clinic, staff, make_patient) -> None:
    upload = import_file(db, carelink(), filename="p.csv", clinic=clinic, actor=staff)
    db.commit()
    assign_upload(db, upload, make_patient(clinic), staff)
    db.commit()
    with pytest.raises(UploadError, match="not waiting in the inbox"):
        assign_upload(db, upload, make_patient(clinic), staff)


def test_assigning_to_another_clinics_patient_is_refused(
    db, clinic, staff, make_clinic, make_patient
) -> None:
    upload = import_file(db, carelink(), filename="p.csv", clinic=clinic, actor=staff)
    db.commit()
    with pytest.raises(UploadError, match="not on this clinic"):
        assign_upload(db, upload, make_patient(make_clinic("Elsewhere")), staff)


def test_device_of_another_patient_is_refused_and_nothing_written(db, clinic, make_patient) -> None:
    import_file(
        db, carelink(), filename="a", clinic=clinic, actor=None, patient=make_patient(clinic)
    )
    db.commit()
    before = row_counts(db)
    with pytest.raises(UploadError, match="belongs to another patient"):
        import_file(
            db, carelink(), filename="a", clinic=clinic, actor=None, patient=make_patient(clinic)
        )
    db.rollback()
    assert row_counts(db) == before


def _truncated() -> bytes:
    data = fixture_bytes(*TIDEPOOL)
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("make_data", "message"),
    [
        pytest.param(
            _truncated, r"line \d+: (invalid JSON|the JSON array is not closed)", id="truncated"
        ),
        pytest.param(lambda: b"\x00\x01\x02\xff" * 500, "binary", id="binary-junk"),
        pytest.param(lambda: b"", "empty", id="empty"),
        pytest.param(lambda: b"  \r\n\r\n", "empty", id="blank"),
        pytest.param(lambda: "Dátum;Idő\n".encode("utf-16-le"), "NUL|UTF-16|binary", id="encoding"),
        pytest.param(
            lambda: with_sensor_glucose(carelink(), "999")[0],
            r"line \d+, column 'Sensor Glucose \(mg/dL\)': glucose 999 mg/dL is outside",
            id="impossible-glucose",
        ),
    ],
)
def test_bad_files_are_refused_and_write_nothing(
    db, clinic, staff, make_patient, make_data, message
) -> None:
    patient = make_patient(clinic)
    before = row_counts(db)
    with pytest.raises(UploadError, match=message):
        import_file(db, make_data(), filename="bad", clinic=clinic, actor=staff, patient=patient)
    with pytest.raises(UploadError, match=message):
        create_preview(db, make_data(), filename="bad", clinic=clinic, actor=staff)
    db.rollback()
    assert row_counts(db) == before


def test_impossible_value_error_names_the_line(db, clinic, staff) -> None:
    data, line = with_sensor_glucose(carelink(), "1200")
    with pytest.raises(UploadError, match=rf"^line {line}, column 'Sensor Glucose"):
        create_preview(db, data, filename="x.csv", clinic=clinic, actor=staff)


def test_a_file_over_the_limit_is_refused(db, clinic, staff, make_patient) -> None:
    before = row_counts(db)
    with pytest.raises(UploadError, match="larger than the 1,000-byte"):
        create_preview(db, carelink(), filename="big", clinic=clinic, actor=staff, max_bytes=1000)
    with pytest.raises(UploadError, match="larger than the 1,000-byte"):
        import_file(
            db, carelink(), filename="big", clinic=clinic, actor=staff,
            patient=make_patient(clinic), max_bytes=1000,
        )  # fmt: skip
    db.rollback()
    assert row_counts(db) == before


def test_formula_text_is_stored_as_text(db, clinic, make_patient) -> None:
    # A spreadsheet would run "=..." as a formula; the portal stores it unchanged as text and
    # only neutralises it where it writes CSV (importers.neutralize_csv_cell).
    data = carelink().replace(b"ALERT ON HIGH: tone", b"=1+1 ALERT ON HIGH: tone", 1)
    patient = make_patient(clinic)
    upload = import_file(db, data, filename="f.csv", clinic=clinic, actor=None, patient=patient)
    db.commit()
    assert upload.status == UploadStatus.DONE
    texts = db.exec(select(DeviceEventRow.text).where(DeviceEventRow.patient_id == patient.id))
    assert any(t and t.startswith("=1+1 ALERT ON HIGH") for t in texts)


# --------------------------------------------------------------------------- preview + store


def _preview(db, clinic, staff, data: bytes | None = None):
    result = create_preview(db, data or carelink(), filename="p.csv", clinic=clinic, actor=staff)
    db.commit()
    return result


def test_preview_keeps_the_file_and_stores_nothing(db, clinic, staff) -> None:
    before = row_counts(db)
    result = _preview(db, clinic, staff)
    assert upload_stage(result.upload) == UploadStage.PREVIEW
    assert result.content["counts"]["cgm"] == 1946
    assert db.get(UploadPayload, result.upload.id).data == carelink()
    after = row_counts(db)
    assert after["cgm_reading"] == before["cgm_reading"] and after["device"] == before["device"]
    assert (after["upload"], after["upload_payload"]) == (before["upload"] + 1, 1)


def test_storing_a_preview_fills_in_the_same_upload_row(
    app, db, clinic, staff, make_patient
) -> None:
    patient = make_patient(clinic, time_zone="Europe/Brussels")
    result = _preview(db, clinic, staff)
    start_storing(app, result.upload, patient=patient, actor=staff, background=False)
    db.expire_all()
    upload = db.get(Upload, result.upload.id)
    assert upload.status == UploadStatus.DONE and upload.patient_id == patient.id
    assert upload.counts["cgm"] == 1946 and upload.progress_done == upload.progress_total
    assert db.get(UploadPayload, upload.id) is None
    with pytest.raises(UploadError, match="already"):
        start_storing(app, upload, patient=patient, actor=staff, background=False)


def test_storing_in_a_background_thread_with_progress(app, db, clinic, staff) -> None:
    result = _preview(db, clinic, staff)
    thread = start_storing(app, result.upload, patient=None, actor=staff)
    assert thread is not None
    thread.join(timeout=60)
    db.expire_all()
    upload = db.get(Upload, result.upload.id)
    assert upload.status == UploadStatus.UNASSIGNED  # unknown pump: the inbox
    assert db.get(UploadPayload, upload.id) is not None
    assert [item.upload.id for item in inbox(db, clinic.id)] == [upload.id]


def test_a_failing_store_job_marks_the_upload_failed(app, db, clinic, staff, make_patient) -> None:
    owner = make_patient(clinic)
    import_file(db, carelink(), filename="a", clinic=clinic, actor=None, patient=owner)
    db.commit()
    before = row_counts(db)
    result = _preview(db, clinic, staff)
    start_storing(app, result.upload, patient=make_patient(clinic), actor=staff, background=False)
    db.expire_all()
    upload = db.get(Upload, result.upload.id)
    assert upload.status == UploadStatus.FAILED
    assert "belongs to another patient" in upload.error
    after = row_counts(db)
    assert {k: after[k] for k in after if k not in ("upload",)} == {
        k: before[k] for k in before if k not in ("upload",)
    }


def test_discard_and_stale_previews(db, clinic, staff) -> None:
    kept = _preview(db, clinic, staff).upload
    discard_upload(db, kept, actor=staff)
    db.commit()
    assert db.get(Upload, kept.id) is None
    old = _preview(db, clinic, staff).upload
    old.created_at = utcnow() - timedelta(hours=3)
    db.add(old)
    db.commit()
    assert discard_stale_uploads(db, clinic_id=clinic.id) == 1
    db.commit()
    assert db.exec(select(func.count()).select_from(UploadPayload)).one() == 0


def test_only_previews_can_be_discarded(db, clinic, make_patient, staff) -> None:
    upload = import_file(
        db, carelink(), filename="a", clinic=clinic, actor=None, patient=make_patient(clinic)
    )
    db.commit()
    with pytest.raises(UploadError):
        discard_upload(db, upload, actor=staff)
