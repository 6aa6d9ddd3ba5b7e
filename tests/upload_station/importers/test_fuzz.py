"""Mutated real files: whatever happens, only ImportFileError may escape an importer.

Each format gets byte flips, truncation and line deletion/duplication on a small real file
(or the head of a larger one). Example counts are kept low so the module runs in seconds.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic_portal.records import RecordBatch
from clinic_portal.upload_station.importers import ImportFileError, parse_file
from tests.upload_station.importers.conftest import NOW, fixture_bytes


def _head(data: bytes, lines: int) -> bytes:
    return b"\n".join(data.split(b"\n")[:lines]) + b"\n"


def _json_head(folder: str, name: str, count: int) -> bytes:
    """The first ``count`` records of a JSON array file, re-serialised (a valid small seed)."""
    records = json.loads(fixture_bytes(folder, name))
    return json.dumps(records[:count], indent=1).encode()


def _carelink_seed() -> bytes:
    """Preamble, start of the 640G pump section and start of its sensor section."""
    lines = fixture_bytes(
        "carelink-csv", "carelink_640g+780g_eu-semicolon_multidevice_agpplus_TRIMMED.csv"
    ).split(b"\n")
    return b"\n".join([*lines[:60], b"", *lines[283:300]]) + b"\n"


SEEDS = {
    "carelink": _carelink_seed(),
    "carelink_mmol": fixture_bytes("carelink-csv", "carelink_synthetic_780g_eu-semicolon_mmol.csv"),
    "clarity": fixture_bytes(
        "dexcom-clarity-csv", "clarity_synthetic_14col_high-low-calibration-carbs.csv"
    ),
    "libreview": fixture_bytes("libreview-csv", "libreview_synthetic_us_mm-dd-yyyy_ampm_mgdl.csv"),
    "tidepool": _json_head(
        "tidepool-json", "tidepool_omnipod_pumpsettings-wizard-alarms_nodedatatools.json", 40
    ),
    "nightscout_profile": fixture_bytes("nightscout-json", "ns_profile_iaps_mmol_cgmformat.json"),
    "nightscout_treatments": _json_head(
        "nightscout-json", "ns_treatments_iaps_cgmformat_TRIMMED.json", 40
    ),
    "nightscout_csv": _head(
        fixture_bytes("nightscout-json", "ns_entries_api-csv-format_iaps_cgmformat_TRIMMED.csv"), 40
    ),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(
            st.sampled_from(["flip", "truncate", "delete_line", "duplicate_line", "insert"])
        )
        if not data:
            break
        if kind == "flip":
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data) - 1)) :]
        elif kind == "insert":
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = draw(
                st.sampled_from([b";", b",", b'"', b"\n", b"-", b"9999", b"\xc3", b"Low", b"\x00"])
            )
        else:
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            if kind == "delete_line":
                del lines[i]
            else:
                lines.insert(i, lines[i])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def _check(data: bytes) -> None:
    try:
        batch = parse_file(data, tz="Europe/Brussels", now=NOW)
    except ImportFileError as exc:
        assert str(exc)
        return
    assert isinstance(batch, RecordBatch)
    serials = {d.serial for d in batch.devices}
    assert all(r.device_serial in serials for r in batch.records)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_parses(name: str) -> None:
    batch = parse_file(SEEDS[name], tz="Europe/Brussels", now=NOW)
    assert batch.records


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_mutations_raise_only_import_file_error(name: str) -> None:
    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
    )
    @given(data=mutated(SEEDS[name]))
    def run(data: bytes) -> None:
        _check(data)

    run()
