"""Device-local wall-clock time to UTC in the patient's IANA zone.

Vendor CSVs (CareLink, Clarity, LibreView) write local time without a zone (formats.md §0
rule 7). The rules applied here are written down in ``docs/time-rules.md``:

* a nonexistent local time (the spring-forward gap) is read with the offset in force before
  the gap, i.e. it moves forward by the gap's length (02:30 -> 03:30 CEST);
* an ambiguous local time (the repeated autumn hour) is the *first* occurrence unless the
  device's own sequence shows that its clock already went back
  (see :meth:`ZoneClock.to_utc_sequence`).

Local times are handled as "naive epoch seconds": the wall-clock reading counted as if it were
UTC. Converting row by row with ``datetime``/``zoneinfo`` costs microseconds per row, so the
zone's transitions are found once and each conversion is a binary search.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAY = 86400
# Years the converter accepts; anything else is a damaged timestamp, not a device clock.
_FIRST_YEAR, _LAST_YEAR = 1900, 2199
_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()


def naive_seconds(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> int:
    """Wall-clock date and time as seconds since 1970-01-01 00:00 *of that wall clock*."""
    days = datetime(year, month, day).toordinal() - _EPOCH_ORDINAL
    return days * _DAY + hour * 3600 + minute * 60 + second


def _year_start(year: int) -> int:
    return (datetime(year, 1, 1).toordinal() - _EPOCH_ORDINAL) * _DAY


def _year_of(local: int) -> int:
    return datetime.fromordinal(_EPOCH_ORDINAL + local // _DAY).year


class UnknownZoneError(ValueError):
    """The zone name is not in the IANA database."""


class ZoneClock:
    """Converts naive local seconds to ``(utc_seconds, utc_offset_minutes)`` in one zone."""

    def __init__(self, tz: str):
        try:
            self.zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise UnknownZoneError(f"unknown time zone {tz!r}") from exc
        self.name = tz
        self._first_year = 0
        self._last_year = -1
        self._keys: list[int] = []  # local seconds where each transition's window starts
        self._trans: list[tuple[int, int, int]] = []  # (utc instant, offset before, after) s
        self._base = 0  # offset before the first transition in range
        self._lo = 1  # local seconds covered by the table: [_lo, _hi)
        self._hi = 0

    # -- transition table ------------------------------------------------------------------

    def _offset_at(self, utc: int) -> int:
        off = datetime.fromtimestamp(utc, UTC).astimezone(self.zone).utcoffset()
        return int(off.total_seconds()) if off is not None else 0

    def _build(self, first_year: int, last_year: int) -> None:
        start = _year_start(first_year) - 2 * _DAY
        end = _year_start(last_year + 1) + 2 * _DAY
        trans: list[tuple[int, int, int]] = []
        prev = self._offset_at(start)
        base = prev
        t = start
        while t < end:
            nxt = min(t + _DAY, end)
            off = self._offset_at(nxt)
            if off != prev:
                lo, hi = t, nxt  # offset(lo) == prev, offset(hi) == off
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._offset_at(mid) == prev:
                        lo = mid
                    else:
                        hi = mid
                trans.append((hi, prev, off))
                prev = off
            t = nxt
        self._first_year, self._last_year = first_year, last_year
        self._lo, self._hi = _year_start(first_year), _year_start(last_year + 1)
        self._trans = trans
        self._keys = [u + min(a, b) for u, a, b in trans]
        self._base = base

    def _ensure(self, local: int) -> None:
        if self._lo <= local < self._hi:
            return
        year = _year_of(local)
        if not _FIRST_YEAR <= year <= _LAST_YEAR:
            raise ValueError(f"local time in year {year} is outside {_FIRST_YEAR}–{_LAST_YEAR}")
        if self._first_year > self._last_year:
            self._build(year, year)
        else:
            self._build(min(year, self._first_year), max(year, self._last_year))

    # -- conversion ------------------------------------------------------------------------

    def to_utc(self, local: int, fold: int = 0) -> tuple[int, int]:
        """``(utc_seconds, offset_minutes)`` for naive local seconds.

        ``fold=1`` picks the second occurrence of a repeated local time; gap times move
        forward (they are read with the offset in force before the gap).
        """
        if not (self._lo <= local < self._hi):
            self._ensure(local)
        i = bisect.bisect_right(self._keys, local) - 1
        if i < 0:
            off = self._trans[0][1] if self._trans else self._base
            return local - off, off // 60
        u, a, b = self._trans[i]
        if local >= u + max(a, b):
            return local - b, b // 60
        if b > a:  # gap: nonexistent time, shift forward
            return local - a, b // 60
        off = b if fold else a
        return local - off, off // 60

    def to_utc_sequence(self, locals_in_device_order: Iterable[int]) -> list[tuple[int, int]]:
        """Convert readings given in the device's own recording order.

        In a repeated hour the device clock runs back: a reading whose local time is earlier
        than one already seen in the same window belongs to the second pass (``fold=1``), and
        so does every later reading of that window.
        """
        out: list[tuple[int, int]] = []
        append = out.append
        second_pass: set[int] = set()
        latest: dict[int, int] = {}
        keys, trans = self._keys, self._trans
        bisect_right = bisect.bisect_right
        for local in locals_in_device_order:
            if not (self._lo <= local < self._hi):
                self._ensure(local)
                keys, trans = self._keys, self._trans
            i = bisect_right(keys, local) - 1
            if i < 0:
                off = trans[0][1] if trans else self._base
                append((local - off, off // 60))
                continue
            u, a, b = trans[i]
            if local >= u + (a if a > b else b):
                append((local - b, b // 60))
            elif b > a:  # gap: shift forward
                append((local - a, b // 60))
            else:  # repeated hour, window i
                if i not in second_pass and local < latest.get(i, local):
                    second_pass.add(i)
                if local > latest.get(i, local - 1):
                    latest[i] = local
                off = b if i in second_pass else a
                append((local - off, off // 60))
        return out

    def offset_minutes_at(self, utc: int) -> int:
        """The zone's offset from UTC, in minutes, at a UTC instant."""
        return self._offset_at(utc) // 60

    def transitions_between(self, local_start: int, local_end: int) -> list[tuple[int, int, int]]:
        """Transitions ``(utc, offset_before, offset_after)`` whose local time is in range."""
        self._ensure(local_start)
        self._ensure(local_end)
        return [(u, a, b) for u, a, b in self._trans if local_start <= u + a <= local_end]
