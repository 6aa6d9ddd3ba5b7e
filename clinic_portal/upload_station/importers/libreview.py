"""Abbott LibreView CSV ("Download glucose data", formats.md §3).

The header is translated in non-English accounts, so once the 19-column (or old 18-column)
shape is recognised columns are taken by position, as Tidepool's LibreView driver does. Rows
are grouped by device and record type, not chronological; the day/month order of
``Device Timestamp`` is decided from the whole file.
"""

from __future__ import annotations

from clinic_portal.records import (
    MGDL_PER_MMOLL,
    Bolus,
    BolusSource,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    DeviceKind,
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
)
from clinic_portal.upload_station.importers.localtime import naive_seconds

FORMAT = "libreview_csv"
MANUFACTURER = "Abbott"
# Blood ketone strips read up to 8.0 mmol/L (LibreView HI, formats.md §3.1).
_KETONE_MAX = 8.0

# Positions (0-based) per layout; the old layout lacks "Carbohydrates (servings)".
_LAYOUT_19 = {
    "device": 0, "serial": 1, "time": 2, "type": 3, "historic": 4, "scan": 5,
    "rapid": 7, "carbs": 9, "servings": 10, "long": 12, "notes": 13, "strip": 14,
    "ketone": 15, "meal_ins": 16, "correction_ins": 17, "user_ins": 18,
}  # fmt: skip
_LAYOUT_18 = {
    "device": 0, "serial": 1, "time": 2, "type": 3, "historic": 4, "scan": 5,
    "rapid": 7, "carbs": 9, "long": 11, "notes": 12, "strip": 13, "ketone": 14,
    "meal_ins": 15, "correction_ins": 16, "user_ins": 17,
}  # fmt: skip


def _title_ok(cells: list[str]) -> bool:
    filled = [c for c in cells if c.strip()]
    return len(filled) >= 4 and filled[2].strip().upper().endswith("UTC")


def _header_index(lines: list[str]) -> int | None:
    """Index of the column header line (line 2, or 3 for LibreView Pro)."""
    if not lines:
        return None
    delimiter = sniff_delimiter(lines[0])
    if not _title_ok(first_cells(lines[0], delimiter)):
        return None
    for i in (1, 2):
        if i < len(lines):
            cells = first_cells(lines[i], sniff_delimiter(lines[i]))
            if len(cells) in (18, 19) and cells[3].strip():
                return i
    return None


def looks_like(lines: list[str]) -> bool:
    """Title line ``Glucose Data,Generated on,<date> UTC,...`` then an 18/19-column header."""
    return _header_index(lines) is not None


def _split_stamp(text: str) -> tuple[list[int], int, int, bool] | None:
    """``(date parts, hour, minute, has_ampm)`` or None; date separators - / ."""
    t = text.strip()
    date, _, rest = t.partition(" ")
    parts = date.replace("/", "-").replace(".", "-").split("-")
    if len(parts) != 3:
        return None
    try:
        nums = [int(p) for p in parts]
        clock, _, ampm = rest.strip().partition(" ")
        hh, mm = clock.split(":")[:2]
        hour, minute = int(hh), int(mm)
    except ValueError:
        return None
    ampm = ampm.strip().upper()
    if ampm in ("AM", "PM"):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "PM" else 0)
    elif ampm:
        return None
    return nums, hour, minute, bool(ampm)


def _date_order(stamps: list[tuple[list[int], int, int, bool]]) -> str:
    """``ymd``, ``dmy`` or ``mdy`` for the whole file (Tidepool's rule, formats.md §3.1)."""
    if stamps and all(len(str(s[0][0])) == 4 or s[0][0] > 31 for s in stamps):
        return "ymd"
    if any(s[0][0] > 12 for s in stamps):
        return "dmy"
    if any(s[0][1] > 12 for s in stamps):
        return "mdy"
    # Undecidable: 12-hour clocks are the US (month first) layout, 24-hour ones European.
    return "mdy" if any(s[3] for s in stamps) else "dmy"


