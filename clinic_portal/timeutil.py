"""Small time helpers shared by models and services."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones


def utcnow() -> datetime:
    """The current instant as an aware UTC datetime (SQLModel rejects naive datetimes)."""
    return datetime.now(UTC)


def epoch_to_utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def is_valid_time_zone(name: str) -> bool:
    """True for an IANA zone name such as ``Europe/Berlin``."""
    return name in _zones()


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def local_time(seconds: int, zone: str) -> datetime:
    """An epoch instant shown in the IANA zone ``zone``."""
    return datetime.fromtimestamp(seconds, ZoneInfo(zone))
