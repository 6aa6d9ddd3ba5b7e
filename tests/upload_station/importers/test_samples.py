"""Every public sample file: format detected, record counts, time range and units.

Counts were checked by hand against the files (see the spot-value tests in the per-format
modules); a change in any of them means an importer changed behaviour.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from clinic_portal.records import RecordBatch
from clinic_portal.upload_station.importers import detect_format, preview
from tests.upload_station.importers.conftest import fixture_bytes, sample_bytes


def _counts(
    cgm: int, bg: int, bolus: int, basal: int, carbs: int, event: int, settings: int
) -> dict[str, int]:
    return {
        "cgm": cgm,
        "bg": bg,
        "bolus": bolus,
        "basal": basal,
        "carbs": carbs,
        "device_event": event,
        "pump_settings": settings,
    }


# (where, folder, file, tz, format, counts, first, last, units)
CASES = [
    (
        "fixtures",
        "carelink-csv",
        "carelink_780g_eu-semicolon_mgdl_7d_agpplus.csv",
        "Europe/Brussels",
        "carelink_csv",
        _counts(1946, 15, 60, 110, 55, 62, 0),
        "2025-10-27T23:00:00Z",
        "2025-11-04T23:25:07Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "carelink-csv",
        "carelink_640g+780g_eu-semicolon_multidevice_agpplus_TRIMMED.csv",
        "Europe/Brussels",
        "carelink_csv",
        _counts(503, 10, 46, 225, 38, 119, 0),
        "2022-03-05T21:01:57Z",
        "2022-06-13T21:36:45Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "carelink-csv",
        "carelink_guardian-connect_eu-semicolon_mgdl_cgmformat_TRIMMED.csv",
        "Europe/Bucharest",
        "carelink_csv",
        _counts(529, 54, 72, 0, 33, 349, 0),
        "2021-04-30T11:25:15Z",
        "2021-07-25T06:35:28Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "carelink-csv",
        "carelink_paradigm-revel723_us-comma_mgdl_2018_glugo.csv",
        "America/Chicago",
        "carelink_csv",
        _counts(0, 110, 93, 207, 77, 68, 0),
        "2018-09-05T12:45:28Z",
        "2018-09-26T19:42:33Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "carelink-csv",
        "carelink_synthetic_780g_eu-semicolon_mmol.csv",
        "Europe/Brussels",
        "carelink_csv",
        _counts(3, 1, 1, 6, 1, 5, 0),
        "2024-02-29T23:00:00Z",
        "2024-03-02T11:00:00Z",
        "mmol/L",
    ),
    (
        "shared",
        "carelink-csv",
        "carelink_old-v1.0.1_paradigm-revel523_us_mgdl_2015_decodingcarelink.csv",
        "America/Los_Angeles",
        "carelink_csv",
        _counts(245, 4, 7, 10, 2, 34, 1),
        "2015-04-11T20:59:37Z",
        "2015-04-13T03:12:54Z",
        "mg/dL",
    ),
    (
        "shared",
        "carelink-csv",
        "carelink_old-v1.0.1_paradigm722_us_mgdl_2014_timechanges_decodingcarelink.csv",
        "America/Los_Angeles",
        "carelink_csv",
        _counts(359, 9, 0, 0, 0, 4, 1),
        "2014-04-25T16:10:59Z",
        "2014-04-26T22:40:42Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "dexcom-clarity-csv",
        "clarity_g6-android_14col_mgdl_anonymized-resaved_cgmformat.csv",
        "Europe/Bucharest",
        "clarity_csv",
        _counts(3922, 0, 47, 0, 0, 0, 1),
        "1961-04-11T22:56:47Z",
        "1961-04-25T16:52:23Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "dexcom-clarity-csv",
        "clarity_g6-iphone_12col_mgdl_2016_cgmquantify.csv",
        "America/New_York",
        "clarity_csv",
        _counts(2148, 0, 0, 0, 0, 0, 1),
        "2016-10-24T15:24:17Z",
        "2016-11-01T13:19:02Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "dexcom-clarity-csv",
        "clarity_synthetic_14col_high-low-calibration-carbs.csv",
        "America/New_York",
        "clarity_csv",
        _counts(4, 1, 2, 0, 1, 1, 1),
        "2024-05-01T12:00:00Z",
        "2024-05-02T02:00:00Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "dexcom-clarity-csv",
        "clarity_synthetic_14col-unquoted_mmol.csv",
        "America/New_York",
        "clarity_csv",
        _counts(2, 0, 0, 0, 0, 0, 0),
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:05:00Z",
        "mmol/L",
    ),
    (
        "shared",
        "dexcom-clarity-csv",
        "clarity_g7-ios_de-semicolon_mgdl_aidr_EXCERPT.csv",
        "Europe/Berlin",
        "clarity_csv",
        _counts(29, 0, 0, 0, 0, 0, 1),
        "2025-12-31T23:04:45Z",
        "2026-01-01T01:24:44Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "libreview-csv",
        "libreview_libre3_mgdl_dd-mm-yyyy_anonymized_cgmformat.csv",
        "Europe/Moscow",
        "libreview_csv",
        _counts(4305, 0, 0, 0, 0, 0, 0),
        "1961-04-12T19:30:00Z",
        "1961-04-27T18:10:00Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "libreview-csv",
        "libreview_librelink_mmol_uk_2025_insulin-rows_cgmdataprocessor.csv",
        "Europe/London",
        "libreview_csv",
        _counts(2349, 0, 147, 0, 88, 0, 0),
        "2025-09-01T20:58:00Z",
        "2025-10-11T16:06:00Z",
        "mmol/L",
    ),
    (
        "fixtures",
        "libreview-csv",
        "libreview_synthetic_us_mm-dd-yyyy_ampm_mgdl.csv",
        "America/New_York",
        "libreview_csv",
        _counts(3, 1, 2, 0, 1, 2, 0),
        "2026-05-01T03:45:00Z",
        "2026-05-02T01:00:00Z",
        "mg/dL",
    ),
    (
        "shared",
        "libreview-csv",
        "libreview_librelink_mmol_dd-mm-yyyy_2019-2020_glyco.csv",
        "Europe/Brussels",
        "libreview_csv",
        _counts(8372, 0, 0, 0, 2, 165, 0),
        "2019-12-05T15:25:00Z",
        "2020-11-28T22:19:00Z",
        "mmol/L",
    ),
    (
        "fixtures",
        "tidepool-json",
        "tidepool_medtronic-670g-mmt1780_cbg-basal-bolus-wizard_nodedatatools.json",
        "Australia/Sydney",
        "tidepool_json",
        _counts(1561, 52, 50, 1276, 34, 8, 1),
        "2018-05-29T12:56:24Z",
        "2018-06-04T08:13:40Z",
        "mmol/L",
    ),
    (
        "fixtures",
        "tidepool-json",
        "tidepool_omnipod_pumpsettings-wizard-alarms_nodedatatools.json",
        "America/Denver",
        "tidepool_json",
        _counts(0, 78, 109, 46, 63, 31, 1),
        "2019-07-13T03:27:03Z",
        "2019-07-31T16:17:17Z",
        "mmol/L",
    ),
    (
        "fixtures",
        "tidepool-json",
        "tidepool_loop-healthkit_mixed-types_nodedatatools.json",
        "America/Denver",
        "tidepool_json",
        _counts(2, 2, 1, 1, 1, 1, 0),
        "2019-10-24T02:28:25Z",
        "2019-11-07T21:23:49Z",
        "mmol/L",
    ),
    (
        "fixtures",
        "tidepool-json",
        "tidepool_dexcom-api-service_cbg_nodedatatools.json",
        "America/New_York",
        "tidepool_json",
        _counts(2, 0, 0, 0, 0, 0, 0),
        "2019-07-22T15:12:37Z",
        "2019-07-22T15:17:36Z",
        "mmol/L",
    ),
    (
        "fixtures",
        "nightscout-json",
        "ns_entries_sgv_iaps-dexcom_cgmformat_TRIMMED.json",
        "Europe/Moscow",
        "nightscout_json",
        _counts(296, 0, 0, 0, 0, 0, 0),
        "2026-04-04T18:02:21Z",
        "2026-04-05T20:30:29Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "nightscout-json",
        "ns_entries_api-csv-format_iaps_cgmformat_TRIMMED.csv",
        "Europe/Moscow",
        "nightscout_csv",
        _counts(296, 0, 0, 0, 0, 0, 0),
        "2026-04-04T18:02:21Z",
        "2026-04-05T20:30:29Z",
        "mg/dL",
    ),
    (
        "fixtures",
        "nightscout-json",
        "ns_treatments_iaps_cgmformat_TRIMMED.json",
        "Europe/Moscow",
        "nightscout_json",
        _counts(0, 0, 78, 60, 9, 13, 0),
        "2026-04-02T14:10:28Z",
        "2026-04-05T20:16:02Z",
        None,
    ),
    (
        "fixtures",
        "nightscout-json",
        "ns_profile_iaps_mmol_cgmformat.json",
        "Europe/Moscow",
        "nightscout_json",
        _counts(0, 0, 0, 0, 0, 0, 9),
        "2026-01-08T02:51:10Z",
        "2026-04-05T08:33:12Z",
        "mmol/L",
    ),
    (
        "shared",
        "nightscout-json",
        "ns_entries_legacy-dexcom-2014_string-sgv_cgmremotemonitor.json",
        "America/Los_Angeles",
        "nightscout_json",
        _counts(18, 0, 0, 0, 0, 0, 0),
        "2014-07-19T09:34:15Z",
        "2014-07-19T10:59:15Z",
        "mg/dL",
    ),
    (
        "shared",
        "nightscout-json",
        "ns_treatments_openaps-medtronic-temp-basal_string-numbers_cgmremotemonitor.json",
        "America/Los_Angeles",
        "nightscout_json",
        _counts(0, 0, 0, 2, 0, 0, 0),
        "2016-10-23T18:38:50Z",
        "2016-10-23T18:45:22Z",
        None,
    ),
]


def _load(where: str, folder: str, name: str) -> bytes:
    return fixture_bytes(folder, name) if where == "fixtures" else sample_bytes(folder, name)


@pytest.mark.parametrize(
    ("where", "folder", "name", "tz", "fmt", "counts", "first", "last", "units"),
    CASES,
    ids=[c[2] for c in CASES],
)
def test_sample_file(
    parse: Callable[..., RecordBatch],
    where: str,
    folder: str,
    name: str,
    tz: str,
    fmt: str,
    counts: dict[str, int],
    first: str,
    last: str,
    units: str | None,
) -> None:
    data = _load(where, folder, name)
    assert detect_format(data) == fmt
    batch = parse(data, tz=tz)
    summary = preview(batch, fmt)
    assert summary["format"] == fmt == batch.source
    assert summary["counts"] == counts
    assert (summary["first"], summary["last"]) == (first, last)
    assert summary["units_in_file"] == units
    serials = {d.serial for d in batch.devices}
    assert serials and all(r.device_serial in serials for r in batch.records)
    times = [r.time for r in batch.records]
    assert times == sorted(times)
    assert len(set(batch.records)) == len(batch.records)


def test_every_shared_sample_is_covered() -> None:
    """A sample added to shared/samples must get a row in CASES."""
    from tests.upload_station.importers.conftest import SAMPLES

    if not SAMPLES.exists():
        pytest.skip(f"shared samples not available ({SAMPLES})")
    on_disk = {
        p.name
        for p in SAMPLES.glob("*/*")
        if p.parent.name != "fhir-cgm-ig" and p.suffix in (".csv", ".json")
    }
    assert on_disk <= {c[2] for c in CASES}
