"""Small time helpers shared by models and services."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import available_timezones


def utcnow() -> datetime:
    """The current instant as an aware UTC datetime (SQLModel rejects naive datetimes)."""
    return datetime.now(UTC)


@cache
def _zones() -> frozenset[str]:
    # available_timezones() reads the tz database from disk: once per process is enough.
    return frozenset(available_timezones())


def is_valid_time_zone(name: str) -> bool:
    """True for an IANA zone name such as ``Europe/Berlin``."""
    return name in _zones()
