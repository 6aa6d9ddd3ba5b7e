"""Small time helpers shared by models, services and templates."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, available_timezones


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


def as_utc(value: datetime) -> datetime:
    """A stored instant as an aware UTC datetime.

    The columns are ``timestamp without time zone`` holding UTC, so both engines hand back naive
    values; comparing them with :func:`utcnow` needs the zone back.
    """
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def local_datetime(value: datetime | int | None, zone: str = "UTC") -> str:
    """An instant (aware datetime or epoch seconds) shown in ``zone`` as ``YYYY-MM-DD HH:MM``."""
    if value is None:
        return "—"
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, UTC)
    return as_utc(value).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
