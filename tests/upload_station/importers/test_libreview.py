"""LibreView CSV: record types, day/month order from the whole file, units."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clinic_portal.records import (
    Bolus,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    MeterReading,
    RecordBatch,
)
from clinic_portal.upload_station.importers import ImportFileError
from tests.upload_station.importers.conftest import fixture_bytes
from tests.upload_station.importers.test_carelink import at

Parse = Callable[..., RecordBatch]
US = "libreview_synthetic_us_mm-dd-yyyy_ampm_mgdl.csv"


def test_us_month_first_twelve_hour_clock(parse: Parse) -> None:
    batch = parse(fixture_bytes("libreview-csv", US), tz="America/New_York")
    cgm = [(r.time, r.glucose) for r in batch.records if isinstance(r, CgmReading)]
    # "04-30-2026 11:45 PM" EDT and "05-01-2026 12:00 AM" (midnight).
    assert cgm[:2] == [(at("2026-05-01T03:45:00"), 104.0), (at("2026-05-01T04:00:00"), 101.0)]


def test_us_record_types(parse: Parse) -> None:
    batch = parse(fixture_bytes("libreview-csv", US), tz="America/New_York")
    (strip,) = [r for r in batch.records if isinstance(r, MeterReading)]
    assert (strip.time, strip.glucose) == (at("2026-05-01T11:05:00"), 118.0)
    ketone = next(
        r for r in batch.records if isinstance(r, DeviceEvent) and r.kind is DeviceEventKind.KETONE
    )
    assert ketone.value == 0.4
    doses = sorted((b.delivered, b.long_acting) for b in batch.records if isinstance(b, Bolus))
    assert doses == [(6.0, False), (18.0, True)]
    assert [c.carbs for c in batch.records if isinstance(c, CarbEntry)] == [45.0]
    note = next(
        r for r in batch.records if isinstance(r, DeviceEvent) and r.kind is DeviceEventKind.NOTE
    )
    assert note.text == '=HYPERLINK("x")'  # kept as text; neutralised only when CSV is written
    assert any("scan" in w for w in batch.warnings)


def test_day_first_uk_mmol(parse: Parse) -> None:
    # "01-09-2025 21:58,0,4.3" is 1 September (BST), 4.3 mmol/L.
    batch = parse(
        fixture_bytes(
            "libreview-csv", "libreview_librelink_mmol_uk_2025_insulin-rows_cgmdataprocessor.csv"
        ),
        tz="Europe/London",
    )
    first = next(r for r in batch.records if isinstance(r, CgmReading))
    assert first.time == at("2025-09-01T20:58:00")
    assert first.glucose == pytest.approx(4.3 * 18.01559, abs=0.05)
    insulin = [
        b for b in batch.records if isinstance(b, Bolus) and b.time == at("2025-09-03T07:16:00")
    ]
    assert sorted((b.delivered, b.long_acting) for b in insulin) == [(2.0, False), (11.0, True)]


def test_undecidable_dates_default_to_day_first_for_24_hour_files(parse: Parse) -> None:
    data = fixture_bytes("libreview-csv", US).decode()
    lines = data.splitlines()
    body = [ln.replace("05-01-2026 12:15 AM", "05-01-2026 00:15") for ln in [*lines[:2], lines[4]]]
    batch = parse("\r\n".join(body).encode(), tz="Europe/Paris")
    (reading,) = batch.records
    assert reading.time == at("2026-01-04T23:15:00")  # 05-01 read as 5 January


def test_strip_glucose_out_of_range(parse: Parse) -> None:
    data = fixture_bytes("libreview-csv", US).replace(b",118,", b",0,")
    with pytest.raises(ImportFileError) as err:
        parse(data, tz="America/New_York")
    assert (err.value.line, err.value.column) == (7, "Strip Glucose mg/dL")
