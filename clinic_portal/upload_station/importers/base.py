"""Shared pieces of the file importers: the one error type, text decoding, CSV sniffing, number and
value checks, synthetic serials and the final tidy-up every importer runs.

Importers turn text into :mod:`clinic_portal.records`; nothing here touches storage.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from clinic_portal.csv_safety import neutralize_csv_cell  # noqa: F401 - re-exported
from clinic_portal.records import (
    AnyRecord,
    DeviceInfo,
    DeviceKind,
    RecordBatch,
)
from clinic_portal.upload_station.importers.localtime import ZoneClock, naive_seconds

# Plausibility limits. A value outside them means the file is damaged or misread (a unit
# mix-up, a shifted column), so the whole file is refused rather than stored half-right.
# 20 mg/dL is the lowest value a strip meter reports (LibreView strip LO), 600 mg/dL the
# highest (meters' HI); CGMs stay within 40-400 (formats.md §2.1, §3.1).
GLUCOSE_MIN_MGDL = 20.0
GLUCOSE_MAX_MGDL = 600.0
# The largest programmable bolus on current pumps is 25-75 U; 250 U leaves room for
# pen logbooks and the 780G daily auto-insulin total while still catching unit errors.
INSULIN_MAX_U = 250.0
BASAL_MAX_U_PER_H = 50.0
CARBS_MAX_G = 1000.0
# Device clocks drift and a clinician may pick a zone a few hours off, so "in the future"
# means more than a day after ``now``.
FUTURE_TOLERANCE_S = 24 * 3600

ProgressCallback = Callable[[int, int], None]


class ImportFileError(ValueError):
    """The uploaded file cannot be imported; the message says what was wrong and where.

    ``line`` is the 1-based line of the file (for JSON the line where the record starts),
    ``column`` the column or field name; either is ``None`` when it does not apply.
    """

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None):
        self.line = line
        self.column = column
        self.reason = message
        where = []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


# --------------------------------------------------------------------------- decoding

_CONTROL = frozenset(chr(c) for c in range(32) if chr(c) not in "\t\n\r\f\v") | {"\x7f"}


def decode_text(data: bytes, warnings: list[str]) -> str:
    """Decode an export to text: UTF-8 (optional BOM), UTF-16 with BOM, else Windows-1252.

    Raises ImportFileError for empty or binary input.
    """
    if not data.strip():
        raise ImportFileError("the file is empty")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise ImportFileError("the file says UTF-16 but is not valid UTF-16") from exc
    else:
        if data.startswith(codecs.BOM_UTF8):
            data = data[3:]
        if b"\x00" in data:
            raise ImportFileError(
                "the file contains NUL bytes: it is binary or in an unsupported encoding, "
                "not a text export"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Excel re-saves of EU exports are Windows-1252 (formats.md §0 rule 1).
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise ImportFileError(
                    f"the file is neither UTF-8 nor Windows-1252 text (byte {exc.start})"
                ) from exc
            warnings.append("file is not UTF-8; decoded as Windows-1252")
    text = text.removeprefix("\ufeff")
    sample = text[:65536]
    bad = sum(1 for ch in sample if ch in _CONTROL)
    if bad > max(8, len(sample) // 1000):
        raise ImportFileError("the file contains binary data (control characters), not text")
    return text


def split_lines(text: str) -> list[str]:
    """Lines without their CR/LF endings (CRLF, LF and lone CR accepted)."""
    return text.splitlines()


def sniff_delimiter(line: str) -> str:
    """``;`` (EU locales), tab or ``,`` by counting each outside double quotes."""
    counts = {";": 0, ",": 0, "\t": 0}
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else ","


def csv_rows(lines: list[str], delimiter: str, start: int = 0) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_number, cells)`` for ``lines[start:]``; numbers are 1-based file lines.

    Quoted fields spanning lines are joined as the csv module does.
    """
    reader = csv.reader(lines[start:], delimiter=delimiter)
    try:
        for row in reader:
            yield start + reader.line_num, row
    except csv.Error as exc:
        raise ImportFileError(f"malformed CSV: {exc}", line=start + reader.line_num) from exc


