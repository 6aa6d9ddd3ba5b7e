"""Dexcom Clarity CSV: Low/High EGVs, calibrations, insulin, carbs, translated and ragged files."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clinic_portal.records import (
    Bolus,
    BolusSource,
    CarbEntry,
    CgmReading,
    CgmSettings,
    GlucoseFlag,
    MeterReading,
    MeterSource,
    RecordBatch,
)
from clinic_portal.upload_station.importers import ImportFileError
from tests.upload_station.importers.conftest import fixture_bytes, sample_bytes
from tests.upload_station.importers.test_carelink import at

Parse = Callable[..., RecordBatch]
SYNTH = "clarity_synthetic_14col_high-low-calibration-carbs.csv"


def test_low_and_high_are_device_limits_flagged(parse: Parse) -> None:
    batch = parse(fixture_bytes("dexcom-clarity-csv", SYNTH), tz="America/New_York")
    cgm = {r.time: r for r in batch.records if isinstance(r, CgmReading)}
    assert (cgm[at("2024-05-01T12:05:00")].glucose, cgm[at("2024-05-01T12:05:00")].flag) == (
        400.0,
        GlucoseFlag.ABOVE_LIMIT,
    )
    assert (cgm[at("2024-05-01T12:15:00")].glucose, cgm[at("2024-05-01T12:15:00")].flag) == (
        40.0,
        GlucoseFlag.BELOW_LIMIT,
    )
    assert cgm[at("2024-05-01T12:10:00")].flag is GlucoseFlag.NONE
    assert all(r.utc_offset == -240 for r in batch.records)


def test_calibration_insulin_carbs_and_alerts(parse: Parse) -> None:
    batch = parse(fixture_bytes("dexcom-clarity-csv", SYNTH), tz="America/New_York")
    (cal,) = [r for r in batch.records if isinstance(r, MeterReading)]
    assert (cal.glucose, cal.source) == (210.0, MeterSource.CALIBRATION)
    doses = sorted(
        (b.delivered, b.long_acting, b.source) for b in batch.records if isinstance(b, Bolus)
    )
    assert doses == [(7.5, False, BolusSource.PEN), (20.0, True, BolusSource.PEN)]
    assert [c.carbs for c in batch.records if isinstance(c, CarbEntry)] == [60.0]
    (alerts,) = [r for r in batch.records if isinstance(r, CgmSettings)]
    assert (alerts.low_alert, alerts.high_alert, alerts.urgent_low) == (70.0, 250.0, 55.0)


def test_mmol_export(parse: Parse) -> None:
    batch = parse(
        fixture_bytes("dexcom-clarity-csv", "clarity_synthetic_14col-unquoted_mmol.csv"),
        tz="America/New_York",
    )
    assert [r.glucose for r in batch.records] == [
        pytest.approx(7.8 * 18.01559, abs=0.05),
        pytest.approx(8.1 * 18.01559, abs=0.05),
    ]


def test_resaved_file_with_mangled_bom_and_space_timestamps(parse: Parse) -> None:
    # "11,1961-04-12 00:56:47,EGV,,,,android G6,144,...": Bucharest was UTC+2 in April 1961.
    batch = parse(
        fixture_bytes(
            "dexcom-clarity-csv", "clarity_g6-android_14col_mgdl_anonymized-resaved_cgmformat.csv"
        ),
        tz="Europe/Bucharest",
    )
    first = next(r for r in batch.records if isinstance(r, CgmReading))
    assert (first.time, first.glucose) == (at("1961-04-11T22:56:47"), 144.0)
    lows = [
        r for r in batch.records if isinstance(r, CgmReading) and r.flag is GlucoseFlag.BELOW_LIMIT
    ]
    assert len(lows) == 5


def test_german_semicolon_export_by_position(parse: Parse) -> None:
    batch = parse(
        sample_bytes("dexcom-clarity-csv", "clarity_g7-ios_de-semicolon_mgdl_aidr_EXCERPT.csv"),
        tz="Europe/Berlin",
    )
    first = next(r for r in batch.records if isinstance(r, CgmReading))
    assert (first.time, first.glucose) == (at("2025-12-31T23:04:45"), 113.0)
    assert any("iOS Watch" in w for w in batch.warnings)


def test_bad_egv_value_names_the_line(parse: Parse) -> None:
    text = fixture_bytes("dexcom-clarity-csv", SYNTH).replace(b'"395"', b'"3950"')
    with pytest.raises(ImportFileError) as err:
        parse(text, tz="America/New_York")
    assert err.value.line == 12
    assert err.value.column == "Glucose Value (mg/dL)"
