"""Nightscout API v1 downloads: entries, treatments and profile JSON, and the entries CSV
(formats.md §5).

Nightscout times are absolute (``date`` epoch ms, ``created_at`` ISO with offset), so no local
time conversion is needed; ``utcOffset`` is kept when present, otherwise the patient's zone
gives it. Numbers may arrive as strings in legacy and OpenAPS documents.
"""

from __future__ import annotations

import re
from typing import Any

from clinic_portal.records import (
    MGDL_PER_MMOLL,
    BasalKind,
    BasalSegment,
    Bolus,
    BolusKind,
    BolusSource,
    CarbEntry,
    CgmReading,
    DeviceEvent,
    DeviceEventKind,
    DeviceKind,
    MeterReading,
    MeterSource,
    PumpSettings,
    RecordBatch,
)
from clinic_portal.upload_station.importers.base import (
    ImportContext,
    ImportFileError,
    Located,
    check_carbs,
    check_glucose,
    check_insulin,
    check_rate,
    csv_rows,
    epoch_from_ms,
    finish_batch,
    first_cells,
    json_number,
    json_records,
    parse_iso_instant,
    synthetic_serial,
)

FORMAT_JSON = "nightscout_json"
FORMAT_CSV = "nightscout_csv"
# sgv values below 40 are Dexcom status codes (?SN, ?NA, ???...), not glucose
# (cgm-remote-monitor lib/plugins/errorcodes.js, formats.md §5.1).
_ERROR_CODE_LIMIT = 40
_NS_RE = re.compile(r'"(sgv|mbg|eventType|defaultProfile|store)"\s*:')


def looks_like_json(text: str) -> bool:
    """A JSON array of entries, treatments or profile documents."""
    return _NS_RE.search(text[:100_000]) is not None


def looks_like_csv(lines: list[str]) -> bool:
    """Header-less ``"dateString",date,sgv,"direction","device"`` lines."""
    cells = first_cells(lines[0], "\t" if "\t" in lines[0] else ",")
    if len(cells) < 3:
        return False
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}T.*", cells[0].strip())) and bool(
        re.fullmatch(r"\d{12,14}(\.\d+)?", cells[1].strip())
    )


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


class _Devices:
    def __init__(self, ctx: ImportContext):
        self.ctx = ctx
        self.serials: dict[tuple[str, DeviceKind], str] = {}

    def serial(self, name: str, kind: DeviceKind) -> str:
        """Nightscout names uploaders, not devices: a stable serial from the name."""
        name = name.strip() or "nightscout"
        key = (name, kind)
        serial = self.serials.get(key)
        if serial is None:
            serial = synthetic_serial(f"ns-{kind.value}", name)
            self.ctx.add_device(serial, "Nightscout", name, kind)
            self.ctx.warn(f"Nightscout gives no device serial for {name!r}; using {serial}")
            self.serials[key] = serial
        return serial


def _when(doc: dict[str, Any], line: int, ctx: ImportContext) -> tuple[int, int]:
    """``(utc seconds, offset minutes)`` from ``date``/``mills`` or an ISO field."""
    offset: int | None = None
    utc: int | None = None
    for key in ("date", "mills"):
        if doc.get(key) is not None and not isinstance(doc.get(key), str):
            utc = epoch_from_ms(doc[key], line=line, column=key)
            break
    if utc is None:
        for key in ("created_at", "dateString", "sysTime", "timestamp", "startDate"):
            value = doc.get(key)
            if isinstance(value, str) and value:
                utc, offset = parse_iso_instant(value, line=line, column=key)
                if offset is None:
                    utc, offset = ctx.clock.to_utc(utc)
                break
    if utc is None:
        raise ImportFileError("record has no date", line=line, column="date")
    if doc.get("utcOffset") is not None:
        offset = int(json_number(doc["utcOffset"], line=line, column="utcOffset"))
    if offset is None:
        offset = ctx.clock.offset_minutes_at(utc)
    return utc, offset


