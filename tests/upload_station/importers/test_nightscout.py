"""Nightscout entries, treatments, profile JSON and the entries CSV."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from clinic_portal.records import (
    BasalKind,
    BasalSegment,
    Bolus,
    BolusSource,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    PumpSettings,
    RecordBatch,
)
from clinic_portal.upload_station.importers import ImportFileError
from tests.upload_station.importers.conftest import fixture_bytes, sample_bytes
from tests.upload_station.importers.test_carelink import at

Parse = Callable[..., RecordBatch]


def test_entries_json_first_value(parse: Parse) -> None:
    # {"date": 1775421029000, "sgv": 162, "utcOffset": 0}
    batch = parse(
        fixture_bytes("nightscout-json", "ns_entries_sgv_iaps-dexcom_cgmformat_TRIMMED.json"),
        tz="Europe/Moscow",
    )
    last = batch.records[-1]
    assert isinstance(last, CgmReading)
    assert (last.time, last.glucose, last.utc_offset) == (1775421029, 162.0, 0)
    assert last.source_id == "DE8B497C-82D7-49E4-B0C1-0DD0BFF92586"


def test_entries_csv_matches_json(parse: Parse) -> None:
    from_csv = parse(
        fixture_bytes("nightscout-json", "ns_entries_api-csv-format_iaps_cgmformat_TRIMMED.csv"),
        tz="Europe/Moscow",
    )
    from_json = parse(
        fixture_bytes("nightscout-json", "ns_entries_sgv_iaps-dexcom_cgmformat_TRIMMED.json"),
        tz="Europe/Moscow",
    )
    assert [(r.time, r.glucose) for r in from_csv.records] == [
        (r.time, r.glucose) for r in from_json.records
    ]
    assert from_csv.records[0].utc_offset == 180  # no utcOffset in the CSV: the zone's


def test_legacy_string_sgv_and_error_codes(parse: Parse) -> None:
    batch = parse(
        sample_bytes(
            "nightscout-json", "ns_entries_legacy-dexcom-2014_string-sgv_cgmremotemonitor.json"
        ),
        tz="America/Los_Angeles",
    )
    assert all(20 <= r.glucose <= 600 for r in batch.records)  # type: ignore[union-attr]
    assert any("status codes" in w for w in batch.warnings)


def test_treatments(parse: Parse) -> None:
    batch = parse(
        fixture_bytes("nightscout-json", "ns_treatments_iaps_cgmformat_TRIMMED.json"),
        tz="Europe/Moscow",
    )
    # {"eventType": "SMB", "created_at": "2026-04-05T20:06:01.413Z", "insulin": 0.1}
    (smb,) = [
        b for b in batch.records if isinstance(b, Bolus) and b.time == at("2026-04-05T20:06:01")
    ]
    assert (smb.delivered, smb.source) == (0.1, BolusSource.AUTOMATIC)
    # {"eventType": "Temp Basal", "created_at": "2026-04-05T20:16:02.703Z", "rate": 0,
    #  "duration": 30, "raw_rate": {"temp": "absolute", ...}}
    (temp,) = [
        r
        for r in batch.records
        if isinstance(r, BasalSegment) and r.time == at("2026-04-05T20:16:02")
    ]
    assert (temp.kind, temp.rate, temp.duration) == (BasalKind.TEMP, 0.0, 1800)
    assert [
        c.carbs
        for c in batch.records
        if isinstance(c, CarbEntry) and c.time == at("2026-04-05T16:56:00")
    ] == [25.0]
    kinds = {r.kind for r in batch.records if isinstance(r, DeviceEvent)}
    assert {
        DeviceEventKind.SITE_CHANGE,
        DeviceEventKind.CARTRIDGE_CHANGE,
        DeviceEventKind.SENSOR_START,
    } <= kinds


def test_openaps_string_numbers_with_offset(parse: Parse) -> None:
    batch = parse(
        sample_bytes(
            "nightscout-json",
            "ns_treatments_openaps-medtronic-temp-basal_string-numbers_cgmremotemonitor.json",
        ),
        tz="America/Los_Angeles",
    )
    temp = next(r for r in batch.records if r.time == at("2016-10-23T18:45:22"))
    assert isinstance(temp, BasalSegment)
    assert (temp.rate, temp.duration, temp.utc_offset) == (1.425, 1800, -420)


def test_profile_mmol(parse: Parse) -> None:
    batch = parse(
        fixture_bytes("nightscout-json", "ns_profile_iaps_mmol_cgmformat.json"), tz="Europe/Moscow"
    )
    latest = batch.records[-1]
    assert isinstance(latest, PumpSettings)
    assert latest.basal_schedules["default"][:2] == [(0, 1.0), (10800, 1.3)]
    assert latest.sensitivities == [(0, round(8 * 18.01559, 1))]
    assert latest.targets[0] == (0, round(7.5 * 18.01559, 1), round(7.5 * 18.01559, 1))
    assert latest.active_insulin_time == 6 * 3600


def test_percent_temp_basal_uses_profile(parse: Parse) -> None:
    docs = [
        {
            "_id": "p",
            "defaultProfile": "a",
            "startDate": "2024-01-01T00:00:00Z",
            "mills": 1704067200000,
            "store": {
                "a": {
                    "units": "mg/dl",
                    "basal": [{"time": "00:00", "value": 1.0}],
                    "sens": 50,
                    "carbratio": [{"time": "00:00", "value": 10}],
                    "target_low": 100,
                    "target_high": 120,
                }
            },
        },
        {
            "eventType": "Temp Basal",
            "created_at": "2024-01-02T03:00:00Z",
            "percent": -50,
            "duration": 60,
        },
    ]
    batch = parse(json.dumps(docs).encode(), tz="UTC")
    (temp,) = [r for r in batch.records if isinstance(r, BasalSegment)]
    assert (temp.rate, temp.percent, temp.duration) == (0.5, 50.0, 3600)


def test_negative_insulin_is_refused(parse: Parse) -> None:
    docs = [
        {"eventType": "Correction Bolus", "created_at": "2024-01-02T03:00:00Z", "insulin": "-2"}
    ]
    with pytest.raises(ImportFileError) as err:
        parse(json.dumps(docs, indent=1).encode(), tz="UTC")
    assert (err.value.line, err.value.column) == (2, "insulin")
