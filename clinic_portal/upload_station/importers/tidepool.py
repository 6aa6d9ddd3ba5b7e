"""Tidepool data JSON: the platform's data arrays and the export's dotted-key form (formats.md §4).

Tidepool already stores UTC (``time``) and the device offset (``timezoneOffset``), so no local
time conversion is needed. The platform stores every BG value in mmol/L (converted back with
18.01559); the export (``TidepoolExport.json``) flattens nested objects to dotted keys, may
hold mg/dL, and gives durations in minutes instead of milliseconds.
"""

from __future__ import annotations

import json
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
    CgmSettings,
    DeviceEvent,
    DeviceEventKind,
    DeviceKind,
    GlucoseFlag,
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
    finish_batch,
    json_number,
    json_records,
    parse_iso_instant,
    synthetic_serial,
)

FORMAT = "tidepool_json"
_TYPES = (
    "cbg|smbg|basal|bolus|wizard|deviceEvent|pumpSettings|cgmSettings|upload|food|"
    "physicalActivity|bloodKetone|insulin|reportedState|water|dosingDecision"
)
_TYPE_RE = re.compile(r'"type"\s*:\s*"(' + _TYPES + r')"')
_NS_RE = re.compile(r'"(sgv|mbg|eventType|defaultProfile)"\s*:')


def looks_like(text: str) -> bool:
    """A JSON array whose records carry Tidepool ``type`` values."""
    head = text[:100_000]
    return len(_TYPE_RE.findall(head)) > len(_NS_RE.findall(head))


def _unflatten(obj: dict[str, Any]) -> dict[str, Any]:
    """Turn the export's ``{"recommended.net": 1}`` keys back into nested objects."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if "." in key:
            head, _, rest = key.partition(".")
            node = out.setdefault(head, {})
            if isinstance(node, dict):
                node[rest] = value
        elif isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


class _Reader:
    def __init__(self, ctx: ImportContext, export_form: bool):
        self.ctx = ctx
        self.export_form = export_form
        self.uploads: dict[str, dict[str, Any]] = {}
        self.serial_of: dict[str, str] = {}
        self.mmol_seen = False
        self.mgdl_seen = False

    # -- values ----------------------------------------------------------------------------

    def bg(
        self, datum: dict[str, Any], value: Any, line: int, column: str, *, check: bool = True
    ) -> float:
        """A BG value in mg/dL; the datum's ``units`` decide, platform data is mmol/L."""
        v = json_number(value, line=line, column=column)
        units = datum.get("units")
        if isinstance(units, dict):
            units = units.get("bg")
        unit = str(units).lower() if units is not None else ""
        if unit.startswith("mg") and (self.export_form or v >= 35):
            self.mgdl_seen = True
            mgdl = v
        else:
            self.mmol_seen = True
            mgdl = v * MGDL_PER_MMOLL
        mgdl = round(mgdl, 1)
        return check_glucose(mgdl, line=line, column=column) if check else mgdl

    def duration_s(self, value: Any, line: int, column: str) -> int:
        v = json_number(value, line=line, column=column)
        if v < 0:
            raise ImportFileError(f"negative duration {v:g}", line=line, column=column)
        # The export converts ms to minutes (formats.md §4.4).
        return round(v * 60) if self.export_form else round(v / 1000)

    # -- devices ---------------------------------------------------------------------------

    def serial(self, datum: dict[str, Any]) -> str:
        device_id = datum.get("deviceId")
        if isinstance(device_id, str) and device_id:
            serial = self.serial_of.get(device_id)
            if serial is None:
                upload = self.uploads.get(device_id, {})
                serial = str(upload.get("deviceSerialNumber") or device_id)
                makers = upload.get("deviceManufacturers") or [
                    device_id.split("-")[0].split(":")[0]
                ]
                model = str(upload.get("deviceModel") or device_id)
                tags = upload.get("deviceTags") or []
                kind = (
                    DeviceKind.PUMP
                    if "insulin-pump" in tags
                    else DeviceKind.METER
                    if tags == ["bgm"]
                    else DeviceKind.CGM
                    if "cgm" in tags
                    else DeviceKind.PUMP
                )
                self.ctx.add_device(serial, str(makers[0]), model, kind)
                self.serial_of[device_id] = serial
            return serial
        origin = _obj(datum.get("origin"))
        payload = _obj(origin.get("payload"))
        device = _obj(payload.get("device"))
        maker = str(device.get("manufacturer") or origin.get("name") or "unknown")
        model = str(device.get("model") or device.get("name") or datum.get("type") or "device")
        key = f"{maker}|{model}"
        serial = self.serial_of.get(key)
        if serial is None:
            serial = synthetic_serial("tidepool", maker, model)
            kind = DeviceKind.CGM if datum.get("type") == "cbg" else DeviceKind.PUMP
            self.ctx.add_device(serial, maker, model, kind)
            self.ctx.warn(f"no device serial for {maker} {model} data; using {serial}")
            self.serial_of[key] = serial
        return serial


