"""Local wall-clock time to UTC: gap, repeated hour, device sequence, against zoneinfo."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic_portal.upload_station.importers.localtime import (
    UnknownZoneError,
    ZoneClock,
    naive_seconds,
)

ZONES = [
    "Europe/Brussels",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    "America/Sao_Paulo",
]


def reference(zone: str, local: int, fold: int) -> tuple[int, int]:
    """zoneinfo's answer; for gap times it also uses the offset before the gap (fold=0)."""
    wall = datetime(1970, 1, 1) + timedelta(seconds=local)
    aware = wall.replace(tzinfo=ZoneInfo(zone), fold=fold)
    utc = int(aware.timestamp())
    offset = datetime.fromtimestamp(utc, UTC).astimezone(ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return utc, int(offset.total_seconds()) // 60


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    local=st.integers(naive_seconds(1961, 1, 1), naive_seconds(2037, 12, 31)),
    fold=st.sampled_from([0, 1]),
)
def test_matches_zoneinfo(zone: str, local: int, fold: int) -> None:
    assert ZoneClock(zone).to_utc(local, fold) == reference(zone, local, fold)


def test_spring_gap_moves_forward() -> None:
    clock = ZoneClock("Europe/Brussels")
    # 2024-03-31 02:30 does not exist in Brussels: read as 03:30 CEST = 01:30 UTC.
    utc, offset = clock.to_utc(naive_seconds(2024, 3, 31, 2, 30))
    assert (utc, offset) == (int(datetime(2024, 3, 31, 1, 30, tzinfo=UTC).timestamp()), 120)


def test_repeated_hour_uses_device_order() -> None:
    clock = ZoneClock("Europe/Brussels")
    # 2024-10-27: 02:00-02:59 happens twice. Readings every 20 min in device order.
    walls = [(1, 40), (2, 0), (2, 20), (2, 40), (2, 0), (2, 20), (2, 40), (3, 0)]
    locals_ = [naive_seconds(2024, 10, 27, h, m) for h, m in walls]
    utcs = [u for u, _ in clock.to_utc_sequence(locals_)]
    assert all(b - a == 1200 for a, b in itertools.pairwise(utcs))
    offsets = [o for _, o in clock.to_utc_sequence(locals_)]
    assert offsets == [120, 120, 120, 120, 60, 60, 60, 60]


def test_single_repeated_time_is_first_occurrence() -> None:
    clock = ZoneClock("America/New_York")
    utc, offset = clock.to_utc(naive_seconds(2024, 11, 3, 1, 30))
    assert (utc, offset) == (int(datetime(2024, 11, 3, 5, 30, tzinfo=UTC).timestamp()), -240)


def test_unknown_zone() -> None:
    with pytest.raises(UnknownZoneError):
        ZoneClock("Mars/Olympus_Mons")