def parse_json(text: str, lines: list[str], ctx: ImportContext) -> RecordBatch:
    """Parse a Nightscout entries, treatments or profile JSON array (or a mix)."""
    docs = json_records(text)
    devices = _Devices(ctx)
    out: list[Located] = []
    basal_profile: list[tuple[int, float]] = []
    profiles = [(ln, d) for ln, d in docs if isinstance(d, dict) and "store" in d]
    units: str | None = None
    error_codes = 0
    for line, doc in profiles:
        rec, prof_units, basal = _profile(doc, line, ctx, devices)
        if rec is not None:
            out.append(Located(rec, line, "store"))
            units = units or prof_units
            basal_profile = basal_profile or basal
    total = len(docs)
    for n, (line, doc) in enumerate(docs, 1):
        if n % 4096 == 0:
            ctx.report(n, total)
        if not isinstance(doc, dict):
            raise ImportFileError("a record is not a JSON object", line=line)
        if "store" in doc:
            continue
        if "eventType" in doc:
            out.extend(_treatment(doc, line, ctx, devices, basal_profile))
            continue
        kind = doc.get("type")
        if kind == "sgv" or (kind is None and "sgv" in doc):
            value = doc.get("sgv")
            if value is None or value == "":
                continue
            sgv = json_number(value, line=line, column="sgv")
            if sgv < _ERROR_CODE_LIMIT:
                error_codes += 1
                continue
            utc, offset = _when(doc, line, ctx)
            serial = devices.serial(str(doc.get("device") or ""), DeviceKind.CGM)
            units = units or "mg/dL"
            out.append(
                Located(
                    CgmReading(
                        device_serial=serial,
                        time=utc,
                        utc_offset=offset,
                        glucose=check_glucose(sgv, line=line, column="sgv"),
                        source_id=_id(doc),
                    ),
                    line,
                    "sgv",
                )
            )
        elif kind == "mbg" or (kind is None and "mbg" in doc):
            mbg = json_number(doc.get("mbg"), line=line, column="mbg")
            utc, offset = _when(doc, line, ctx)
            serial = devices.serial(str(doc.get("device") or ""), DeviceKind.METER)
            out.append(
                Located(
                    MeterReading(
                        device_serial=serial,
                        time=utc,
                        utc_offset=offset,
                        glucose=check_glucose(mbg, line=line, column="mbg"),
                        source=MeterSource.METER,
                        source_id=_id(doc),
                    ),
                    line,
                    "mbg",
                )
            )
        # "cal" entries (slope/intercept) and device status documents are not readings.
    if error_codes:
        ctx.warn(f"{error_codes} sgv values below 40 are sensor status codes and were skipped")
    return finish_batch(FORMAT_JSON, out, ctx, units)


def _id(doc: dict[str, Any]) -> str | None:
    value = doc.get("_id")
    return str(value) if isinstance(value, str | int) else None


_BOLUS_EVENTS = {
    "Meal Bolus",
    "Snack Bolus",
    "Correction Bolus",
    "Bolus",
    "SMB",
    "Combo Bolus",
    "Bolus Wizard",
}
_SIMPLE_EVENTS = {
    "Site Change": DeviceEventKind.SITE_CHANGE,
    "Insulin Change": DeviceEventKind.CARTRIDGE_CHANGE,
    "Sensor Start": DeviceEventKind.SENSOR_START,
    "Sensor Change": DeviceEventKind.SENSOR_START,
    "Sensor Stop": DeviceEventKind.SENSOR_STOP,
    "Suspend Pump": DeviceEventKind.SUSPEND,
    "Resume Pump": DeviceEventKind.RESUME,
}
_NOTE_EVENTS = {"Note", "Announcement", "Question"}