def parse(text: str, lines: list[str], ctx: ImportContext) -> RecordBatch:
    """Parse Tidepool platform JSON or a TidepoolExport.json into a batch."""
    raw = json_records(text)
    export_form = any(
        isinstance(o, dict) and any("." in k for k in o) for _, o in raw[:200]
    ) or any(isinstance(o, dict) and "localTime" in o for _, o in raw[:200])
    reader = _Reader(ctx, export_form)
    data: list[tuple[int, dict[str, Any]]] = []
    for line, obj in raw:
        if not isinstance(obj, dict):
            raise ImportFileError("a record is not a JSON object", line=line)
        if "exportError" in obj:
            raise ImportFileError(
                f"the export was aborted by Tidepool: {obj['exportError']}", line=line
            )
        datum = _unflatten(obj) if export_form else obj
        for key in ("payload", "annotations"):
            if isinstance(datum.get(key), str):
                try:
                    datum[key] = json.loads(datum[key])
                except ValueError:
                    datum[key] = None
        if datum.get("type") == "upload":
            if isinstance(datum.get("deviceId"), str):
                reader.uploads[datum["deviceId"]] = datum
            continue
        data.append((line, datum))

    out: list[Located] = []
    boluses: dict[str, int] = {}  # bolus id -> index in out
    wizards: list[tuple[int, dict[str, Any], int, int, str]] = []
    total = len(data)
    for n, (line, datum) in enumerate(data, 1):
        if n % 4096 == 0:
            ctx.report(n, total)
        dtype = datum.get("type")
        if dtype not in (
            "cbg",
            "smbg",
            "basal",
            "bolus",
            "wizard",
            "deviceEvent",
            "pumpSettings",
            "cgmSettings",
            "food",
            "bloodKetone",
            "insulin",
        ):
            continue
        utc, iso_offset = parse_iso_instant(datum.get("time"), line=line, column="time")
        if iso_offset is None:
            raise ImportFileError(
                "time has no zone (Tidepool times are UTC)", line=line, column="time"
            )
        tz_off = datum.get("timezoneOffset")
        offset = (
            int(json_number(tz_off, line=line, column="timezoneOffset"))
            if tz_off is not None
            else ctx.clock.offset_minutes_at(utc)
        )
        serial = reader.serial(datum)
        sid = datum.get("id") if isinstance(datum.get("id"), str) else None
        common: dict[str, Any] = {
            "device_serial": serial,
            "time": utc,
            "utc_offset": offset,
            "source_id": sid,
        }
        sub = datum.get("subType")
        if dtype == "cbg":
            out.append(
                Located(
                    CgmReading(
                        **common,
                        glucose=reader.bg(datum, datum.get("value"), line, "value"),
                        flag=_flag(datum),
                    ),
                    line,
                    "value",
                )
            )
        elif dtype == "smbg":
            source = (
                MeterSource.LINKED
                if sub == "linked"
                else MeterSource.MANUAL
                if sub == "manual"
                else MeterSource.METER
            )
            out.append(
                Located(
                    MeterReading(
                        **common,
                        glucose=reader.bg(datum, datum.get("value"), line, "value"),
                        source=source,
                        flag=_flag(datum),
                    ),
                    line,
                    "value",
                )
            )
        elif dtype == "basal":
            out.append(Located(_basal(reader, datum, common, line), line, "rate"))
        elif dtype == "bolus":
            out.append(Located(_bolus(reader, datum, common, line), line, "normal"))
            if sid:
                boluses[sid] = len(out) - 1
        elif dtype == "insulin":
            dose = _obj(datum.get("dose"))
            amount = check_insulin(
                json_number(dose.get("total", 0), line=line, column="dose.total"),
                line=line,
                column="dose.total",
            )
            out.append(
                Located(
                    Bolus(**common, source=BolusSource.PEN, programmed=amount, delivered=amount),
                    line,
                    "dose.total",
                )
            )
        elif dtype == "wizard":
            wizards.append((line, datum, utc, offset, serial))
        elif dtype == "food":
            carbs = _food_carbs(datum, line)
            if carbs is not None:
                out.append(
                    Located(CarbEntry(**common, carbs=carbs), line, "nutrition.carbohydrate.net")
                )
        elif dtype == "bloodKetone":
            value = json_number(datum.get("value"), line=line, column="value")
            if not 0 <= value <= 10:
                raise ImportFileError(
                    f"ketone {value:g} mmol/L is outside 0–10", line=line, column="value"
                )
            out.append(
                Located(
                    DeviceEvent(**common, kind=DeviceEventKind.KETONE, value=value), line, "value"
                )
            )
        elif dtype == "deviceEvent":
            rec = _device_event(reader, datum, common, line)
            if rec is not None:
                out.append(Located(rec, line, "subType"))
        elif dtype == "pumpSettings":
            out.append(Located(_pump_settings(reader, datum, common, line), line, "basalSchedules"))
        elif dtype == "cgmSettings":
            out.append(Located(_cgm_settings(reader, datum, common, line), line, "lowAlerts"))

    for line, datum, utc, offset, serial in wizards:
        _attach_wizard(reader, out, boluses, line, datum, utc, offset, serial)
    units = (
        "mmol/L"
        if reader.mmol_seen and not reader.mgdl_seen
        else "mg/dL"
        if reader.mgdl_seen
        else None
    )
    return finish_batch(FORMAT, out, ctx, units)


