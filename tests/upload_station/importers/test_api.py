"""Entry points: detection, size and encoding checks, preview, progress, CSV safety."""

from __future__ import annotations

import codecs
from collections.abc import Callable

import pytest

from clinic_portal.records import RecordBatch
from clinic_portal.upload_station.importers import (
    FORMATS,
    ImportFileError,
    detect_format,
    neutralize_csv_cell,
    parse_file,
    preview,
)
from tests.upload_station.importers.conftest import NOW, fixture_bytes

Parse = Callable[..., RecordBatch]
LIBRE_US = ("libreview-csv", "libreview_synthetic_us_mm-dd-yyyy_ampm_mgdl.csv")


def test_unknown_format_names_the_supported_ones() -> None:
    with pytest.raises(ImportFileError) as err:
        detect_format(b"date,value\n2024-01-01,5\n")
    assert (
        "CareLink" in str(err.value)
        and "Nightscout" in str(err.value)
        and "Tidepool" in str(err.value)
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"   \r\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
        (bytes(range(1, 32)) * 40, "binary"),
        (b"\xff\xfe" + b"A\x00B", "UTF-16"),
    ],
)
def test_not_a_text_export(data: bytes, words: str) -> None:
    with pytest.raises(ImportFileError, match=words):
        parse_file(data, tz="UTC", now=NOW)


def test_size_limit() -> None:
    data = fixture_bytes(*LIBRE_US)
    with pytest.raises(ImportFileError, match="larger than the 100-byte limit"):
        parse_file(data, tz="UTC", max_bytes=100)


def test_unknown_zone_is_an_import_error() -> None:
    with pytest.raises(ImportFileError, match="unknown time zone"):
        parse_file(fixture_bytes(*LIBRE_US), tz="Nowhere/Town")


def test_windows_1252_and_utf16_files_are_read(parse: Parse) -> None:
    text = fixture_bytes(*LIBRE_US).decode().replace("Synthetic Patient", "Zoë Müller")
    as_1252 = parse(text.encode("cp1252"), tz="America/New_York")
    assert "decoded as Windows-1252" in " ".join(as_1252.warnings)
    as_utf16 = parse(codecs.BOM_UTF16_LE + text.encode("utf-16-le"), tz="America/New_York")
    assert as_utf16.counts() == as_1252.counts()


def test_future_dates_are_refused(parse: Parse) -> None:
    from datetime import UTC, datetime

    with pytest.raises(ImportFileError, match="in the future") as err:
        parse_file(
            fixture_bytes(*LIBRE_US), tz="America/New_York", now=datetime(2026, 4, 1, tzinfo=UTC)
        )
    assert err.value.line is not None


def test_preview_shape(parse: Parse) -> None:
    batch = parse(fixture_bytes(*LIBRE_US), tz="America/New_York")
    summary = preview(batch, "libreview_csv")
    assert list(summary) == [
        "format",
        "devices",
        "first",
        "last",
        "counts",
        "units_in_file",
        "warnings",
    ]
    assert summary["devices"] == [{"serial": "ABCD123-E4567", "model": "Libre app"}]
    assert summary["first"] == "2026-05-01T03:45:00Z"
    assert set(summary["counts"]) == {
        "cgm",
        "bg",
        "bolus",
        "basal",
        "carbs",
        "device_event",
        "pump_settings",
    }
    assert all(isinstance(w, str) for w in summary["warnings"])


def test_preview_of_empty_batch() -> None:
    summary = preview(RecordBatch(source="clarity_csv"), "clarity_csv")
    assert (summary["first"], summary["last"], summary["devices"]) == (None, None, [])


def test_progress_is_reported(parse: Parse) -> None:
    calls: list[tuple[int, int]] = []
    data = fixture_bytes(
        "libreview-csv", "libreview_libre3_mgdl_dd-mm-yyyy_anonymized_cgmformat.csv"
    )
    parse(data, tz="Europe/Moscow", progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 2
    assert calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_formats_constant() -> None:
    assert tuple(FORMATS) == (
        "carelink_csv",
        "clarity_csv",
        "libreview_csv",
        "tidepool_json",
        "nightscout_json",
        "nightscout_csv",
    )


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@A1", "'@A1"),
        ("\t=1", "'\t=1"),
        ("-1.5", "-1.5"),
        ("+4", "+4"),
        ("Meal 45 g", "Meal 45 g"),
        ("", ""),
    ],
)
def test_neutralize_csv_cell(cell: str, safe: str) -> None:
    assert neutralize_csv_cell(cell) == safe