def _treatment(
    doc: dict[str, Any],
    line: int,
    ctx: ImportContext,
    devices: _Devices,
    basal_profile: list[tuple[int, float]],
) -> list[Located]:
    event = str(doc.get("eventType") or "")
    utc, offset = _when(doc, line, ctx)
    entered = str(doc.get("enteredBy") or doc.get("device") or "")
    common: dict[str, Any] = {"time": utc, "utc_offset": offset, "source_id": _id(doc)}
    out: list[Located] = []

    def pump() -> str:
        return devices.serial(entered, DeviceKind.PUMP)

    def number(key: str) -> float | None:
        value = doc.get(key)
        if value is None or value == "":
            return None
        return json_number(value, line=line, column=key)

    insulin = number("insulin")
    if (
        insulin is not None
        and insulin != 0
        and (event in _BOLUS_EVENTS or event == "Carb Correction")
    ):
        check_insulin(insulin, line=line, column="insulin")
        automatic = (
            event == "SMB"
            or bool(doc.get("isSMB"))
            or bool(doc.get("automatic"))
            or doc.get("type") == "SMB"
        )
        source = (
            BolusSource.AUTOMATIC
            if automatic
            else BolusSource.WIZARD
            if event == "Bolus Wizard"
            else BolusSource.MANUAL
        )
        programmed = number("programmed")
        kind = BolusKind.NORMAL
        extended = duration = None
        if event == "Combo Bolus" and (number("duration") or 0) > 0:
            split_ext = number("splitExt")
            kind = BolusKind.DUAL
            duration = int((number("duration") or 0) * 60)
            if split_ext is not None:
                extended = round(insulin * split_ext / 100.0, 4)
        out.append(
            Located(
                Bolus(
                    **common,
                    device_serial=pump(),
                    kind=kind,
                    source=source,
                    programmed=programmed if programmed is not None else insulin,
                    delivered=insulin,
                    extended=extended,
                    duration=duration,
                ),
                line,
                "insulin",
            )
        )
    carbs = number("carbs")
    if carbs is not None and carbs > 0:
        out.append(
            Located(
                CarbEntry(
                    **common,
                    device_serial=pump(),
                    carbs=check_carbs(carbs, line=line, column="carbs"),
                ),
                line,
                "carbs",
            )
        )
    if event == "BG Check" or (
        doc.get("glucose") not in (None, "", 0) and doc.get("glucoseType") == "Finger"
    ):
        glucose = number("glucose")
        if glucose is not None and glucose > 0:
            unit = str(doc.get("units") or "mg/dl").lower()
            mgdl = round(glucose * MGDL_PER_MMOLL, 1) if unit.startswith("mmol") else glucose
            out.append(
                Located(
                    MeterReading(
                        **common,
                        device_serial=pump(),
                        glucose=check_glucose(mgdl, line=line, column="glucose"),
                        source=MeterSource.MANUAL,
                    ),
                    line,
                    "glucose",
                )
            )
    if event in ("Temp Basal", "Temp Basal Start"):
        out.append(
            Located(
                _temp_basal(doc, line, common, pump(), basal_profile, ctx.clock.offset_minutes_at),
                line,
                "absolute",
            )
        )
    elif event in _SIMPLE_EVENTS:
        minutes = number("duration")
        out.append(
            Located(
                DeviceEvent(
                    **common,
                    device_serial=pump(),
                    kind=_SIMPLE_EVENTS[event],
                    duration=int(minutes * 60) if minutes and event == "Suspend Pump" else None,
                    text=_text(doc),
                ),
                line,
                "eventType",
            )
        )
    elif event in _NOTE_EVENTS:
        text = _text(doc)
        if text:
            out.append(
                Located(
                    DeviceEvent(
                        **common, device_serial=pump(), kind=DeviceEventKind.NOTE, text=text
                    ),
                    line,
                    "notes",
                )
            )
    return out


def _text(doc: dict[str, Any]) -> str | None:
    """Free text kept as written (neutralised only when CSV is written)."""
    value = doc.get("notes") or doc.get("reason")
    return str(value) if value not in (None, "") else None


def _temp_basal(
    doc: dict[str, Any],
    line: int,
    common: dict[str, Any],
    serial: str,
    basal_profile: list[tuple[int, float]],
    offset_at: Any,
) -> BasalSegment:
    def number(key: str) -> float | None:
        value = doc.get(key)
        if value is None or value == "":
            return None
        return json_number(value, line=line, column=key)

    duration_min = number("duration") or 0.0
    if duration_min < 0:
        raise ImportFileError(f"negative duration {duration_min:g}", line=line, column="duration")
    absolute = number("absolute")
    percent = number("percent")
    # Temp basal semantics of lib/profilefunctions.js: absolute U/h wins, else percent is a
    # relative change (-50 = half the profile basal) (formats.md §5.2).
    if absolute is None and percent is None:
        raw_rate = _obj(doc.get("raw_rate"))
        if doc.get("temp") == "absolute" or raw_rate.get("temp") == "absolute":
            absolute = number("rate")
    if absolute is not None:
        return BasalSegment(
            **common,
            device_serial=serial,
            kind=BasalKind.TEMP,
            rate=check_rate(absolute, line=line, column="absolute"),
            duration=int(duration_min * 60),
        )
    if percent is not None:
        scheduled = _profile_rate(basal_profile, common["time"] + common["utc_offset"] * 60)
        rate = round(scheduled * (100 + percent) / 100, 5) if scheduled is not None else 0.0
        return BasalSegment(
            **common,
            device_serial=serial,
            kind=BasalKind.TEMP,
            rate=max(rate, 0.0),
            duration=int(duration_min * 60),
            percent=100 + percent,
        )
    plain_rate = number("rate")
    return BasalSegment(
        **common,
        device_serial=serial,
        kind=BasalKind.TEMP,
        rate=check_rate(plain_rate or 0.0, line=line, column="rate"),
        duration=int(duration_min * 60),
    )


def _profile_rate(profile: list[tuple[int, float]], local: int) -> float | None:
    if not profile:
        return None
    seconds = local % 86400
    rate = profile[0][1]
    for start, value in profile:
        if start <= seconds:
            rate = value
    return rate