def _flag(datum: dict[str, Any]) -> GlucoseFlag:
    for note in datum.get("annotations") or []:
        if isinstance(note, dict) and note.get("code") == "bg/out-of-range":
            return (
                GlucoseFlag.BELOW_LIMIT if note.get("value") == "low" else GlucoseFlag.ABOVE_LIMIT
            )
    return GlucoseFlag.NONE


def _basal(
    reader: _Reader, datum: dict[str, Any], common: dict[str, Any], line: int
) -> BasalSegment:
    delivery = datum.get("deliveryType")
    kind = {
        "scheduled": BasalKind.SCHEDULED,
        "temp": BasalKind.TEMP,
        "suspend": BasalKind.SUSPENDED,
        "automated": BasalKind.AUTOMATED,
    }.get(str(delivery))
    if kind is None:
        raise ImportFileError(
            f"unknown basal deliveryType {delivery!r}", line=line, column="deliveryType"
        )
    rate = 0.0
    if datum.get("rate") is not None and kind is not BasalKind.SUSPENDED:
        rate = check_rate(
            json_number(datum["rate"], line=line, column="rate"), line=line, column="rate"
        )
    duration = (
        reader.duration_s(datum["duration"], line, "duration")
        if datum.get("duration") is not None
        else 0
    )
    percent = None
    if datum.get("percent") is not None:
        # Tidepool stores a fraction: 1.75 means 175 % (formats.md §4.3).
        percent = round(json_number(datum["percent"], line=line, column="percent") * 100, 3)
    name = datum.get("scheduleName")
    return BasalSegment(
        **common,
        kind=kind,
        rate=rate,
        duration=duration,
        percent=percent,
        schedule_name=str(name) if name else None,
    )


