"""A movable clock for tests of expiry and lockout (no sleeping, no timed assertions)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from clinic_portal import timeutil


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return _real_utcnow() + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


_real_utcnow = timeutil.utcnow


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Moves ``timeutil.utcnow`` (which the account, share and kiosk rules read)."""
    moving = Clock()
    monkeypatch.setattr(timeutil, "utcnow", moving.now)
    return moving
