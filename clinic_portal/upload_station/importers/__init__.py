"""File importers: a vendor export (bytes) in, a :class:`~clinic_portal.records.RecordBatch` out.

Public entry points::

    detect_format(data) -> str
    parse_file(data, *, tz, now=None, max_bytes=50 MiB, progress=None) -> RecordBatch
    preview(batch, format) -> dict
    ImportFileError            # the only exception an importer lets escape
    neutralize_csv_cell(value) # for code that *writes* CSV

Supported formats: :data:`REGISTRY` (name, label, detection and parser of each, declared once).
Layouts and quirks: ``docs/import-formats.md``;
time rules: ``docs/time-rules.md``. Nothing here stores anything.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
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
    "REGISTRY",
    "ImportFileError",
    "ImportFormat",
    "detect_format",
    "neutralize_csv_cell",
    "parse_file",
    "preview",
]


@dataclass(frozen=True, slots=True)
class ImportFormat:
    """One export format the portal reads: the one place a new importer is declared."""

    name: str  # stored on the upload row, e.g. "carelink_csv"
    label: str  # what people read, e.g. "Medtronic CareLink CSV"
    # Whether the file is a JSON document (tried only when the text starts with "[") rather
    # than delimited text (tried otherwise), so a CSV check never runs over a JSON file.
    is_json: bool
    looks_like: Callable[[str, list[str]], bool]  # (text, first lines) -> is this the format?
    parse: Callable[[str, list[str], ImportContext], RecordBatch]


# In detection order: within a kind the first format whose ``looks_like`` accepts the file wins.
REGISTRY: tuple[ImportFormat, ...] = (
    ImportFormat(
        "carelink_csv",
        "Medtronic CareLink CSV",
        False,
        lambda _text, lines: carelink.looks_like(lines),
        carelink.parse,
    ),
    ImportFormat(
        "clarity_csv",
        "Dexcom Clarity CSV",
        False,
        lambda _text, lines: clarity.looks_like(lines),
        clarity.parse,
    ),
    ImportFormat(
        "libreview_csv",
        "Abbott LibreView CSV",
        False,
        lambda _text, lines: libreview.looks_like(lines),
        libreview.parse,
    ),
    ImportFormat(
        "tidepool_json",
        "Tidepool JSON",
        True,
        lambda text, _lines: tidepool.looks_like(text),
        tidepool.parse,
    ),
    ImportFormat(
        "nightscout_json",
        "Nightscout JSON (entries, treatments, profile)",
        True,
        lambda text, _lines: nightscout.looks_like_json(text),
        nightscout.parse_json,
    ),
    ImportFormat(
        "nightscout_csv",
        "Nightscout entries CSV",
        False,
        lambda _text, lines: nightscout.looks_like_csv(lines),
        nightscout.parse_csv,
    ),
)
FORMATS: dict[str, ImportFormat] = {f.name: f for f in REGISTRY}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


def _detect_text(text: str) -> ImportFormat:
    head_text = text[:200_000]
    lines = split_lines(head_text)
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise ImportFileError("the file is empty")
    is_json = lines[0].lstrip().startswith("[")
    for candidate in REGISTRY:
        if candidate.is_json == is_json and candidate.looks_like(text, lines):
            return candidate
    labels = [f.label for f in REGISTRY]
    supported = f"{', '.join(labels[:-1])} or {labels[-1]}"
    raise ImportFileError(f"file format not recognised; supported formats: {supported}")


def detect_format(data: bytes) -> str:
    """Name the export format of ``data`` (a key of :data:`FORMATS`).

    Raises ImportFileError naming the supported formats when the file is none of them.
    """
    return _detect_text(decode_text(data[:1_000_000] if len(data) > 1_000_000 else data, [])).name


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
    found = _detect_text(text)
    ctx = ImportContext(clock=clock, now=now_epoch(now), progress=progress, warnings=warnings)
    lines = split_lines(text)
    # Parsing allocates one small object per row and nothing cyclic; the cyclic collector
    # would rescan them all every few thousand allocations (about a third of the time on a
    # 90-day CareLink file), so it is paused for the parse.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        batch = found.parse(text, lines, ctx)
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
        raise ImportFileError(
            f"the {found.name} file is malformed ({type(exc).__name__}: {exc})"
        ) from exc
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