def _bolus(reader: _Reader, datum: dict[str, Any], common: dict[str, Any], line: int) -> Bolus:
    sub = str(datum.get("subType"))
    normal = datum.get("normal")
    extended = datum.get("extended")
    n = (
        check_insulin(json_number(normal, line=line, column="normal"), line=line, column="normal")
        if normal is not None
        else None
    )
    e = (
        check_insulin(
            json_number(extended, line=line, column="extended"), line=line, column="extended"
        )
        if extended is not None
        else None
    )
    expected = datum.get("expectedNormal")
    programmed = (
        json_number(expected, line=line, column="expectedNormal") if expected is not None else n
    )
    kind = (
        BolusKind.DUAL
        if sub == "dual/square"
        else BolusKind.SQUARE
        if sub in ("square", "extended")
        else BolusKind.NORMAL
    )
    if kind is BolusKind.SQUARE and programmed is None:
        expected_ext = datum.get("expectedExtended")
        programmed = (
            json_number(expected_ext, line=line, column="expectedExtended")
            if expected_ext is not None
            else e
        )
    duration = (
        reader.duration_s(datum["duration"], line, "duration")
        if datum.get("duration") is not None and e is not None
        else None
    )
    return Bolus(
        **common,
        kind=kind,
        source=BolusSource.AUTOMATIC if sub == "automated" else BolusSource.MANUAL,
        programmed=programmed,
        delivered=round((n or 0.0) + (e or 0.0), 4),
        extended=e,
        duration=duration,
    )


def _food_carbs(datum: dict[str, Any], line: int) -> float | None:
    nutrition = datum.get("nutrition")
    carb = nutrition.get("carbohydrate") if isinstance(nutrition, dict) else None
    if isinstance(carb, dict) and carb.get("net") is not None:
        return check_carbs(
            json_number(carb["net"], line=line, column="nutrition.carbohydrate.net"),
            line=line,
            column="nutrition.carbohydrate.net",
        )
    return None


def _device_event(
    reader: _Reader, datum: dict[str, Any], common: dict[str, Any], line: int
) -> DeviceEvent | MeterReading | None:
    sub = datum.get("subType")
    if sub == "calibration":
        return MeterReading(
            **common,
            glucose=reader.bg(datum, datum.get("value"), line, "value"),
            source=MeterSource.CALIBRATION,
        )
    if sub == "prime":
        volume = datum.get("volume")
        value = (
            check_insulin(
                json_number(volume, line=line, column="volume"), line=line, column="volume"
            )
            if volume is not None
            else None
        )
        return DeviceEvent(
            **common,
            kind=DeviceEventKind.PRIME,
            value=value,
            text=str(datum.get("primeTarget") or "") or None,
        )
    if sub == "reservoirChange":
        return DeviceEvent(**common, kind=DeviceEventKind.CARTRIDGE_CHANGE)
    if sub == "alarm":
        return DeviceEvent(
            **common, kind=DeviceEventKind.ALARM, text=str(datum.get("alarmType") or "alarm")
        )
    if sub == "status":
        duration = (
            reader.duration_s(datum["duration"], line, "duration")
            if datum.get("duration") is not None
            else None
        )
        reason = _obj(datum.get("reason"))
        kind = (
            DeviceEventKind.SUSPEND
            if datum.get("status") == "suspended"
            else DeviceEventKind.RESUME
        )
        return DeviceEvent(
            **common, kind=kind, duration=duration, text=str(reason.get("suspended") or "") or None
        )
    if sub == "timeChange":
        change = _obj(datum.get("change"))
        delta = None
        if isinstance(change.get("from"), str) and isinstance(change.get("to"), str):
            a, _ = parse_iso_instant(change["from"], line=line, column="change.from")
            b, _ = parse_iso_instant(change["to"], line=line, column="change.to")
            delta = b - a
        names = [
            str(d.get("timeZoneName"))
            for d in (datum.get("from"), datum.get("to"))
            if isinstance(d, dict) and d.get("timeZoneName")
        ]
        return DeviceEvent(
            **common,
            kind=DeviceEventKind.TIME_CHANGE,
            duration=delta,
            text=" -> ".join(names) or None,
        )
    return None


