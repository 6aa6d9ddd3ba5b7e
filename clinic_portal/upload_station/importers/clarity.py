"""Dexcom Clarity CSV export (formats.md §2).

Columns are taken by position once the 12/14-column layout is recognised, because localised
accounts translate the header (German ``Zeitstempel``, ``Glukosewert``...) while keeping the
order. Untimed preamble rows name the patient, the display devices and their alert settings;
timed rows are EGVs, calibrations, insulin, carbs and events.
"""

from __future__ import annotations

from clinic_portal.records import (
    MGDL_PER_MMOLL,
    Bolus,
    BolusSource,
    CarbEntry,
    CgmReading,
    CgmSettings,
    DeviceEvent,
    DeviceEventKind,
    DeviceKind,
    GlucoseFlag,
    MeterReading,
    MeterSource,
    RecordBatch,
)
from clinic_portal.upload_station.importers.base import (
    ImportContext,
    ImportFileError,
    Located,
    check_carbs,
    check_glucose,
    check_insulin,
    csv_rows,
    finish_batch,
    first_cells,
    parse_number,
    sniff_delimiter,
    synthetic_serial,
)
from clinic_portal.upload_station.importers.localtime import naive_seconds

FORMAT = "clarity_csv"
MANUFACTURER = "Dexcom"

# Column positions of the 14-column layout (the 12-column one stops after rate of change).
_TS, _TYPE, _SUBTYPE, _PATIENT, _DEVICE_INFO, _SOURCE, _GLUCOSE, _INSULIN, _CARBS, _DURATION = (
    range(1, 11)
)
_TX_TIME, _TX_ID = 12, 13

# Dexcom CGMs report 40–400 mg/dL; beyond that the export writes "Low"/"High".
_LOW_MGDL, _HIGH_MGDL = 40.0, 400.0
_LOW_WORDS = {"low", "niedrig", "bas", "bajo", "basso", "laag"}
_HIGH_WORDS = {"high", "hoch", "haut", "élevé", "alto", "hoog"}

# Event-type words (English and German as measured; formats.md §2.1).
_EGV = {"egv"}
_CALIBRATION = {"calibration", "kalibrierung"}
_INSULIN_TYPES = {"insulin"}
_CARB_TYPES = {"carbs", "kohlenhydrate"}
_NOTE_TYPES = {"exercise", "health", "bewegung", "gesundheit"}
_DEVICE = {"device", "gerät"}
_ALERT = {"alert", "warnung"}
_NAMES = {"firstname", "lastname", "vorname", "nachname"}


def _clean(cell: str) -> str:
    # The re-saved sample has the BOM as mojibake inside quotes: "ï»¿""Index""".
    return cell.replace("ï»¿", "").replace("\ufeff", "").strip().strip('"').strip()


def looks_like(lines: list[str]) -> bool:
    """Line 1 starts ``Index`` then a ``Timestamp (YYYY-MM-DDThh:mm:ss)``-like column."""
    cells = first_cells(lines[0], sniff_delimiter(lines[0]))
    if len(cells) < 12:
        return False
    return _clean(cells[0]) == "Index" and "hh:mm:ss" in cells[1]


def _timestamp(text: str, line: int) -> int:
    """``YYYY-MM-DDThh:mm:ss`` (a space instead of ``T`` in re-saved files)."""
    t = text.strip()
    try:
        if len(t) < 16 or t[4] != "-" or t[7] != "-" or t[10] not in "T ":
            raise ValueError(t)
        sec = int(t[17:19]) if len(t) >= 19 else 0
        return naive_seconds(
            int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]), sec
        )
    except ValueError:
        raise ImportFileError(
            f"{text!r} is not a YYYY-MM-DDThh:mm:ss timestamp", line=line, column="Timestamp"
        ) from None