def _clock(entry: dict[str, Any], line: int) -> int:
    if entry.get("timeAsSeconds") not in (None, ""):
        return int(json_number(entry["timeAsSeconds"], line=line, column="timeAsSeconds"))
    text = str(entry.get("time") or "00:00")
    try:
        hh, mm = text.split(":")[:2]
        return int(hh) * 3600 + int(mm) * 60
    except ValueError:
        raise ImportFileError(f"{text!r} is not HH:MM", line=line, column="time") from None


def _profile(
    doc: dict[str, Any], line: int, ctx: ImportContext, devices: _Devices
) -> tuple[PumpSettings | None, str | None, list[tuple[int, float]]]:
    store = doc.get("store")
    if not isinstance(store, dict) or not store:
        return None, None, []
    default = str(doc.get("defaultProfile") or next(iter(store)))
    active = _obj(store.get(default)) or next(
        (v for v in store.values() if isinstance(v, dict)), {}
    )
    units = str(active.get("units") or doc.get("units") or "mg/dl").lower()
    factor = MGDL_PER_MMOLL if units.startswith("mmol") else 1.0

    def series(profile: dict[str, Any], key: str, scale: float = 1.0) -> list[tuple[int, float]]:
        values = profile.get(key)
        if isinstance(values, int | float | str):
            values = [{"time": "00:00", "value": values}]
        return sorted(
            (_clock(e, line), round(json_number(e.get("value"), line=line, column=key) * scale, 3))
            for e in values or []
            if isinstance(e, dict)
        )

    schedules = {str(name): series(p, "basal") for name, p in store.items() if isinstance(p, dict)}
    lows = series(active, "target_low", factor)
    highs = dict(series(active, "target_high", factor))
    targets = [(start, round(low, 1), round(highs.get(start, low), 1)) for start, low in lows]
    zone = active.get("timezone")
    if isinstance(zone, str) and zone and zone != ctx.clock.name:
        ctx.warn(
            f"the Nightscout profile's time zone {zone} differs from the chosen {ctx.clock.name}"
        )
    dia = active.get("dia")
    # startDate 1970 (mills 0) marks a profile valid "from the beginning": date it by creation.
    keys = ("mills", "startDate", "created_at") if doc.get("mills") else ("created_at", "startDate")
    utc, offset = _when({k: doc[k] for k in keys if k in doc}, line, ctx)
    serial = devices.serial(str(doc.get("enteredBy") or "profile"), DeviceKind.PUMP)
    settings = PumpSettings(
        device_serial=serial,
        time=utc,
        utc_offset=offset,
        source_id=_id(doc),
        active_schedule=default,
        basal_schedules=schedules,
        carb_ratios=series(active, "carbratio"),
        sensitivities=[(s, round(v, 1)) for s, v in series(active, "sens", factor)],
        targets=targets,
        active_insulin_time=int(json_number(dia, line=line, column="dia") * 3600)
        if dia not in (None, "")
        else None,
    )
    return settings, "mmol/L" if factor != 1.0 else "mg/dL", schedules.get(default, [])


def parse_csv(text: str, lines: list[str], ctx: ImportContext) -> RecordBatch:
    """Parse the header-less entries CSV/TSV of ``/api/v1/entries.csv``."""
    delimiter = "\t" if "\t" in lines[0] else ","
    devices = _Devices(ctx)
    out: list[Located] = []
    error_codes = 0
    total = len(lines)
    for n, (line, row) in enumerate(csv_rows(lines, delimiter), 1):
        if n % 4096 == 0:
            ctx.report(line, total)
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < 3:
            raise ImportFileError("expected dateString, date, sgv, direction, device", line=line)
        if not row[2].strip():
            continue
        sgv = json_number(row[2], line=line, column="sgv")
        if sgv < _ERROR_CODE_LIMIT:
            error_codes += 1
            continue
        if row[1].strip():
            utc = epoch_from_ms(row[1], line=line, column="date")
            offset = ctx.clock.offset_minutes_at(utc)
        else:
            utc, iso_offset = parse_iso_instant(row[0], line=line, column="dateString")
            offset = iso_offset if iso_offset is not None else ctx.clock.offset_minutes_at(utc)
        serial = devices.serial(row[4] if len(row) > 4 else "", DeviceKind.CGM)
        out.append(
            Located(
                CgmReading(
                    device_serial=serial,
                    time=utc,
                    utc_offset=offset,
                    glucose=check_glucose(sgv, line=line, column="sgv"),
                ),
                line,
                "sgv",
            )
        )
    if error_codes:
        ctx.warn(f"{error_codes} sgv values below 40 are sensor status codes and were skipped")
    return finish_batch(FORMAT_CSV, out, ctx, "mg/dL")