def _schedule(value: Any, active: str | None) -> list[Any]:
    """A schedule list from ``x`` or the active entry of ``xs: {name: [...]}``."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and value:
        chosen = value.get(active) if active in value else next(iter(value.values()))
        return chosen if isinstance(chosen, list) else []
    return []


def _pump_settings(
    reader: _Reader, datum: dict[str, Any], common: dict[str, Any], line: int
) -> PumpSettings:
    active = datum.get("activeSchedule")
    active = str(active) if active is not None else None

    # Platform data holds mmol/L even when ``units.bg`` says mg/dL (Omnipod fixture):
    # read the numbers by their range (formats.md §4.2).
    def glucose(v: Any, column: str) -> float:
        x = json_number(v, line=line, column=column)
        return round(x * MGDL_PER_MMOLL if x < 35 else x, 1)

    schedules: dict[str, list[tuple[int, float]]] = {}
    raw_schedules = datum.get("basalSchedules")
    if isinstance(raw_schedules, dict):
        for name, segments in raw_schedules.items():
            schedules[str(name)] = [
                (
                    int(json_number(s.get("start", 0), line=line, column="basalSchedules") // 1000),
                    json_number(s.get("rate"), line=line, column="basalSchedules"),
                )
                for s in segments or []
                if isinstance(s, dict)
            ]
    ratios = [
        (
            int(json_number(s.get("start", 0), line=line, column="carbRatio") // 1000),
            json_number(s.get("amount"), line=line, column="carbRatio"),
        )
        for s in _schedule(datum.get("carbRatio", datum.get("carbRatios")), active)
        if isinstance(s, dict)
    ]
    sens = [
        (
            int(json_number(s.get("start", 0), line=line, column="insulinSensitivity") // 1000),
            glucose(s.get("amount"), "insulinSensitivity"),
        )
        for s in _schedule(
            datum.get("insulinSensitivity", datum.get("insulinSensitivities")), active
        )
        if isinstance(s, dict)
    ]
    targets: list[tuple[int, float, float]] = []
    for s in _schedule(datum.get("bgTarget", datum.get("bgTargets")), active):
        if not isinstance(s, dict):
            continue
        start = int(json_number(s.get("start", 0), line=line, column="bgTarget") // 1000)
        if s.get("low") is not None and s.get("high") is not None:
            targets.append(
                (start, glucose(s["low"], "bgTarget.low"), glucose(s["high"], "bgTarget.high"))
            )
        elif s.get("target") is not None:
            target = glucose(s["target"], "bgTarget.target")
            spread = glucose(s["range"], "bgTarget.range") if s.get("range") is not None else 0.0
            high = (
                glucose(s["high"], "bgTarget.high")
                if s.get("high") is not None
                else target + spread
            )
            targets.append((start, target - spread, high))
    bolus = _obj(datum.get("bolus"))
    basal = _obj(datum.get("basal"))
    calculator = _obj(bolus.get("calculator"))
    insulin = _obj(calculator.get("insulin"))
    action = None
    if insulin.get("duration") is not None:
        minutes = json_number(
            insulin["duration"], line=line, column="bolus.calculator.insulin.duration"
        )
        unit = str(insulin.get("units", "minutes"))
        action = int(minutes * (3600 if unit.startswith("hour") else 60))
    max_bolus = (
        (bolus.get("amountMaximum") or {}).get("value")
        if isinstance(bolus.get("amountMaximum"), dict)
        else None
    )
    max_basal = (
        (basal.get("rateMaximum") or {}).get("value")
        if isinstance(basal.get("rateMaximum"), dict)
        else None
    )
    return PumpSettings(
        **common,
        active_schedule=active,
        basal_schedules=schedules,
        carb_ratios=ratios,
        sensitivities=sens,
        targets=targets,
        active_insulin_time=action,
        max_bolus=json_number(max_bolus, line=line, column="bolus.amountMaximum")
        if max_bolus is not None
        else None,
        max_basal=json_number(max_basal, line=line, column="basal.rateMaximum")
        if max_basal is not None
        else None,
    )


def _cgm_settings(
    reader: _Reader, datum: dict[str, Any], common: dict[str, Any], line: int
) -> CgmSettings:
    def level(key: str) -> float | None:
        alert = datum.get(key)
        if isinstance(alert, dict) and alert.get("level") is not None:
            return reader.bg(datum, alert["level"], line, key, check=False)
        return None

    return CgmSettings(
        **common,
        low_alert=level("lowAlerts"),
        high_alert=level("highAlerts"),
        urgent_low=level("urgentLowAlerts"),
    )


def _attach_wizard(
    reader: _Reader,
    out: list[Located],
    boluses: dict[str, int],
    line: int,
    datum: dict[str, Any],
    utc: int,
    offset: int,
    serial: str,
) -> None:
    """Copy the calculator inputs onto the bolus the wizard record points at."""
    link = datum.get("bolus")
    index = boluses.get(link) if isinstance(link, str) else None
    if isinstance(link, dict):  # embedded at ingestion (formats.md §4.3)
        sub_common = {
            "device_serial": serial,
            "time": utc,
            "utc_offset": offset,
            "source_id": link.get("id"),
        }
        out.append(Located(_bolus(reader, link, sub_common, line), line, "bolus"))
        index = len(out) - 1
    carbs = None
    if datum.get("carbInput") is not None:
        carbs = check_carbs(
            json_number(datum["carbInput"], line=line, column="carbInput"),
            line=line,
            column="carbInput",
        )
        if carbs > 0:
            out.append(
                Located(
                    CarbEntry(device_serial=serial, time=utc, utc_offset=offset, carbs=carbs),
                    line,
                    "carbInput",
                )
            )
    if index is None:
        return
    bolus = out[index].record
    assert isinstance(bolus, Bolus)

    def opt(key: str, glucose: bool = False) -> float | None:
        value = datum.get(key)
        if value is None:
            return None
        return (
            reader.bg(datum, value, line, key, check=False)
            if glucose
            else json_number(value, line=line, column=key)
        )

    target = _obj(datum.get("bgTarget"))
    recommended = _obj(datum.get("recommended"))
    low = target.get("low", target.get("target"))
    high = target.get("high", target.get("target"))
    fields = {f: getattr(bolus, f) for f in bolus.__dataclass_fields__}
    fields.update(
        source=BolusSource.WIZARD,
        wizard_carbs=carbs if carbs else None,
        wizard_bg=opt("bgInput", True),
        carb_ratio=opt("insulinCarbRatio"),
        sensitivity=opt("insulinSensitivity", True),
        target_low=reader.bg(datum, low, line, "bgTarget.low", check=False)
        if low is not None
        else None,
        target_high=reader.bg(datum, high, line, "bgTarget.high", check=False)
        if high is not None
        else None,
        insulin_on_board=opt("insulinOnBoard"),
        food_estimate=json_number(recommended["carb"], line=line, column="recommended.carb")
        if recommended.get("carb") is not None
        else None,
        correction_estimate=json_number(
            recommended["correction"], line=line, column="recommended.correction"
        )
        if recommended.get("correction") is not None
        else None,
        recommended=json_number(recommended["net"], line=line, column="recommended.net")
        if recommended.get("net") is not None
        else None,
    )
    out[index] = Located(Bolus(**fields), out[index].line, out[index].column)
