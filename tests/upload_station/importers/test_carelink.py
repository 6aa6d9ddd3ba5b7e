"""CareLink CSV: spot values checked by hand against the sample rows, duplicates, clock changes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from clinic_portal.records import (
    BasalKind,
    BasalSegment,
    Bolus,
    BolusKind,
    BolusSource,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    MeterReading,
    MeterSource,
    PumpSettings,
    RecordBatch,
)
from clinic_portal.upload_station.importers import ImportFileError
from tests.upload_station.importers.conftest import fixture_bytes, sample_bytes

Parse = Callable[..., RecordBatch]


def at(iso: str) -> int:
    """Epoch seconds of a UTC ISO time."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp())


def of(batch: RecordBatch, kind: type, when: str) -> list:
    return [r for r in batch.records if isinstance(r, kind) and r.time == at(when)]


def test_780g_sensor_value_and_offset(parse: Parse) -> None:
    # "2534,00000;2025/10/28;16:12:34;...;111;18,57": CET (+60) after 26 Oct 2025.
    batch = parse(fixture_bytes("carelink-csv", "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv"))
    (reading,) = of(batch, CgmReading, "2025-10-28T15:12:34")
    assert reading.glucose == 111
    assert reading.utc_offset == 60
    assert reading.device_serial == "NG4114235H"


def test_780g_linked_meter_rows_collapse_to_one_calibration(parse: Parse) -> None:
    # 22:02:42 BG_READIN_RECEIVED, 22:02:46 accepted + sent for calibration, 22:03:00
    # Sensor Calibration BG: all value 62, one fingerstick.
    batch = parse(fixture_bytes("carelink-csv", "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv"))
    near = [
        r
        for r in batch.records
        if isinstance(r, MeterReading)
        and at("2025-11-04T21:00:00") <= r.time <= at("2025-11-04T21:10:00")
    ]
    assert len(near) == 1
    assert near[0].glucose == 62
    assert near[0].time == at("2025-11-04T21:02:42")
    assert near[0].source is MeterSource.CALIBRATION


def test_640g_dual_bolus_from_five_rows(parse: Parse) -> None:
    # Bolus Number 26 on 2022/03/12: calculator row 20:20:24, programmed normal 3,35 and square
    # 2,25 at 20:20:36, normal delivered 20:22:50, square delivered 22:22:00 over 02:00:00.
    batch = parse(
        fixture_bytes(
            "carelink-csv", "carelink_640g+780g_eu-semicolon_multidevice_agpplus_TRIMMED.csv"
        )
    )
    (bolus,) = of(batch, Bolus, "2022-03-12T19:20:36")
    assert bolus.kind is BolusKind.DUAL
    assert bolus.source is BolusSource.WIZARD
    assert (bolus.programmed, bolus.delivered, bolus.extended, bolus.duration) == (
        3.35,
        5.6,
        2.25,
        7200,
    )
    assert (bolus.wizard_carbs, bolus.carb_ratio, bolus.sensitivity) == (45.0, 8.0, 60.0)
    assert (bolus.target_low, bolus.target_high, bolus.insulin_on_board) == (90.0, 120.0, 0.65)
    assert bolus.recommended == 5.6
    assert bolus.wizard_bg is None  # "BWZ BG Input" 0 means no BG entered
    assert [c.carbs for c in of(batch, CarbEntry, "2022-03-12T19:20:24")] == [45.0]


def test_aggregated_auto_insulin_is_a_daily_automated_segment(parse: Parse) -> None:
    # Section field 3 says "Pump" for this block too; it must not become boluses.
    batch = parse(fixture_bytes("carelink-csv", "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv"))
    auto = [
        r for r in batch.records if isinstance(r, BasalSegment) and r.kind is BasalKind.AUTOMATED
    ]
    assert len(auto) == 9
    assert all(r.duration == 86400 for r in auto)
    assert all(
        b.source is not BolusSource.AUTOMATIC or b.delivered < 8
        for b in batch.records
        if isinstance(b, Bolus)
    )


def test_pump_clock_reset_is_repaired(parse: Parse) -> None:
    # 780G rows dated 2016/01/01 then "New Device Time" 2016/01/01 00:01:10 -> 2022/03/14 09:18:10.
    batch = parse(
        fixture_bytes(
            "carelink-csv", "carelink_640g+780g_eu-semicolon_multidevice_agpplus_TRIMMED.csv"
        )
    )
    assert not [
        r
        for r in batch.records
        if r.time < at("2020-01-01T00:00:00") and r.device_serial == "NG2576004H"
    ]
    (change,) = [
        r
        for r in batch.records
        if isinstance(r, DeviceEvent) and r.kind is DeviceEventKind.TIME_CHANGE
    ]
    assert change.time == at("2022-03-14T08:18:10")
    assert change.duration == at("2022-03-14T09:18:10") - at("2016-01-01T00:01:10")
    # The alarm at 2016/01/01 00:00:08 happened 62 s before the clock was set to 09:18:10.
    alarms = {
        r.time
        for r in batch.records
        if isinstance(r, DeviceEvent) and r.text and r.text.startswith("INSERT BATTERY")
    }
    assert at("2022-03-14T08:17:08") in alarms