def first_cells(line: str, delimiter: str) -> list[str]:
    """Cells of one line, quotes removed (for detection and preambles)."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return line.split(delimiter)


# --------------------------------------------------------------------------- values


def parse_number(text: str, *, line: int | None, column: str, decimal_comma: bool = False) -> float:
    """A finite number from a cell; ``decimal_comma`` for EU files (``0,55``)."""
    raw = text.strip()
    if decimal_comma:
        raw = raw.replace(",", ".")
    try:
        value = float(raw)
    except ValueError:
        raise ImportFileError(f"{text!r} is not a number", line=line, column=column) from None
    if not math.isfinite(value):
        raise ImportFileError(f"{text!r} is not a finite number", line=line, column=column)
    return value


def check_glucose(value: float, *, line: int | None, column: str) -> float:
    """Refuse glucose outside 20–600 mg/dL (``value`` already in mg/dL)."""
    if not GLUCOSE_MIN_MGDL <= value <= GLUCOSE_MAX_MGDL:
        raise ImportFileError(
            f"glucose {value:g} mg/dL is outside {GLUCOSE_MIN_MGDL:g}–{GLUCOSE_MAX_MGDL:g}",
            line=line,
            column=column,
        )
    return value


def check_insulin(value: float, *, line: int | None, column: str) -> float:
    """Refuse negative or absurd insulin amounts (U)."""
    if not 0.0 <= value <= INSULIN_MAX_U:
        raise ImportFileError(
            f"insulin {value:g} U is outside 0–{INSULIN_MAX_U:g}", line=line, column=column
        )
    return value


def check_rate(value: float, *, line: int | None, column: str) -> float:
    """Refuse negative or absurd basal rates (U/h)."""
    if not 0.0 <= value <= BASAL_MAX_U_PER_H:
        raise ImportFileError(
            f"basal rate {value:g} U/h is outside 0–{BASAL_MAX_U_PER_H:g}",
            line=line,
            column=column,
        )
    return value


def check_carbs(value: float, *, line: int | None, column: str) -> float:
    """Refuse negative or absurd carbohydrate amounts (g)."""
    if not 0.0 <= value <= CARBS_MAX_G:
        raise ImportFileError(
            f"carbohydrate {value:g} g is outside 0–{CARBS_MAX_G:g}", line=line, column=column
        )
    return value


def parse_hms(text: str, *, line: int | None, column: str) -> int:
    """Seconds from ``h:mm:ss`` / ``hh:mm:ss`` (CareLink, Clarity durations)."""
    parts = text.strip().split(":")
    try:
        if len(parts) == 3:
            h, m, s = (int(p) for p in parts)
        elif len(parts) == 2:
            h, m, s = int(parts[0]), int(parts[1]), 0
        else:
            raise ValueError(text)
    except ValueError:
        raise ImportFileError(
            f"{text!r} is not a h:mm:ss duration", line=line, column=column
        ) from None
    if h < 0 or not 0 <= m < 60 or not 0 <= s < 60:
        raise ImportFileError(f"{text!r} is not a h:mm:ss duration", line=line, column=column)
    return h * 3600 + m * 60 + s


def synthetic_serial(prefix: str, *facts: str) -> str:
    """A stable stand-in serial from what a file does say (model, app, patient name...).

    The facts are hashed so that patient names never appear in the serial.
    """
    digest = hashlib.sha256("\x1f".join(facts).encode()).hexdigest()[:10]
    return f"{prefix}-{digest}"


def json_records(text: str) -> list[tuple[int, Any]]:
    """Parse a top-level JSON array into ``(line, element)`` pairs.

    Line numbers let error messages point at the record that was wrong.
    """
    decoder = json.JSONDecoder()
    n = len(text)
    pos = 0
    while pos < n and text[pos].isspace():
        pos += 1
    if pos >= n or text[pos] != "[":
        raise ImportFileError("expected a JSON array of records", line=1)
    line = 1 + text.count("\n", 0, pos)
    last = pos
    pos += 1
    out: list[tuple[int, Any]] = []
    expect_value = True
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            line += text.count("\n", last, pos)
            raise ImportFileError("the JSON array is not closed (truncated file?)", line=line)
        ch = text[pos]
        if ch == "]" and (not out or not expect_value):
            break
        if ch == "," and not expect_value:
            pos += 1
            expect_value = True
            continue
        if not expect_value:
            line += text.count("\n", last, pos)
            raise ImportFileError("expected ',' or ']' between JSON records", line=line)
        line += text.count("\n", last, pos)
        last = pos
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"invalid JSON: {exc.msg}", line=exc.lineno) from exc
        except RecursionError as exc:
            raise ImportFileError("JSON nested too deeply", line=line) from exc
        out.append((line, obj))
        pos = end
        expect_value = False
    rest = text[pos + 1 :].strip()
    if rest:
        raise ImportFileError(
            "unexpected text after the JSON array", line=text.count("\n", 0, pos) + 1
        )
    return out


# --------------------------------------------------------------------------- context


@dataclass
class ImportContext:
    """What every importer needs: the patient's zone, ``now``, progress and warnings."""

    clock: ZoneClock
    now: int  # epoch seconds UTC
    progress: ProgressCallback | None = None
    warnings: list[str] = field(default_factory=list)
    devices: dict[str, DeviceInfo] = field(default_factory=dict)

    def add_device(self, serial: str, manufacturer: str, model: str, kind: DeviceKind) -> str:
        """Register a device once (first description wins) and return its serial."""
        if serial not in self.devices:
            self.devices[serial] = DeviceInfo(serial, manufacturer, model, kind)
        return serial

    def warn(self, message: str) -> None:
        """Record a warning once."""
        if message not in self.warnings:
            self.warnings.append(message)

    def report(self, done: int, total: int) -> None:
        """Forward progress to the caller's callback, if any."""
        if self.progress is not None:
            self.progress(done, total)