def parse(text: str, lines: list[str], ctx: ImportContext) -> RecordBatch:
    """Parse a Clarity export into a batch."""
    delimiter = sniff_delimiter(lines[0])
    header = [_clean(c) for c in first_cells(lines[0], delimiter)]
    glucose_name = header[_GLUCOSE] if len(header) > _GLUCOSE else "Glucose Value"
    mmol = "mmol" in glucose_name.lower()
    factor = MGDL_PER_MMOLL if mmol else 1.0
    decimal_comma = delimiter == ";"

    def num(cell: str, line: int, column: str) -> float:
        return parse_number(cell, line=line, column=column, decimal_comma=decimal_comma)

    names: list[str] = []
    device_info: dict[str, str] = {}
    alerts: dict[str, dict[str, float]] = {}
    timed: list[tuple[int, list[str]]] = []
    total = len(lines)
    for n, (line, row) in enumerate(csv_rows(lines, delimiter, 1), 1):
        if n % 4096 == 0:
            ctx.report(line, total)
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < _TX_TIME:
            row = row + [""] * (_TX_ID + 1 - len(row))  # ragged rows (formats.md §2.1)
        elif len(row) < _TX_ID + 1:
            row = row + [""] * (_TX_ID + 1 - len(row))
        kind = row[_TYPE].strip().lower()
        if row[_TS].strip():
            timed.append((line, row))
            continue
        source = row[_SOURCE].strip()
        if kind in _NAMES:
            names.append(row[_PATIENT].strip())
        elif kind in _DEVICE and source:
            device_info[source] = row[_DEVICE_INFO].strip() or source
        elif kind in _ALERT and row[_GLUCOSE].strip():
            sub = row[_SUBTYPE].strip().lower()
            try:
                value = num(row[_GLUCOSE], line, glucose_name) * factor
            except ImportFileError:
                continue  # an alert setting we cannot read is not worth refusing the file
            slot = (
                "urgent_low"
                if ("urgent" in sub or "dringend" in sub)
                else (
                    "high_alert"
                    if sub in ("high", "hoch")
                    else "low_alert"
                    if sub in ("low", "niedrig")
                    else ""
                )
            )
            if slot and "soon" not in sub and "bald" not in sub:
                alerts.setdefault(source, {})[slot] = round(value, 1)

    person = "|".join(names)
    serials: dict[str, str] = {}

    def serial_for(source: str) -> str:
        serial = serials.get(source)
        if serial is None:
            model = device_info.get(source, source or "Dexcom CGM")
            # Clarity names the display device ("iPhone G6") but gives no serial; the
            # transmitter ID changes with every sensor, so it cannot identify the device.
            serial = synthetic_serial("clarity", model, source, person)
            ctx.add_device(serial, MANUFACTURER, model, DeviceKind.CGM)
            ctx.warn(
                f"Clarity gives no device serial for {model} ({source or 'unknown'}); "
                f"using {serial}"
            )
            serials[source] = serial
        return serial

    # Device order for the repeated hour: transmitter time (monotonic) where present.
    pending: list[tuple[str, int, int, list[str]]] = []  # kind, local, line, row
    groups: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for line, row in timed:
        local = _timestamp(row[_TS], line)
        kind = row[_TYPE].strip().lower()
        idx = len(pending)
        pending.append((kind, local, line, row))
        tx_time = row[_TX_TIME].strip()
        try:
            order = float(tx_time) if tx_time else float(row[0].strip() or line)
        except ValueError:
            order = float(line)
        key = (row[_SOURCE].strip(), row[_TX_ID].strip() if tx_time else "")
        groups.setdefault(key, []).append((order, idx))
    utc_of: list[tuple[int, int]] = [(0, 0)] * len(pending)
    for members in groups.values():
        members.sort()
        converted = ctx.clock.to_utc_sequence(pending[i][1] for _, i in members)
        for (_, i), conv in zip(members, converted, strict=True):
            utc_of[i] = conv

    out: list[Located] = []
    seen_egv: set[tuple[str, str]] = set()
    first_time: dict[str, tuple[int, int, int]] = {}
    for i, (kind, _local, line, row) in enumerate(pending):
        utc, offset = utc_of[i]
        source = row[_SOURCE].strip()
        serial = serial_for(source)
        if serial not in first_time or utc < first_time[serial][0]:
            first_time[serial] = (utc, offset, line)
        if kind in _EGV or kind in _CALIBRATION:
            cell = row[_GLUCOSE].strip()
            word = cell.lower()
            flag = GlucoseFlag.NONE
            if word in _LOW_WORDS:
                value, flag = _LOW_MGDL, GlucoseFlag.BELOW_LIMIT
            elif word in _HIGH_WORDS:
                value, flag = _HIGH_MGDL, GlucoseFlag.ABOVE_LIMIT
            elif not cell:
                continue
            else:
                value = check_glucose(
                    round(num(cell, line, glucose_name) * factor, 1), line=line, column=glucose_name
                )
            if kind in _EGV:
                tx = (row[_TX_ID].strip(), row[_TX_TIME].strip())
                if tx[1]:
                    # A phone and a watch both export the same sensor reading.
                    if tx in seen_egv:
                        continue
                    seen_egv.add(tx)
                out.append(
                    Located(
                        CgmReading(
                            device_serial=serial,
                            time=utc,
                            utc_offset=offset,
                            glucose=value,
                            flag=flag,
                        ),
                        line,
                        glucose_name,
                    )
                )
            else:
                out.append(
                    Located(
                        MeterReading(
                            device_serial=serial,
                            time=utc,
                            utc_offset=offset,
                            glucose=value,
                            source=MeterSource.CALIBRATION,
                            flag=flag,
                        ),
                        line,
                        glucose_name,
                    )
                )
        elif kind in _INSULIN_TYPES:
            column = header[_INSULIN] if len(header) > _INSULIN else "Insulin Value (u)"
            cell = row[_INSULIN].strip()
            if not cell:
                continue
            amount = check_insulin(num(cell, line, column), line=line, column=column)
            sub = row[_SUBTYPE].strip().lower()
            long_acting = "long" in sub or "lang" in sub
            out.append(
                Located(
                    Bolus(
                        device_serial=serial,
                        time=utc,
                        utc_offset=offset,
                        source=BolusSource.PEN,
                        programmed=amount,
                        delivered=amount,
                        long_acting=long_acting,
                    ),
                    line,
                    column,
                )
            )
        elif kind in _CARB_TYPES:
            column = header[_CARBS] if len(header) > _CARBS else "Carb Value (grams)"
            cell = row[_CARBS].strip()
            if not cell:
                continue
            carbs = check_carbs(num(cell, line, column), line=line, column=column)
            out.append(
                Located(
                    CarbEntry(device_serial=serial, time=utc, utc_offset=offset, carbs=carbs),
                    line,
                    column,
                )
            )
        elif kind in _NOTE_TYPES:
            parts = [row[_TYPE].strip(), row[_SUBTYPE].strip(), row[_DURATION].strip()]
            out.append(
                Located(
                    DeviceEvent(
                        device_serial=serial,
                        time=utc,
                        utc_offset=offset,
                        kind=DeviceEventKind.NOTE,
                        text=" ".join(p for p in parts if p),
                    ),
                    line,
                    "Event Type",
                )
            )
    for source, settings in alerts.items():
        serial = serial_for(source)
        if serial in first_time:
            utc, offset, line = first_time[serial]
            out.append(
                Located(
                    CgmSettings(
                        device_serial=serial,
                        time=utc,
                        utc_offset=offset,
                        low_alert=settings.get("low_alert"),
                        high_alert=settings.get("high_alert"),
                        urgent_low=settings.get("urgent_low"),
                    ),
                    line,
                    glucose_name,
                )
            )
    if not timed:
        ctx.warn("the export contains no timed rows")
    return finish_batch(FORMAT, out, ctx, "mmol/L" if mmol else "mg/dL")