def test_guardian_connect_logbook_markers(parse: Parse) -> None:
    # "Insulin: 27,00" twice at 2021/07/25 09:35:28 (EEST +180) -> one pen bolus of 27 U.
    batch = parse(
        fixture_bytes(
            "carelink-csv", "carelink_guardian-connect_eu-semicolon_mgdl_cgmformat_TRIMMED.csv"
        ),
        tz="Europe/Bucharest",
    )
    (pen,) = of(batch, Bolus, "2021-07-25T06:35:28")
    assert (pen.source, pen.delivered) == (BolusSource.PEN, 27.0)
    assert batch.devices[0].kind.value == "cgm"


def test_paradigm_us_comma_percent_temp_basal(parse: Parse) -> None:
    batch = parse(
        fixture_bytes("carelink-csv", "carelink_paradigm-revel723_us-comma_mgdl_2018_glugo.csv"),
        tz="America/Chicago",
    )
    temps = [r for r in batch.records if isinstance(r, BasalSegment) and r.kind is BasalKind.TEMP]
    assert sorted(t.percent for t in temps) == [80.0, 150.0]
    assert all(t.duration == 4 * 3600 for t in temps)
    # "0.00000,2018/09/26,14:42:33,...Normal,4.10,4.10" with its calculator row at the same second.
    (bolus,) = of(batch, Bolus, "2018-09-26T19:42:33")
    assert (bolus.delivered, bolus.source, bolus.wizard_bg, bolus.sensitivity) == (
        4.1,
        BolusSource.WIZARD,
        180.0,
        60.0,
    )


def test_synthetic_mmol_export(parse: Parse) -> None:
    batch = parse(fixture_bytes("carelink-csv", "carelink_synthetic_780g_eu-semicolon_mmol.csv"))
    assert batch.units_in_file == "mmol/L"
    (reading,) = of(batch, CgmReading, "2024-03-02T07:10:03")
    assert reading.glucose == pytest.approx(9.1 * 18.01559, abs=0.05)
    (bg,) = [r for r in batch.records if isinstance(r, MeterReading)]
    assert bg.glucose == pytest.approx(6.2 * 18.01559, abs=0.05)
    (bolus,) = [r for r in batch.records if isinstance(r, Bolus)]
    assert bolus.time == at("2024-03-02T07:00:05")
    assert bolus.delivered == 4.5
    assert bolus.sensitivity == pytest.approx(2.5 * 18.01559, abs=0.05)
    assert bolus.wizard_bg == pytest.approx(8.4 * 18.01559, abs=0.05)
    temp = next(
        r for r in batch.records if isinstance(r, BasalSegment) and r.kind is BasalKind.TEMP
    )
    assert (temp.percent, temp.rate, temp.duration) == (150.0, 0.9, 7200)  # 150 % of 0.6 U/h
    suspend = next(
        r for r in batch.records if isinstance(r, DeviceEvent) and r.kind is DeviceEventKind.SUSPEND
    )
    assert (suspend.text, suspend.duration) == ("PLGM_PREDICTED_LOW_SG", 1800)
    zero = next(r for r in batch.records if isinstance(r, BasalSegment) and r.rate == 0)
    assert zero.kind is BasalKind.SUSPENDED


def test_generation_a_settings_and_time_change(parse: Parse) -> None:
    batch = parse(
        sample_bytes(
            "carelink-csv",
            "carelink_old-v1.0.1_paradigm722_us_mgdl_2014_timechanges_decodingcarelink.csv",
        ),
        tz="America/Los_Angeles",
    )
    (settings,) = [r for r in batch.records if isinstance(r, PumpSettings)]
    assert settings.carb_ratios == [(0, 3.0)]
    assert settings.sensitivities == [(0, 10.0)]
    assert settings.targets == [(0, 100.0, 100.0)]
    assert (settings.max_bolus, settings.max_basal, settings.active_insulin_time) == (
        10.0,
        35.0,
        7200,
    )
    # ChangeTime 19:29:45 -> 19:32:00: earlier rows move 135 s later.
    (change,) = [
        r
        for r in batch.records
        if isinstance(r, DeviceEvent) and r.kind is DeviceEventKind.TIME_CHANGE
    ]
    assert change.duration == 135
    assert change.time == at("2014-04-26T02:32:00")
    readings = {r.time for r in batch.records if isinstance(r, CgmReading)}
    assert at("2014-04-26T02:27:00") + 135 in readings  # Index 155 "4/25/14 19:27:00", 146
    assert at("2014-04-26T02:35:00") in readings  # row 159, after the change, unshifted


