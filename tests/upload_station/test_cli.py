"""``flask upload inspect`` and ``flask upload import``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import func, select

from clinic_portal.upload_station.models import CgmReadingRow, Upload
from tests.upload_station.importers.conftest import FIXTURES

CARELINK = FIXTURES / "carelink-csv" / "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv"
KEYS = {"format", "devices", "first", "last", "counts", "units_in_file", "warnings"}
COUNT_KEYS = {"cgm", "bg", "bolus", "basal", "carbs", "device_event", "pump_settings"}


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def rows(db, table=CgmReadingRow) -> int:
    return db.exec(select(func.count()).select_from(table)).one()


def test_inspect_prints_one_json_object_and_stores_nothing(runner, db) -> None:
    result = runner.invoke(args=["upload", "inspect", str(CARELINK), "--tz", "Europe/Brussels"])
    assert result.exit_code == 0, result.stderr
    content = json.loads(result.stdout)  # exactly one JSON document, nothing else on stdout
    assert set(content) == KEYS and set(content["counts"]) == COUNT_KEYS
    assert content["format"] == "carelink_csv"
    assert content["devices"] == [{"serial": "NG4114235H", "model": "MiniMed 780G MMT-1886"}]
    # Brussels is UTC+1 in November: local midnight of 28 Oct... is 23:00Z the day before.
    assert (content["first"], content["last"]) == ("2025-10-27T23:00:00Z", "2025-11-04T23:25:07Z")
    assert content["counts"]["cgm"] == 1946 and content["units_in_file"] == "mg/dL"
    assert rows(db) == 0 and rows(db, Upload) == 0


def test_inspect_reads_local_times_in_utc_by_default(runner) -> None:
    result = runner.invoke(args=["upload", "inspect", str(CARELINK)])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["first"] == "2025-10-28T00:00:00Z"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x00\x01binary\x00" * 100, "NUL bytes"),
        (b"just,some,text\n1,2,3\n", "file format not recognised"),
    ],
    ids=["empty", "binary", "unknown"],
)
def test_inspect_bad_file_exits_non_zero_with_the_error_on_stderr(
    runner, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = runner.invoke(args=["upload", "inspect", str(path)])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert message in result.stderr


def test_inspect_unknown_zone_is_an_error(runner) -> None:
    result = runner.invoke(args=["upload", "inspect", str(CARELINK), "--tz", "Mars/Olympus"])
    assert result.exit_code != 0 and "Mars/Olympus" in result.stderr


def test_import_by_patient_id_then_again_says_no_new_data(
    runner, db, make_clinic, make_patient
) -> None:
    patient = make_patient(make_clinic(), "Grace", "Hopper", time_zone="Europe/Brussels")
    first = runner.invoke(args=["upload", "import", str(CARELINK), "--patient", str(patient.id)])
    assert first.exit_code == 0, first.stderr
    assert "Hopper, Grace" in first.stdout or "Grace Hopper" in first.stdout
    assert "CGM readings: 1,946" in first.stdout and "Duplicates skipped: 0" in first.stdout
    assert rows(db) == 1946
    again = runner.invoke(args=["upload", "import", str(CARELINK), "--patient", str(patient.id)])
    assert again.exit_code == 0
    assert "No new data" in again.stdout
    assert rows(db) == 1946


def test_import_by_mrn(runner, db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    patient = make_patient(clinic, mrn="MRN-4242")
    result = runner.invoke(args=["upload", "import", str(CARELINK), "--mrn", "MRN-4242"])
    assert result.exit_code == 0, result.stderr
    stored = db.exec(select(func.count()).where(CgmReadingRow.patient_id == patient.id)).one()
    assert stored == 1946


def test_import_by_mrn_needs_the_clinic_when_there_are_several(
    runner, db, make_clinic, make_patient
) -> None:
    a, b = make_clinic("A"), make_clinic("B")
    make_patient(a, mrn="MRN-1")
    target = make_patient(b, mrn="MRN-1")
    ambiguous = runner.invoke(args=["upload", "import", str(CARELINK), "--mrn", "MRN-1"])
    assert ambiguous.exit_code != 0 and "--clinic" in ambiguous.stderr
    assert rows(db) == 0
    chosen = runner.invoke(
        args=["upload", "import", str(CARELINK), "--mrn", "MRN-1", "--clinic", str(b.id)]
    )
    assert chosen.exit_code == 0, chosen.stderr
    assert db.exec(select(func.count()).where(CgmReadingRow.patient_id == target.id)).one() == 1946


@pytest.mark.parametrize(
    "extra",
    [[], ["--patient", "1", "--mrn", "X"]],
    ids=["neither", "both"],
)
def test_import_needs_exactly_one_of_patient_or_mrn(runner, extra: list[str]) -> None:
    result = runner.invoke(args=["upload", "import", str(CARELINK), *extra])
    assert result.exit_code == 2
    assert "exactly one of --patient" in result.stderr


def test_import_unknown_patient_or_mrn(runner, make_clinic) -> None:
    make_clinic()
    unknown = runner.invoke(args=["upload", "import", str(CARELINK), "--patient", "999"])
    assert unknown.exit_code == 1 and "no patient 999" in unknown.stderr
    no_mrn = runner.invoke(args=["upload", "import", str(CARELINK), "--mrn", "NOPE"])
    assert no_mrn.exit_code == 1 and "MRN NOPE" in no_mrn.stderr


def test_import_of_a_bad_file_stores_nothing(runner, db, tmp_path, make_clinic, make_patient):
    patient = make_patient(make_clinic())
    text = CARELINK.read_bytes()
    path = tmp_path / "truncated.csv"
    path.write_bytes(text[: len(text) // 3] + b"\x00\x00garbage")
    result = runner.invoke(args=["upload", "import", str(path), "--patient", str(patient.id)])
    assert result.exit_code == 1
    assert "nothing was stored" in result.stderr
    assert rows(db) == 0 and rows(db, Upload) == 0
