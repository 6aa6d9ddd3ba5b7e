"""Tidepool platform JSON and the export's dotted-key form."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from clinic_portal.records import (
    BasalKind,
    BasalSegment,
    Bolus,
    BolusSource,
    CgmReading,
    MeterReading,
    MeterSource,
    PumpSettings,
    RecordBatch,
)
from clinic_portal.upload_station.importers import ImportFileError
from tests.upload_station.importers.conftest import fixture_bytes
from tests.upload_station.importers.test_carelink import at

Parse = Callable[..., RecordBatch]
MEDTRONIC = "tidepool_medtronic-670g-mmt1780_cbg-basal-bolus-wizard_nodedatatools.json"


def test_cbg_mmol_to_mgdl_with_device_offset(parse: Parse) -> None:
    # {"time": "2018-06-04T08:13:22.000Z", "timezoneOffset": 600, "value": 13.48832} -> 243 mg/dL
    batch = parse(fixture_bytes("tidepool-json", MEDTRONIC), tz="Australia/Brisbane")
    (reading,) = [
        r
        for r in batch.records
        if isinstance(r, CgmReading) and r.time == at("2018-06-04T08:13:22")
    ]
    assert reading.glucose == pytest.approx(243.0, abs=0.05)
    assert reading.utc_offset == 600
    assert reading.device_serial == "NG1353193H"
    assert reading.source_id == "f281a7add64c41b8bc2b632719d7d4e2"


def test_wizard_is_attached_to_its_bolus(parse: Parse) -> None:
    # wizard 20b5ed10... points at bolus 136228d8...: 40 g, ratio 7, recommended 5.7 U.
    batch = parse(fixture_bytes("tidepool-json", MEDTRONIC), tz="Australia/Brisbane")
    (bolus,) = [
        b
        for b in batch.records
        if isinstance(b, Bolus) and b.source_id == "136228d885494e7ca6bd0e1d81c55deb"
    ]
    assert (
        bolus.delivered,
        bolus.source,
        bolus.wizard_carbs,
        bolus.carb_ratio,
        bolus.recommended,
    ) == (
        5.7,
        BolusSource.WIZARD,
        40.0,
        7.0,
        5.7,
    )


def test_basal_kinds_and_durations(parse: Parse) -> None:
    batch = parse(fixture_bytes("tidepool-json", MEDTRONIC), tz="Australia/Brisbane")
    kinds = {r.kind for r in batch.records if isinstance(r, BasalSegment)}
    assert kinds == {BasalKind.AUTOMATED, BasalKind.SCHEDULED, BasalKind.SUSPENDED}
    (scheduled,) = [
        r
        for r in batch.records
        if isinstance(r, BasalSegment) and r.time == at("2018-06-04T02:00:00")
    ]
    assert (scheduled.rate, scheduled.duration, scheduled.schedule_name) == (1.5, 6377, "Pattern 1")


def test_pump_settings_read_by_range(parse: Parse) -> None:
    # Omnipod settings say units.bg mg/dL but hold mmol/L numbers (formats.md §4.2).
    batch = parse(
        fixture_bytes(
            "tidepool-json", "tidepool_omnipod_pumpsettings-wizard-alarms_nodedatatools.json"
        ),
        tz="America/Denver",
    )
    settings = [r for r in batch.records if isinstance(r, PumpSettings)]
    assert settings[0].basal_schedules == {"basal 1": [(0, 0.65)]}
    assert settings[0].targets[0][2] == pytest.approx(150.0, abs=0.1)
    assert settings[0].max_bolus == 7.0


def _export_form() -> bytes:
    """A TidepoolExport.json slice: dotted keys, mg/dL, durations in minutes."""
    rows = [
        {
            "type": "cbg",
            "time": "2024-05-01T06:00:00.000Z",
            "timezoneOffset": 120,
            "units": "mg/dL",
            "value": 99.9976941658,
            "deviceId": "DexG6-XYZ",
            "localTime": "2024-05-01T08:00:00",
        },
        {
            "type": "basal",
            "deliveryType": "temp",
            "time": "2024-05-01T06:05:00.000Z",
            "rate": 0.4,
            "duration": 30,
            "percent": 0.5,
            "suppressed.rate": 0.8,
            "deviceId": "tandem123",
        },
        {
            "type": "smbg",
            "subType": "linked",
            "time": "2024-05-01T06:10:00Z",
            "units": "mg/dL",
            "value": 120,
            "deviceId": "tandem123",
            "annotations": "[]",
        },
    ]
    return json.dumps(rows).encode()


def test_export_dotted_keys_and_minutes(parse: Parse) -> None:
    batch = parse(_export_form(), tz="Europe/Paris")
    cgm, temp, bg = batch.records
    assert isinstance(cgm, CgmReading) and cgm.glucose == 100.0 and cgm.utc_offset == 120
    assert isinstance(temp, BasalSegment) and (temp.kind, temp.duration, temp.percent) == (
        BasalKind.TEMP,
        1800,
        50.0,
    )
    assert isinstance(bg, MeterReading) and (bg.glucose, bg.source) == (120.0, MeterSource.LINKED)
    assert batch.units_in_file == "mg/dL"
    assert {d.serial for d in batch.devices} == {"DexG6-XYZ", "tandem123"}


def test_aborted_export_is_refused(parse: Parse) -> None:
    data = json.dumps(
        [{"type": "cbg", "time": "2024-05-01T06:00:00Z", "value": 5.5}, {"exportError": "timeout"}]
    )
    with pytest.raises(ImportFileError, match="aborted") as err:
        parse(data.encode())
    assert err.value.line == 1


def test_truncated_json_names_a_line(parse: Parse) -> None:
    data = fixture_bytes("tidepool-json", MEDTRONIC)[:5000]
    with pytest.raises(ImportFileError) as err:
        parse(data, tz="Australia/Brisbane")
    assert err.value.line is not None and err.value.line > 1