def parse(text: str, lines: list[str], ctx: ImportContext) -> RecordBatch:
    """Parse a LibreView export into a batch."""
    hi = _header_index(lines)
    if hi is None:
        raise ImportFileError("LibreView column header not found", line=2)
    delimiter = sniff_delimiter(lines[hi])
    header = first_cells(lines[hi], delimiter)
    layout = _LAYOUT_19 if len(header) == 19 else _LAYOUT_18
    width = len(header)
    hist_name = header[layout["historic"]]
    if "mmol" in hist_name.lower():
        mmol: bool | None = True
    elif "mg" in hist_name.lower():
        mmol = False
    else:
        mmol = None  # decided from the values below

    rows: list[tuple[int, list[str], tuple[list[int], int, int, bool]]] = []
    total = len(lines)
    for n, (line, row) in enumerate(csv_rows(lines, delimiter, hi + 1), 1):
        if n % 4096 == 0:
            ctx.report(line, total)
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 4:
            raise ImportFileError("row has fewer than 4 cells (truncated?)", line=line)
        if len(row) < width:
            row = row + [""] * (width - len(row))
        stamp = _split_stamp(row[layout["time"]])
        if stamp is None:
            raise ImportFileError(
                f"{row[layout['time']]!r} is not a device timestamp",
                line=line,
                column=header[layout["time"]],
            )
        rows.append((line, row, stamp))
    order = _date_order([s for _, _, s in rows])

    def num(cell: str, line: int, key: str) -> float:
        # Some locales write a decimal comma (Tidepool retries with ',' -> '.').
        return parse_number(cell, line=line, column=header[layout[key]], decimal_comma="," in cell)

    if mmol is None:
        values = [
            num(r[layout["historic"]], ln, "historic")
            for ln, r, _ in rows
            if r[layout["historic"]].strip()
        ]
        mmol = bool(values) and max(values) < 40  # Tidepool: mg/dL if any value >= 40
    factor = MGDL_PER_MMOLL if mmol else 1.0

    groups: dict[tuple[str, str], list[int]] = {}
    locals_: list[int] = []
    for i, (line, row, (nums, hour, minute, _)) in enumerate(rows):
        if order == "ymd":
            y, m, d = nums
        elif order == "dmy":
            d, m, y = nums
        else:
            m, d, y = nums
        try:
            if hour > 23 or minute > 59:
                raise ValueError
            locals_.append(naive_seconds(y, m, d, hour, minute))
        except ValueError:
            raise ImportFileError(
                f"{row[layout['time']]!r} is not a valid date",
                line=line,
                column=header[layout["time"]],
            ) from None
        groups.setdefault((row[layout["serial"]].strip(), row[layout["type"]].strip()), []).append(
            i
        )
    converted: list[tuple[int, int]] = [(0, 0)] * len(rows)
    for members in groups.values():
        # File order within a device/type group is the device's recording order.
        for i, conv in zip(
            members, ctx.clock.to_utc_sequence(locals_[i] for i in members), strict=True
        ):
            converted[i] = conv

    out: list[Located] = []
    scans = 0
    for i, (line, row, _) in enumerate(rows):
        utc, offset = converted[i]
        model = row[layout["device"]].strip() or "FreeStyle Libre"
        serial = row[layout["serial"]].strip()
        if not serial:
            raise ImportFileError("empty serial number", line=line, column=header[layout["serial"]])
        ctx.add_device(serial, MANUFACTURER, model, DeviceKind.CGM)
        rtype = row[layout["type"]].strip()

        def cell(key: str, row: list[str] = row) -> str:
            pos = layout.get(key)
            return row[pos].strip() if pos is not None else ""

        if rtype == "0":
            value = cell("historic")
            if value:
                g = check_glucose(
                    round(num(value, line, "historic") * factor, 1),
                    line=line,
                    column=header[layout["historic"]],
                )
                out.append(
                    Located(
                        CgmReading(device_serial=serial, time=utc, utc_offset=offset, glucose=g),
                        line,
                        header[layout["historic"]],
                    )
                )
        elif rtype == "1":
            value = cell("scan")
            if value:
                # Validated, then left out: historic readings cover the same sensor every
                # 5-15 min, scans would over-weight the moments a patient looked.
                check_glucose(
                    round(num(value, line, "scan") * factor, 1),
                    line=line,
                    column=header[layout["scan"]],
                )
                scans += 1
        elif rtype == "2":
            value = cell("strip")
            if value:
                g = check_glucose(
                    round(num(value, line, "strip") * factor, 1),
                    line=line,
                    column=header[layout["strip"]],
                )
                out.append(
                    Located(
                        MeterReading(
                            device_serial=serial,
                            time=utc,
                            utc_offset=offset,
                            glucose=g,
                            source=MeterSource.METER,
                        ),
                        line,
                        header[layout["strip"]],
                    )
                )
        elif rtype == "3":
            value = cell("ketone")
            if value:
                k = num(value, line, "ketone")
                if not 0 <= k <= _KETONE_MAX:
                    raise ImportFileError(
                        f"ketone {k:g} mmol/L is outside 0–{_KETONE_MAX:g}",
                        line=line,
                        column=header[layout["ketone"]],
                    )
                out.append(
                    Located(
                        DeviceEvent(
                            device_serial=serial,
                            time=utc,
                            utc_offset=offset,
                            kind=DeviceEventKind.KETONE,
                            value=k,
                        ),
                        line,
                        header[layout["ketone"]],
                    )
                )
        elif rtype == "4":
            rapid = cell("rapid")
            if not rapid:
                parts = [cell(k) for k in ("meal_ins", "correction_ins", "user_ins")]
                if any(parts):
                    rapid = str(sum(num(p, line, "rapid") for p in parts if p))
            for key, long_acting, text_value in (
                ("rapid", False, rapid),
                ("long", True, cell("long")),
            ):
                if text_value:
                    amount = check_insulin(
                        num(text_value, line, key), line=line, column=header[layout[key]]
                    )
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
                            header[layout[key]],
                        )
                    )
        elif rtype == "5":
            value = cell("carbs")
            if value:
                carbs = check_carbs(
                    num(value, line, "carbs"), line=line, column=header[layout["carbs"]]
                )
                out.append(
                    Located(
                        CarbEntry(device_serial=serial, time=utc, utc_offset=offset, carbs=carbs),
                        line,
                        header[layout["carbs"]],
                    )
                )
            elif cell("servings"):
                ctx.warn(
                    "food logged in servings was skipped "
                    "(a serving's grams depend on the meter setting)"
                )
        elif rtype == "6":
            note = cell("notes")
            if note:
                out.append(
                    Located(
                        DeviceEvent(
                            device_serial=serial,
                            time=utc,
                            utc_offset=offset,
                            kind=DeviceEventKind.NOTE,
                            text=note,
                        ),
                        line,
                        header[layout["notes"]],
                    )
                )
        else:
            raise ImportFileError(f"unknown record type {rtype!r}", line=line, column=header[3])
    if scans:
        ctx.warn(
            f"{scans} scan readings were checked but not imported "
            "(historic readings cover the sensor)"
        )
    return finish_batch(FORMAT, out, ctx, "mmol/L" if mmol else "mg/dL")
