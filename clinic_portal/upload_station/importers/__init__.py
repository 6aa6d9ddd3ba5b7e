"""File importers: a vendor export (bytes) in, a :class:`~clinic_portal.records.RecordBatch` out.

Public entry points::

    detect_format(data) -> str
    parse_file(data, *, tz, now=None, max_bytes=50 MiB, progress=None) -> RecordBatch
    preview(batch, format) -> dict
    ImportFileError            # the only exception an importer lets escape
    neutralize_csv_cell(value) # for code that *writes* CSV

Supported formats: ``carelink_csv``, ``clarity_csv``, ``libreview_csv``, ``tidepool_json``,
``nightscout_json``, ``nightscout_csv``. Layouts and quirks: ``docs/import-formats.md``;
time rules: ``docs/time-rules.md``. Nothing here stores anything.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from clinic_portal.records import RecordBatch
from clinic_portal.upload_station.importers import (
    carelink,
    clarity,
    libreview,
    nightscout,
    tidepool,
)
from clinic_portal.upload_station.importers.base import (
    ImportContext,
    ImportFileError,
    decode_text,
    neutralize_csv_cell,
    now_epoch,
    split_lines,
)
from clinic_portal.upload_station.importers.localtime import UnknownZoneError, ZoneClock

__all__ = [
    "FORMATS",
    "ImportFileError",
    "detect_format",
    "neutralize_csv_cell",
    "parse_file",
    "preview",
]

FORMATS = (
    "carelink_csv",
    "clarity_csv",
    "libreview_csv",
    "tidepool_json",
    "nightscout_json",
    "nightscout_csv",
)
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_SUPPORTED = (
    "Medtronic CareLink CSV, Dexcom Clarity CSV, Abbott LibreView CSV, Tidepool JSON, "
    "Nightscout JSON (entries, treatments, profile) or Nightscout entries CSV"
)


def _detect_text(text: str) -> str:
    lines = split_lines(text[:200_000])
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise ImportFileError("the file is empty")
    head = lines[0].lstrip()
    if head.startswith("["):
        if tidepool.looks_like(text):
            return "tidepool_json"
        if nightscout.looks_like_json(text):
            return "nightscout_json"
    elif carelink.looks_like(lines):
        return "carelink_csv"
    elif clarity.looks_like(lines):
        return "clarity_csv"
    elif libreview.looks_like(lines):
        return "libreview_csv"
    elif nightscout.looks_like_csv(lines):
        return "nightscout_csv"
    raise ImportFileError(f"file format not recognised; supported formats: {_SUPPORTED}")


def detect_format(data: bytes) -> str:
    """Name the export format of ``data`` (one of :data:`FORMATS`).

    Raises ImportFileError naming the supported formats when the file is none of them.
    """
    return _detect_text(decode_text(data[:1_000_000] if len(data) > 1_000_000 else data, []))


_PARSERS: dict[str, Callable[[str, list[str], ImportContext], RecordBatch]] = {
    "carelink_csv": carelink.parse,
    "clarity_csv": clarity.parse,
    "libreview_csv": libreview.parse,
    "tidepool_json": tidepool.parse,
    "nightscout_json": nightscout.parse_json,
    "nightscout_csv": nightscout.parse_csv,
}


def parse_file(
    data: bytes,
    *,
    tz: str,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Callable[[int, int], None] | None = None,
) -> RecordBatch:
    """Detect and parse one export file into normalized records.

    ``tz`` is the patient's IANA zone, used to read device-local times (DST rules in
    docs/time-rules.md); ``now`` (default: the current time) bounds plausible timestamps;
    ``progress(done, total)`` is called every few thousand rows (lines of the file).
    Glucose is returned in mg/dL, insulin in U, carbs in g, times as epoch seconds UTC with
    the device offset in minutes. Duplicate rows inside the file are collapsed.

    Raises ImportFileError (and nothing else) for anything wrong with the file — including
    ``max_bytes`` exceeded, an unknown ``tz`` or an impossible value — naming line and column
    where there is one; no partial batch is returned.
    """
    if len(data) > max_bytes:
        raise ImportFileError(
            f"the file is {len(data):,} bytes, larger than the {max_bytes:,}-byte limit"
        )
    try:
        clock = ZoneClock(tz)
    except UnknownZoneError as exc:
        raise ImportFileError(str(exc)) from None
    warnings: list[str] = []
    text = decode_text(data, warnings)
    fmt = _detect_text(text)
    ctx = ImportContext(clock=clock, now=now_epoch(now), progress=progress, warnings=warnings)
    lines = split_lines(text)
    # Parsing allocates one small object per row and nothing cyclic; the cyclic collector
    # would rescan them all every few thousand allocations (about a third of the time on a
    # 90-day CareLink file), so it is paused for the parse.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        batch = _PARSERS[fmt](text, lines, ctx)
    except ImportFileError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as exc:
        # A malformed file reached a path the format checks did not foresee; report it as
        # the file's fault rather than crash the upload.
        raise ImportFileError(f"the {fmt} file is malformed ({type(exc).__name__}: {exc})") from exc
    finally:
        if gc_was_enabled:
            gc.enable()
    if progress is not None:
        progress(len(lines), len(lines))
    return batch


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def preview(batch: RecordBatch, format: str) -> dict[str, Any]:
    """A JSON-ready summary of a parsed batch (backs ``flask upload inspect``).

    Keys: ``format``, ``devices`` (``[{"serial", "model"}]``), ``first``/``last`` (UTC ISO
    8601 ``...Z`` or None), ``counts`` (cgm, bg, bolus, basal, carbs, device_event,
    pump_settings), ``units_in_file``, ``warnings``.
    """
    times = [r.time for r in batch.records]
    return {
        "format": format,
        "devices": [{"serial": d.serial, "model": d.model} for d in batch.devices],
        "first": _iso(min(times)) if times else None,
        "last": _iso(max(times)) if times else None,
        "counts": batch.counts(),
        "units_in_file": batch.units_in_file,
        "warnings": list(batch.warnings),
    }