def _gen_b(rows: list[str], *, part: str = "Pump") -> bytes:
    cols = (
        "Index;Date;Time;New Device Time;BG Reading (mg/dL);Basal Rate (U/h);Bolus Type;"
        "Bolus Volume Selected (U);Bolus Volume Delivered (U);Sensor Glucose (mg/dL);Event Marker"
    )
    head = [
        "Last Name;First Name;Patient ID;System ID;Start Date;End Date;Device;"
        "MiniMed 780G MMT-1886",
        '"A";"B";"";"";"01/03/2024 00:00:00";"02/03/2024 00:00:00";"Serial Number";NG1',
        "",
        f"-------;MiniMed 780G MMT-1886;{part};NG1;------- ",
        cols,
    ]
    return ("\n".join(head + rows) + "\n").encode()


@pytest.mark.parametrize(
    ("part", "row", "column", "words"),
    [
        (
            "Sensor",
            "0,00000;2024/03/01;10:00:00;;;;;;;2000;",
            "Sensor Glucose (mg/dL)",
            "glucose 2000 mg/dL is outside 20–600",
        ),
        ("Pump", "0,00000;2024/03/01;10:00:00;;0;;;;;;", "BG Reading (mg/dL)", "glucose 0 mg/dL"),
        (
            "Pump",
            "0,00000;2024/03/01;10:00:00;;;;Normal;-1;-1;;",
            "Bolus Volume Selected (U)",
            "insulin -1 U",
        ),
        (
            "Sensor",
            "0,00000;2031/03/01;10:00:00;;;;;;;120;",
            "Sensor Glucose (mg/dL)",
            "in the future",
        ),
        ("Sensor", "0,00000;2024/13/01;10:00:00;;;;;;;120;", "Date", "not a YYYY/MM/DD date"),
        (
            "Pump",
            "0,00000;2024/03/01;10:00:00;;;abc;;;;;",
            "Basal Rate (U/h)",
            "'abc' is not a number",
        ),
    ],
)
def test_impossible_values_name_line_and_column(
    parse: Parse, part: str, row: str, column: str, words: str
) -> None:
    line = 6
    with pytest.raises(ImportFileError) as err:
        parse(_gen_b([row], part=part))
    assert err.value.line == line
    assert err.value.column == column
    assert words in str(err.value)
    assert str(err.value).startswith(f"line {line}, column {column!r}: ")


def test_truncated_before_any_section(parse: Parse) -> None:
    data = fixture_bytes("carelink-csv", "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv")[:400]
    with pytest.raises(ImportFileError, match="no '-------' section"):
        parse(data)


def test_formula_like_note_is_kept_unchanged(parse: Parse) -> None:
    batch = parse(_gen_b(["0,00000;2024/03/01;10:00:00;;;;;;;;=cmd|' /C calc'!A0"]))
    (note,) = [r for r in batch.records if isinstance(r, DeviceEvent)]
    assert note.text == "=cmd|' /C calc'!A0"


def test_missing_serial_gets_stable_synthetic_serial(parse: Parse) -> None:
    data = _gen_b(["0,00000;2024/03/01;10:00:00;;;;;;;120;"]).replace(b"Pump;NG1;", b"Pump;;")
    first, second = parse(data), parse(data)
    assert first.devices[0].serial == second.devices[0].serial
    assert first.devices[0].serial.startswith("carelink-")
    assert any("no serial number" in w for w in first.warnings)


def test_dst_catch_up_change_shifts_only_rows_after_the_transition(parse: Parse) -> None:
    # Brussels springs forward on 2024-03-31 at 02:00. The pump stays on winter time until the
    # patient moves it on 1 April at 08:00 (-> 09:00). Readings before the zone's transition
    # were right; those between the transition and the change were an hour behind.
    rows = [
        "0,00000;2024/04/01;09:10:00;;;;;;;150;",
        "1,00000;2024/04/01;08:00:00;2024/04/01 09:00:00;;;;;;;",
        "2,00000;2024/03/31;12:00:00;;;;;;;140;",
        "3,00000;2024/03/30;12:00:00;;;;;;;130;",
    ]
    sensor = _gen_b([rows[1]], part="Pump").decode() + (
        "\n-------;MiniMed 780G MMT-1886;Sensor;NG1;------- \n"
        "Index;Date;Time;New Device Time;BG Reading (mg/dL);Basal Rate (U/h);Bolus Type;"
        "Bolus Volume Selected (U);Bolus Volume Delivered (U);Sensor Glucose (mg/dL);Event Marker\n"
        + "\n".join(r for i, r in enumerate(rows) if i != 1)
        + "\n"
    )
    batch = parse(sensor.encode())
    readings = sorted(
        (r.time, r.glucose, r.utc_offset) for r in batch.records if isinstance(r, CgmReading)
    )
    assert readings == [
        (at("2024-03-30T11:00:00"), 130.0, 60),  # before the transition: CET, unshifted
        (at("2024-03-31T11:00:00"), 140.0, 120),  # pump showed 12:00 CET = 13:00 CEST
        (at("2024-04-01T07:10:00"), 150.0, 120),  # after the change: right as written
    ]