def now_epoch(now: datetime | None) -> int:
    """``now`` as epoch seconds; naive datetimes are taken as UTC."""
    if now is None:
        return int(datetime.now(UTC).timestamp())
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int(now.timestamp())


class Located(NamedTuple):
    """A record with the file line and column it came from (for the final time checks)."""

    record: AnyRecord
    line: int | None
    column: str


def finish_batch(
    source: str, located: list[Located], ctx: ImportContext, units: str | None
) -> RecordBatch:
    """Check times against ``now``, drop exact duplicates, sort by time and build the batch."""
    limit = ctx.now + FUTURE_TOLERANCE_S
    seen: dict[AnyRecord, None] = {}
    for item in located:
        rec = item.record
        if rec.time > limit:
            stamp = datetime.fromtimestamp(rec.time, UTC).strftime("%Y-%m-%d %H:%M UTC")
            raise ImportFileError(
                f"time {stamp} is in the future", line=item.line, column=item.column
            )
        seen.setdefault(rec, None)
    records = sorted(seen, key=lambda r: r.time)
    return RecordBatch(
        source=source,
        devices=list(ctx.devices.values()),
        records=records,
        warnings=list(ctx.warnings),
        units_in_file=units,
    )


_ISO_RE = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_iso_instant(text: object, *, line: int | None, column: str) -> tuple[int, int | None]:
    """``(epoch_seconds, offset_minutes)`` from ISO 8601; fractions (even ns) are dropped.

    A string without ``Z`` or an offset is returned as naive seconds with offset None.
    """
    m = _ISO_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ImportFileError(f"{text!r} is not an ISO 8601 time", line=line, column=column)
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    s = int(m.group(6) or 0)
    try:
        if h > 23 or mi > 59 or s > 60:
            raise ValueError(text)
        local = naive_seconds(y, mo, d, h, mi, min(s, 59))
    except ValueError:
        raise ImportFileError(
            f"{text!r} is not a valid date and time", line=line, column=column
        ) from None
    zone = m.group(7)
    if zone is None:
        return local, None
    if zone == "Z":
        return local, 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
    if abs(offset) > 18 * 60:
        raise ImportFileError(f"{text!r} has an impossible UTC offset", line=line, column=column)
    return local - offset * 60, offset


# Epoch milliseconds accepted from JSON/CSV sources: 1970 to the end of 2199.
_MAX_EPOCH_MS = 7258118400000


def epoch_from_ms(value: object, *, line: int | None, column: str) -> int:
    """Epoch seconds from an epoch-milliseconds value (number or numeric string)."""
    ms = json_number(value, line=line, column=column)
    if not 0 <= ms < _MAX_EPOCH_MS:
        raise ImportFileError(
            f"{value!r} is not an epoch-milliseconds date", line=line, column=column
        )
    return int(ms // 1000)


def json_number(value: object, *, line: int | None, column: str) -> float:
    """A finite number from a JSON value that may be a number or a numeric string."""
    if isinstance(value, bool):
        raise ImportFileError(f"{value!r} is not a number", line=line, column=column)
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        return parse_number(value, line=line, column=column)
    else:
        raise ImportFileError(f"{value!r} is not a number", line=line, column=column)
    if not math.isfinite(result):
        raise ImportFileError(f"{value!r} is not a finite number", line=line, column=column)
    return result
