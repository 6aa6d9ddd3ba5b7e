"""Medtronic CareLink CSV: generation A (v1.0.1, raw-record columns) and generation B (sectioned).

Layouts, vocabularies and quirks are in ``shared/reference/formats.md`` §1; what this module
reads and ignores is summarised in ``docs/import-formats.md``. Both generations share the flat
event columns (``BG Reading``, ``Bolus Volume Delivered``, ``BWZ *``...), so one row reader
serves both; generation A adds ``Raw-Type``/``Raw-Values`` which give scheduled basal starts and
the settings snapshot.

CareLink repeats itself: a bolus is written when programmed and again when finished (same
``Bolus Number``), its calculator inputs are a third row, and a linked meter reading appears in
up to three rows seconds apart. Those rows are collapsed into one record each.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
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
    GlucoseFlag,
    MeterReading,
    MeterSource,
    PumpSettings,
    RecordBatch,
)
from clinic_portal.upload_station.importers.base import (
    GLUCOSE_MAX_MGDL,
    GLUCOSE_MIN_MGDL,
    ImportContext,
    ImportFileError,
    Located,
    check_carbs,
    check_glucose,
    check_insulin,
    check_rate,
    csv_rows,
    finish_batch,
    first_cells,
    parse_hms,
    parse_number,
    sniff_delimiter,
    synthetic_serial,
)
from clinic_portal.upload_station.importers.localtime import naive_seconds

FORMAT = "carelink_csv"
MANUFACTURER = "Medtronic"
_GEN_A_TITLE = "Medtronic Diabetes CareLink Personal Data Export File"

# Readings and bolus rows that describe the same event are at most this far apart
# (780G: BG received 22:02:42, accepted 22:02:46, calibration 22:03:00 — formats.md §1.2).
_SAME_BG_WINDOW_S = 300
# The bolus calculator row precedes the programmed bolus by a few seconds to a minute.
_WIZARD_LINK_WINDOW_S = 180
# A dual/square bolus runs at most 8 h on Medtronic pumps; rows of one Bolus Number further
# apart than this are a wrapped counter, not the same bolus.
_BOLUS_GROUP_SPAN_S = 10 * 3600


def looks_like(lines: list[str]) -> bool:
    """True for either CareLink generation (formats.md §0.1)."""
    if not lines:
        return False
    first = lines[0].lstrip('"').strip()
    if first.startswith(_GEN_A_TITLE):
        return True
    cells = first_cells(lines[0], sniff_delimiter(lines[0]))
    return len(cells) >= 2 and cells[0].strip() == "Last Name" and cells[1].strip() == "First Name"


# --------------------------------------------------------------------------- columns

_UNIT_RE = re.compile(r"^(.*?)\s*\(([^()]*)\)\s*$")

# canonical key -> base column names (unit suffix removed), first match wins
_COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("Date",),
    "time": ("Time",),
    "timestamp": ("Timestamp",),
    "new_time": ("New Device Time",),
    "bg_source": ("BG Source",),
    "bg": ("BG Reading",),
    "meter_id": ("Linked BG Meter ID",),
    "basal_rate": ("Basal Rate",),
    "temp_amount": ("Temp Basal Amount",),
    "temp_type": ("Temp Basal Type",),
    "temp_duration": ("Temp Basal Duration",),
    "bolus_type": ("Bolus Type",),
    "bolus_selected": ("Bolus Volume Selected",),
    "bolus_delivered": ("Bolus Volume Delivered",),
    "bolus_duration": ("Bolus Duration", "Programmed Bolus Duration"),
    "prime_type": ("Prime Type",),
    "prime_volume": ("Prime Volume Delivered",),
    "alarm": ("Alarm", "Alert"),
    "suspend": ("Suspend",),
    "rewind": ("Rewind",),
    "bwz_estimate": ("BWZ Estimate",),
    "bwz_target_high": ("BWZ Target High BG",),
    "bwz_target_low": ("BWZ Target Low BG",),
    "bwz_ratio": ("BWZ Carb Ratio",),
    "bwz_isf": ("BWZ Insulin Sensitivity",),
    "bwz_carbs": ("BWZ Carb Input",),
    "bwz_bg": ("BWZ BG Input", "BWZ BG/SG Input"),
    "bwz_correction": ("BWZ Correction Estimate",),
    "bwz_food": ("BWZ Food Estimate",),
    "bwz_iob": ("BWZ Active Insulin",),
    "bwz_status": ("BWZ Status",),
    "cal_bg": ("Sensor Calibration BG",),
    "sg": ("Sensor Glucose",),
    "event_marker": ("Event Marker",),
    "bolus_number": ("Bolus Number",),
    "bolus_source": ("Bolus Source",),
    "sensor_exception": ("Sensor Exception",),
    "raw_type": ("Raw-Type",),
    "raw_values": ("Raw-Values",),
    "raw_id": ("Raw-ID",),
}
_GLUCOSE_KEYS = ("bg", "bwz_target_high", "bwz_target_low", "bwz_isf", "bwz_bg", "cal_bg", "sg")


@dataclass
class _Columns:
    index: dict[str, int]
    names: dict[str, str]  # key -> the header text, for error messages
    factor: dict[str, float]  # glucose keys -> mg/dL per file unit
    mmol: bool

    @classmethod
    def from_header(cls, header: list[str]) -> _Columns:
        by_base: dict[str, tuple[int, str, str]] = {}
        for i, name in enumerate(header):
            name = name.strip()
            m = _UNIT_RE.match(name)
            base, unit = (m.group(1), m.group(2)) if m else (name, "")
            by_base.setdefault(base, (i, name, unit))
        index: dict[str, int] = {}
        names: dict[str, str] = {}
        factor: dict[str, float] = {}
        mmol = False
        for key, bases in _COLUMNS.items():
            for base in bases:
                if base in by_base:
                    i, name, unit = by_base[base]
                    index[key], names[key] = i, name
                    if key in _GLUCOSE_KEYS:
                        # Each column carries its own unit: NightscoutLoader saw an mg/dL ISF
                        # column next to mmol/L glucose columns (formats.md §1.2).
                        is_mmol = unit.lower().startswith("mmol")
                        factor[key] = MGDL_PER_MMOLL if is_mmol else 1.0
                        mmol = mmol or (is_mmol and key in ("sg", "bg", "cal_bg"))
                    break
        return cls(index, names, factor, mmol)


# --------------------------------------------------------------------------- pending facts


@dataclass(slots=True)
class _Fact:
    """One thing a row said, before its time is converted to UTC."""

    kind: str
    serial: str
    seq: float  # device order: larger is newer
    local: int  # naive local seconds, device clock
    line: int
    column: str
    data: dict[str, Any] = field(default_factory=dict)
    utc: int = 0
    offset: int = 0


@dataclass
class _Change:
    serial: str
    seq: float
    old: int
    new: int
    section: int


@dataclass
class _State:
    ctx: ImportContext
    decimal_comma: bool
    day_first: bool = False
    facts: list[_Fact] = field(default_factory=list)
    # sensor readings kept in parallel lists (tens of thousands of rows)
    cgm_serial: list[str] = field(default_factory=list)
    cgm_seq: list[float] = field(default_factory=list)
    cgm_local: list[int] = field(default_factory=list)
    cgm_line: list[int] = field(default_factory=list)
    cgm_value: list[float] = field(default_factory=list)
    cgm_flag: list[GlucoseFlag] = field(default_factory=list)
    cgm_section: list[int] = field(default_factory=list)
    changes: list[_Change] = field(default_factory=list)
    fact_section: list[int] = field(default_factory=list)
    pump_sections: set[int] = field(default_factory=set)
    mmol: bool = False
    dates: dict[str, int] = field(default_factory=dict)
    sg_column: str = "Sensor Glucose (mg/dL)"
    exempt_before: list[int] = field(default_factory=list)  # per change, see _prepare_changes

    def num(self, text: str, line: int, column: str) -> float:
        return parse_number(text, line=line, column=column, decimal_comma=self.decimal_comma)


# --------------------------------------------------------------------------- dates


def _gen_b_local(state: _State, date: str, time: str, line: int) -> int:
    """``YYYY/MM/DD`` + ``HH:MM:SS`` (every locale, formats.md §1.2)."""
    day = state.dates.get(date)
    if day is None:
        try:
            if len(date) != 10 or date[4] not in "/-" or date[7] not in "/-":
                raise ValueError(date)
            day = naive_seconds(int(date[0:4]), int(date[5:7]), int(date[8:10]))
        except ValueError:
            raise ImportFileError(
                f"{date!r} is not a YYYY/MM/DD date", line=line, column="Date"
            ) from None
        state.dates[date] = day
    try:
        if len(time) != 8 or time[2] != ":" or time[5] != ":":
            raise ValueError(time)
        h, m, s = int(time[0:2]), int(time[3:5]), int(time[6:8])
        if h > 23 or m > 59 or s > 59:
            raise ValueError(time)
    except ValueError:
        raise ImportFileError(
            f"{time!r} is not a HH:MM:SS time", line=line, column="Time"
        ) from None
    return day + h * 3600 + m * 60 + s


def _device_time(text: str, line: int, column: str, *, day_first: bool) -> int:
    """Gen-B ``YYYY/MM/DD HH:MM:SS`` or gen-A ``M/D/YY HH:MM:SS`` (``D/M/YY`` for UK)."""
    text = text.strip()
    try:
        date, _, clock = text.partition(" ")
        h, m, s = (int(p) for p in clock.split(":"))
        parts = date.split("/")
        if len(parts[0]) == 4:
            y, mo, d = int(parts[0]), int(parts[1]), int(parts[2])
        else:
            a, b, yy = int(parts[0]), int(parts[1]), int(parts[2])
            mo, d = (b, a) if day_first else (a, b)
            y = yy + 2000 if yy < 100 else yy
        if h > 23 or m > 59 or s > 59:
            raise ValueError(text)
        return naive_seconds(y, mo, d, h, m, s)
    except (ValueError, IndexError):
        raise ImportFileError(
            f"{text!r} is not a device date and time", line=line, column=column
        ) from None


# --------------------------------------------------------------------------- row reading

_RESUME_WORDS = {
    "normal_pumping",
    "normal pumping",
    "resume",
    "resumed",
    "user_restart_basal",
    "auto_resume_reduced",
    "auto_resume_complete",
}
_EVENT_MARKER_RE = re.compile(r"^\s*(Meal|Insulin)\s*:\s*([0-9]+(?:[.,][0-9]+)?)", re.IGNORECASE)
_DAY_MARKERS = {"start of the day", "end of the day"}


def _glucose_cell(
    state: _State, cols: _Columns, key: str, text: str, line: int
) -> tuple[float, GlucoseFlag]:
    """A glucose cell in mg/dL; non-numeric Low/High cells become the 40/400 limits, flagged."""
    low = text.strip().lower()
    if low in ("low", "lo", "<40"):
        return 40.0, GlucoseFlag.BELOW_LIMIT
    if low in ("high", "hi", ">400"):
        return 400.0, GlucoseFlag.ABOVE_LIMIT
    column = cols.names[key]
    value = state.num(text, line, column) * cols.factor[key]
    return check_glucose(round(value, 1), line=line, column=column), GlucoseFlag.NONE


def _read_event_row(
    state: _State,
    cols: _Columns,
    row: list[str],
    line: int,
    serial: str,
    seq: float,
    local: int,
    section: int,
) -> None:
    """Turn the non-sensor cells of one pump (or gen-A) row into facts."""
    idx = cols.index
    names = cols.names
    n = len(row)

    def cell(key: str) -> str:
        i = idx.get(key)
        return row[i].strip() if i is not None and i < n else ""

    facts = state.facts

    def add(kind: str, column: str, **data: object) -> None:
        facts.append(_Fact(kind, serial, seq, local, line, column, dict(data)))
        state.fact_section.append(section)

    new_time = cell("new_time")
    if new_time:
        new = _device_time(new_time, line, names["new_time"], day_first=state.day_first)
        if new != local:
            state.changes.append(_Change(serial, seq, local, new, section))
            add("time_change", names["new_time"], delta=new - local)

    bg = cell("bg")
    if bg:
        value, _ = _glucose_cell(state, cols, "bg", bg, line)
        source_text = cell("bg_source").upper()
        if "CALIB" in source_text:
            source = MeterSource.CALIBRATION
        elif "ENTERED" in source_text:
            source = MeterSource.MANUAL
        elif source_text or cell("meter_id"):
            source = MeterSource.LINKED
        else:
            source = MeterSource.MANUAL
        add("bg", names["bg"], value=value, source=source)
    cal = cell("cal_bg")
    if cal:
        value, _ = _glucose_cell(state, cols, "cal_bg", cal, line)
        add("bg", names["cal_bg"], value=value, source=MeterSource.CALIBRATION)

    rate = cell("basal_rate")
    if rate:
        column = names["basal_rate"]
        add(
            "basal",
            column,
            rate=check_rate(state.num(rate, line, column), line=line, column=column),
        )

    temp = cell("temp_amount")
    if temp:
        column = names["temp_amount"]
        amount = state.num(temp, line, column)
        kind = cell("temp_type").lower()
        duration_text = cell("temp_duration")
        duration = (
            parse_hms(duration_text, line=line, column=names["temp_duration"])
            if duration_text
            else 0
        )
        if "percent" in kind:
            if not 0 <= amount <= 1000:
                raise ImportFileError(
                    f"temp basal {amount:g} % is outside 0–1000", line=line, column=column
                )
            add("temp", column, percent=amount, duration=duration)
        else:
            add(
                "temp", column, rate=check_rate(amount, line=line, column=column), duration=duration
            )

    selected = cell("bolus_selected")
    delivered = cell("bolus_delivered")
    btype = cell("bolus_type")
    if selected or delivered:
        sel_v = (
            check_insulin(
                state.num(selected, line, names["bolus_selected"]),
                line=line,
                column=names["bolus_selected"],
            )
            if selected
            else None
        )
        del_v = (
            check_insulin(
                state.num(delivered, line, names["bolus_delivered"]),
                line=line,
                column=names["bolus_delivered"],
            )
            if delivered
            else None
        )
        duration_text = cell("bolus_duration")
        bolus_duration = (
            parse_hms(duration_text, line=line, column=names["bolus_duration"])
            if duration_text
            else None
        )
        add(
            "bolus",
            names["bolus_delivered"] if delivered else names["bolus_selected"],
            type=btype.lower(),
            selected=sel_v,
            delivered=del_v,
            duration=bolus_duration,
            number=cell("bolus_number"),
            source=cell("bolus_source").upper(),
            raw_id=cell("raw_id") or None,
        )

    estimate = cell("bwz_estimate")
    if estimate:
        wizard: dict[str, Any] = {"status": cell("bwz_status").lower()}
        for key, out in (
            ("bwz_estimate", "recommended"),
            ("bwz_correction", "correction_estimate"),
            ("bwz_food", "food_estimate"),
            ("bwz_iob", "insulin_on_board"),
        ):
            text = cell(key)
            if text:
                # Correction estimates are negative when IOB exceeds the correction (sample).
                wizard[out] = state.num(text, line, names[key])
        for key, out in (
            ("bwz_target_high", "target_high"),
            ("bwz_target_low", "target_low"),
            ("bwz_bg", "wizard_bg"),
            ("bwz_isf", "sensitivity"),
        ):
            text = cell(key)
            if text:
                value = state.num(text, line, names[key]) * cols.factor[key]
                if value > 0:  # 0 means "no BG entered"
                    if key != "bwz_isf":
                        check_glucose(value, line=line, column=names[key])
                    wizard[out] = round(value, 1)
        text = cell("bwz_ratio")
        if text:
            ratio = state.num(text, line, names["bwz_ratio"])
            if ratio > 0:
                wizard["carb_ratio"] = ratio
        text = cell("bwz_carbs")
        if text:
            carbs = check_carbs(
                state.num(text, line, names["bwz_carbs"]), line=line, column=names["bwz_carbs"]
            )
            if carbs > 0:
                wizard["wizard_carbs"] = carbs
        add("wizard", names["bwz_estimate"], **wizard)

    prime = cell("prime_type")
    if prime:
        volume_text = cell("prime_volume")
        volume = (
            check_insulin(
                state.num(volume_text, line, names["prime_volume"]),
                line=line,
                column=names["prime_volume"],
            )
            if volume_text
            else None
        )
        add("event", names["prime_type"], event=DeviceEventKind.PRIME, value=volume, text=prime)
    if cell("rewind"):
        add("event", names["rewind"], event=DeviceEventKind.REWIND, value=None, text=None)
    alarm = cell("alarm")
    if alarm:
        add("event", names["alarm"], event=DeviceEventKind.ALARM, value=None, text=alarm)
    suspend = cell("suspend")
    if suspend:
        resume = suspend.lower() in _RESUME_WORDS
        add("suspend", names["suspend"], resume=resume, text=suspend)

    marker = cell("event_marker")
    if marker and marker.lower() not in _DAY_MARKERS:
        m = _EVENT_MARKER_RE.match(marker)
        column = names["event_marker"]
        if m:
            amount = float(m.group(2).replace(",", "."))
            if m.group(1).lower() == "meal":
                add("carbs", column, carbs=check_carbs(amount, line=line, column=column))
            else:
                # Guardian Connect logbook insulin (formats.md §1.2): a pen injection.
                add("pen", column, amount=check_insulin(amount, line=line, column=column))
        else:
            add("event", column, event=DeviceEventKind.NOTE, value=None, text=marker)

    raw_type = cell("raw_type")
    if raw_type:
        _read_raw(state, raw_type, cell("raw_values"), cell("raw_id"), add, line)


def _raw_pairs(text: str) -> dict[str, str]:
    """``"AMOUNT=120, ISIG=16.54"`` -> dict; pairs that do not split are skipped."""
    out: dict[str, str] = {}
    for part in text.split(", "):
        key, sep, value = part.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _raw_float(pairs: dict[str, str], key: str) -> float | None:
    try:
        value = float(pairs[key])
    except (KeyError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def _read_raw(
    state: _State,
    raw_type: str,
    raw_values: str,
    raw_id: str,
    add: Callable[..., None],
    line: int,
) -> None:
    """Generation-A raw records the flat columns do not carry."""
    if raw_type == "BasalProfileStart":
        pairs = _raw_pairs(raw_values)
        rate = _raw_float(pairs, "RATE")
        if rate is not None:
            add(
                "basal",
                "Raw-Values",
                rate=check_rate(rate, line=line, column="Raw-Values"),
                schedule=pairs.get("PATTERN_NAME"),
            )
    elif raw_type.startswith("Current"):
        add("setting", "Raw-Values", raw_type=raw_type, pairs=_raw_pairs(raw_values), raw_id=raw_id)


# --------------------------------------------------------------------------- file layout


@dataclass
class _Section:
    kind: str  # "pump", "aggregate", "sensor", "gen_a"
    model: str
    serial: str
    header_line: int = 0
    columns: _Columns | None = None


def parse(text: str, lines: list[str], ctx: ImportContext) -> RecordBatch:
    """Parse a CareLink export (either generation) into a batch."""
    first = lines[0].lstrip('"').strip()
    if first.startswith(_GEN_A_TITLE):
        return _parse_gen_a(lines, ctx)
    return _parse_gen_b(lines, ctx)


def _parse_gen_b(lines: list[str], ctx: ImportContext) -> RecordBatch:
    delimiter = sniff_delimiter(lines[0])
    # EU locales write every number with a decimal comma, the Index column included.
    state = _State(ctx, decimal_comma=delimiter == ";")
    names_hint = first_cells(lines[1], delimiter) if len(lines) > 1 else []
    person = "|".join(c for c in names_hint[:2])

    sections: list[_Section] = []
    total = len(lines)
    section: _Section | None = None
    sensor_seen = False
    row_count = 0
    for line, row in csv_rows(lines, delimiter):
        if not row or not row[0].strip():
            continue
        head = row[0].strip()
        if head.startswith("-------"):
            model = row[1].strip() if len(row) > 1 else ""
            part = row[2].strip().lower() if len(row) > 2 else ""
            serial = row[3].strip() if len(row) > 3 else ""
            tail = row[4].strip().lower() if len(row) > 4 else ""
            # Field 3 says "Pump" for the aggregated block too: classify on field 5 first.
            if "aggregated" in tail:
                kind = "aggregate"
            elif part == "sensor":
                kind = "sensor"
            else:
                kind = "pump"
            if not serial:
                serial = synthetic_serial("carelink", model, person)
                ctx.warn(f"no serial number for {model or 'the device'}; using {serial}")
            device_kind = DeviceKind.CGM if "guardian connect" in model.lower() else DeviceKind.PUMP
            ctx.add_device(serial, MANUFACTURER, model or "CareLink device", device_kind)
            section = _Section(kind, model, serial)
            sections.append(section)
            continue
        if head == "Index":
            if section is None:
                raise ImportFileError("data header before any '-------' section line", line=line)
            section.columns = _Columns.from_header(row)
            section.header_line = line
            if "date" not in section.columns.index or "time" not in section.columns.index:
                raise ImportFileError("section header lacks Date/Time columns", line=line)
            state.mmol = state.mmol or section.columns.mmol
            if "sg" in section.columns.names:
                state.sg_column = section.columns.names["sg"]
            continue
        if section is None or section.columns is None:
            continue  # preamble
        row_count += 1
        if row_count % 4096 == 0:
            ctx.report(line, total)
        sec_no = len(sections) - 1
        cols = section.columns
        # Rows are newest first and Index follows file order: the line number is the
        # device sequence without parsing every Index cell.
        seq = -float(line)
        date_i, time_i = cols.index["date"], cols.index["time"]
        if len(row) <= time_i:
            raise ImportFileError("row is shorter than the section header (truncated?)", line=line)
        local = _gen_b_local(state, row[date_i], row[time_i], line)
        if section.kind == "sensor":
            sensor_seen = True
            _read_sensor_row(state, cols, row, line, section.serial, seq, local, sec_no)
        elif section.kind == "aggregate":
            _read_aggregate_row(state, cols, row, line, section.serial, seq, local, sec_no)
        else:
            state.pump_sections.add(sec_no)
            _read_event_row(state, cols, row, line, section.serial, seq, local, sec_no)
    if not sections or all(s.columns is None for s in sections):
        raise ImportFileError(
            "no '-------' section with an 'Index' header found (truncated CareLink export?)"
        )
    if not sensor_seen and not state.facts:
        ctx.warn("the export contains no data rows")
    return _build(state)


def _read_sensor_row(
    state: _State,
    cols: _Columns,
    row: list[str],
    line: int,
    serial: str,
    seq: float,
    local: int,
    section: int,
) -> None:
    sg_i = cols.index.get("sg")
    if sg_i is not None and sg_i < len(row) and row[sg_i]:
        text = row[sg_i]
        value = -1.0
        if text.isdigit() and cols.factor["sg"] == 1.0:
            value = float(text)  # fast path: integer mg/dL, the common case
        if GLUCOSE_MIN_MGDL <= value <= GLUCOSE_MAX_MGDL:
            flag = GlucoseFlag.NONE
        else:
            value, flag = _glucose_cell(state, cols, "sg", text, line)
        state.cgm_serial.append(serial)
        state.cgm_seq.append(seq)
        state.cgm_local.append(local)
        state.cgm_line.append(line)
        state.cgm_value.append(value)
        state.cgm_flag.append(flag)
        state.cgm_section.append(section)
        return
    exc_i = cols.index.get("sensor_exception")
    if exc_i is not None and exc_i < len(row) and row[exc_i].strip() == "SENSOR_INIT_CODE":
        state.facts.append(
            _Fact("sensor_init", serial, seq, local, line, cols.names["sensor_exception"])
        )
        state.fact_section.append(section)
    cal_i = cols.index.get("cal_bg")
    if cal_i is not None and cal_i < len(row) and row[cal_i]:
        value, _ = _glucose_cell(state, cols, "cal_bg", row[cal_i], line)
        state.facts.append(
            _Fact(
                "bg",
                serial,
                seq,
                local,
                line,
                cols.names["cal_bg"],
                {"value": value, "source": MeterSource.CALIBRATION},
            )
        )
        state.fact_section.append(section)


def _read_aggregate_row(
    state: _State,
    cols: _Columns,
    row: list[str],
    line: int,
    serial: str,
    seq: float,
    local: int,
    section: int,
) -> None:
    i = cols.index.get("bolus_delivered")
    if i is None or i >= len(row) or not row[i].strip():
        return  # the section runs back to 2016 with empty days (formats.md §1.2)
    column = cols.names["bolus_delivered"]
    total = check_insulin(state.num(row[i], line, column), line=line, column=column)
    state.facts.append(_Fact("auto_day", serial, seq, local, line, column, {"total": total}))
    state.fact_section.append(section)


def _parse_gen_a(lines: list[str], ctx: ImportContext) -> RecordBatch:
    state = _State(ctx, decimal_comma=False)
    header_at = next((i for i, ln in enumerate(lines) if ln.startswith("Index,")), None)
    if header_at is None:
        raise ImportFileError("no 'Index' header found (truncated CareLink export?)")
    pump_model, pump_serial, person = "", "", ""
    for ln in lines[:header_at]:
        cells = first_cells(ln, ",")
        if cells and cells[0] == "Pump:" and len(cells) > 2:
            pump_model = cells[1].strip()
            pump_serial = cells[2].strip().lstrip("#").strip()
        elif cells and cells[0] == "Name" and len(cells) > 1:
            person = cells[1]
    cols = _Columns.from_header(first_cells(lines[header_at], ","))
    state.mmol = cols.mmol
    if "timestamp" not in cols.index:
        raise ImportFileError("header lacks the Timestamp column", line=header_at + 1)
    if not pump_serial:
        pump_serial = synthetic_serial("carelink", pump_model, person)
        ctx.warn(f"no pump serial number in the file; using {pump_serial}")
    ctx.add_device(pump_serial, MANUFACTURER, pump_model or "Paradigm", DeviceKind.PUMP)
    rows = list(csv_rows(lines, ",", header_at + 1))
    ts_i = cols.index["timestamp"]
    # Day/month order from the whole file: UK accounts write D/M/YY (formats.md §1.1).
    state.day_first = any(
        len(r) > ts_i and r[ts_i][:2].rstrip("/").isdigit() and int(r[ts_i].split("/")[0]) > 12
        for _, r in rows
    )
    total = len(rows)
    for n, (line, row) in enumerate(rows, 1):
        if not row or not row[0].strip():
            continue
        if n % 4096 == 0:
            ctx.report(n, total)
        if len(row) <= ts_i:
            raise ImportFileError("row is shorter than the header (truncated?)", line=line)
        seq = parse_number(row[0], line=line, column="Index")
        local = _device_time(row[ts_i], line, "Timestamp", day_first=state.day_first)
        sg_i = cols.index.get("sg")
        if sg_i is not None and sg_i < len(row) and row[sg_i]:
            value, flag = _glucose_cell(state, cols, "sg", row[sg_i], line)
            state.cgm_serial.append(pump_serial)
            state.cgm_seq.append(seq)
            state.cgm_local.append(local)
            state.cgm_line.append(line)
            state.cgm_value.append(value)
            state.cgm_flag.append(flag)
            state.cgm_section.append(0)
            state.sg_column = cols.names["sg"]
        _read_event_row(state, cols, row, line, pump_serial, seq, local, 0)
    state.pump_sections.add(0)
    return _build(state)


# --------------------------------------------------------------------------- clock changes


def _shift_for(
    state: _State, serial: str, section: int, seq: float, raw: int, crossed: set[int]
) -> int:
    """Seconds to add to a row's device time for the clock changes recorded after it.

    See docs/time-rules.md "CareLink clock changes".
    """
    shift = 0
    for ci, ch in enumerate(state.changes):
        if ch.serial != serial:
            continue
        before = seq <= ch.seq if ch.section == section else ci in crossed
        if before and state.exempt_before[ci] <= raw <= ch.old:
            shift += ch.new - ch.old
    return shift


def _prepare_changes(state: _State) -> None:
    """Find, for each clock change, whether it catches up a DST transition of the zone."""
    clock = state.ctx.clock
    exempt: list[int] = []
    for ch in state.changes:
        delta = ch.new - ch.old
        limit = -(2**62)
        for u, a, b in clock.transitions_between(ch.old - 8 * 86400, ch.old):
            if b - a == delta:
                # The patient moved the pump clock to follow daylight saving time: rows
                # before the zone's own transition were right and are not shifted.
                limit = u + a
        exempt.append(limit)
    state.exempt_before = exempt


def _crossed_changes(
    state: _State, serial: str, section: int, seq_desc: list[tuple[float, int]]
) -> list[set[int]]:
    """For a section without the change rows, which changes each row (newest first) precedes."""
    relevant = [
        (ci, ch)
        for ci, ch in enumerate(state.changes)
        if ch.serial == serial and ch.section != section
    ]
    out: list[set[int]] = []
    crossed: set[int] = set()
    prev: int | None = None
    for _, raw in seq_desc:
        for ci, ch in relevant:
            if ci in crossed:
                continue
            forward = ch.new > ch.old
            if raw <= ch.old and (
                forward or raw < ch.new or (prev is not None and raw > prev + 60)
            ):
                crossed.add(ci)
        out.append(set(crossed))
        prev = raw
    return out


# --------------------------------------------------------------------------- building records


def _convert_times(state: _State) -> tuple[list[int], list[int]]:
    """Apply clock changes, then local -> UTC in device order per (device, section)."""
    clock = state.ctx.clock
    _prepare_changes(state)
    # group fact and cgm indices by (serial, section)
    groups: dict[tuple[str, int], list[tuple[float, int, int, int]]] = {}
    for i, f in enumerate(state.facts):
        groups.setdefault((f.serial, state.fact_section[i]), []).append((f.seq, 0, i, f.local))
    for i in range(len(state.cgm_local)):
        groups.setdefault((state.cgm_serial[i], state.cgm_section[i]), []).append(
            (state.cgm_seq[i], 1, i, state.cgm_local[i])
        )
    cgm_utc = [0] * len(state.cgm_local)
    cgm_off = [0] * len(state.cgm_local)
    for (serial, section), items in groups.items():
        items.sort(key=lambda t: t[0])
        has_changes = any(ch.serial == serial for ch in state.changes)
        if has_changes:
            crossed_by_pos: list[set[int]] = []
            if any(ch.serial == serial and ch.section != section for ch in state.changes):
                desc = [(seq, raw) for seq, _, _, raw in reversed(items)]
                crossed_by_pos = list(reversed(_crossed_changes(state, serial, section, desc)))
            adjusted = []
            for pos, (seq, _, _, raw) in enumerate(items):
                crossed = crossed_by_pos[pos] if crossed_by_pos else set()
                adjusted.append(raw + _shift_for(state, serial, section, seq, raw, crossed))
        else:
            adjusted = [raw for _, _, _, raw in items]
        converted = clock.to_utc_sequence(adjusted)
        for (_, is_cgm, i, _), (utc, off) in zip(items, converted, strict=True):
            if is_cgm:
                cgm_utc[i], cgm_off[i] = utc, off
            else:
                state.facts[i].utc, state.facts[i].offset = utc, off
    return cgm_utc, cgm_off


_SOURCE_MAP = {
    "BOLUS_WIZARD": BolusSource.WIZARD,
    "MANUAL": BolusSource.MANUAL,
    "EASY_BOLUS": BolusSource.MANUAL,
    "PRESET_BOLUS": BolusSource.MANUAL,
    "CLOSED_LOOP_BG_CORRECTION": BolusSource.AUTOMATIC,
    # 780G meal boluses go through the calculator (carbs entered by the user).
    "CLOSED_LOOP_FOOD_BOLUS": BolusSource.WIZARD,
    "CLOSED_LOOP_BG_CORRECTION_AND_FOOD_BOLUS": BolusSource.WIZARD,
}


def _build(state: _State) -> RecordBatch:
    ctx = state.ctx
    cgm_utc, cgm_off = _convert_times(state)
    out: list[Located] = []
    for i in range(len(cgm_utc)):
        out.append(
            Located(
                CgmReading(
                    device_serial=state.cgm_serial[i],
                    time=cgm_utc[i],
                    utc_offset=cgm_off[i],
                    glucose=state.cgm_value[i],
                    flag=state.cgm_flag[i],
                ),
                state.cgm_line[i],
                state.sg_column,
            )
        )
    # A suspend sorts before the rate-0 basal row of the same second, so that row is read
    # as the suspension it is rather than as a scheduled rate of zero.
    facts = sorted(state.facts, key=lambda f: (f.serial, f.utc, f.kind != "suspend", f.seq))
    by_kind: dict[str, list[_Fact]] = {}
    for f in facts:
        by_kind.setdefault(f.kind, []).append(f)

    out.extend(_meter_readings(by_kind.get("bg", [])))
    out.extend(_boluses(state, by_kind.get("bolus", []), by_kind.get("wizard", [])))
    out.extend(_basal_and_suspends(facts))
    for f in by_kind.get("event", []):
        out.append(
            Located(
                DeviceEvent(
                    device_serial=f.serial,
                    time=f.utc,
                    utc_offset=f.offset,
                    kind=f.data["event"],
                    value=f.data["value"],
                    text=f.data["text"],
                ),
                f.line,
                f.column,
            )
        )
    for f in by_kind.get("time_change", []):
        out.append(
            Located(
                DeviceEvent(
                    device_serial=f.serial,
                    time=f.utc,
                    utc_offset=f.offset,
                    kind=DeviceEventKind.TIME_CHANGE,
                    duration=int(f.data["delta"]),
                ),
                f.line,
                f.column,
            )
        )
    last_init: dict[str, int] = {}
    for f in by_kind.get("sensor_init", []):
        # SENSOR_INIT_CODE repeats every 5 min during warm-up: one start per run.
        if f.utc - last_init.get(f.serial, -(10**12)) > 3600:
            out.append(
                Located(
                    DeviceEvent(
                        device_serial=f.serial,
                        time=f.utc,
                        utc_offset=f.offset,
                        kind=DeviceEventKind.SENSOR_START,
                    ),
                    f.line,
                    f.column,
                )
            )
        last_init[f.serial] = f.utc
    for f in by_kind.get("carbs", []):
        out.append(
            Located(
                CarbEntry(
                    device_serial=f.serial,
                    time=f.utc,
                    utc_offset=f.offset,
                    carbs=float(f.data["carbs"]),
                ),
                f.line,
                f.column,
            )
        )
    for f in by_kind.get("pen", []):
        amount = float(f.data["amount"])
        out.append(
            Located(
                Bolus(
                    device_serial=f.serial,
                    time=f.utc,
                    utc_offset=f.offset,
                    source=BolusSource.PEN,
                    programmed=amount,
                    delivered=amount,
                ),
                f.line,
                f.column,
            )
        )
    for f in by_kind.get("auto_day", []):
        total = float(f.data["total"])
        # One day of 780G SmartGuard auto insulin as an automated segment whose rate times
        # 24 h is the day's total (the CSV has no per-delivery rows, formats.md §1.2).
        out.append(
            Located(
                BasalSegment(
                    device_serial=f.serial,
                    time=f.utc,
                    utc_offset=f.offset,
                    kind=BasalKind.AUTOMATED,
                    rate=round(total / 24.0, 5),
                    duration=86400,
                    schedule_name="Aggregated Auto Insulin",
                ),
                f.line,
                f.column,
            )
        )
    settings = by_kind.get("setting", [])
    if settings:
        out.append(_settings(state, settings))
    return finish_batch(FORMAT, out, ctx, "mmol/L" if state.mmol else "mg/dL")


def _meter_readings(facts: list[_Fact]) -> list[Located]:
    """Collapse the rows one fingerstick produces (received, accepted, calibration)."""
    out: list[Located] = []
    rank = {
        MeterSource.CALIBRATION: 3,
        MeterSource.LINKED: 2,
        MeterSource.MANUAL: 1,
        MeterSource.METER: 0,
    }
    groups: list[list[_Fact]] = []
    open_groups: dict[tuple[str, float], list[_Fact]] = {}
    for f in facts:  # sorted by serial, utc
        key = (f.serial, round(float(f.data["value"]), 0))
        group = open_groups.get(key)
        if group is not None and f.utc - group[0].utc <= _SAME_BG_WINDOW_S:
            group.append(f)
            continue
        group = [f]
        open_groups[key] = group
        groups.append(group)
    for group in groups:
        first = group[0]
        source = max((g.data["source"] for g in group), key=lambda s: rank[s])
        out.append(
            Located(
                MeterReading(
                    device_serial=first.serial,
                    time=first.utc,
                    utc_offset=first.offset,
                    glucose=float(first.data["value"]),
                    source=source,
                ),
                first.line,
                first.column,
            )
        )
    return out


def _boluses(state: _State, parts: list[_Fact], wizards: list[_Fact]) -> list[Located]:
    """One Bolus per bolus, from its programmed, completed and calculator rows."""
    groups: dict[tuple[str, ...], list[_Fact]] = {}
    order: list[tuple[str, ...]] = []
    for f in parts:
        number = str(f.data["number"])
        btype = str(f.data["type"])
        if number:
            key: tuple[str, ...] = (f.serial, "n", number)
            group = groups.get(key)
            if group is not None and f.utc - group[0].utc > _BOLUS_GROUP_SPAN_S:
                # the counter wrapped: start a new group under a distinct key
                key = (*key, str(f.utc))
        elif btype.startswith("dual"):
            key = (f.serial, "d", str(f.utc))
        else:
            key = (f.serial, "l", str(f.line))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)

    out: list[Located] = []
    micro: list[Located] = []
    starts: dict[str, list[tuple[int, int]]] = {}
    built: list[dict[str, Any]] = []
    for key in order:
        rows = groups[key]
        first = rows[0]
        source_text = next((str(r.data["source"]) for r in rows if r.data["source"]), "")
        normal_sel = normal_del = square_sel = square_del = None
        duration = None
        is_dual = False
        has_square = False
        for r in rows:
            btype = str(r.data["type"])
            square = "square" in btype
            is_dual = is_dual or btype.startswith("dual")
            sel, dlv = r.data["selected"], r.data["delivered"]
            if square:
                has_square = True
                if sel is not None:
                    square_sel = max(square_sel or 0.0, float(sel))
                if dlv is not None:
                    square_del = max(square_del or 0.0, float(dlv))
                if r.data["duration"] is not None:
                    duration = int(r.data["duration"])
            else:
                if sel is not None:
                    normal_sel = max(normal_sel or 0.0, float(sel))
                if dlv is not None:
                    normal_del = max(normal_del or 0.0, float(dlv))
        programmed_rows = [r for r in rows if r.data["selected"] is not None]
        start = min(programmed_rows or rows, key=lambda r: r.utc)
        if normal_del is None and square_del is None:
            if normal_sel is None and square_sel is None:
                continue  # a cancellation note without volumes
            state.ctx.warn(
                "a bolus has no completion row; its programmed amount is taken as delivered"
            )
            normal_del, square_del = normal_sel, square_sel
        delivered = round((normal_del or 0.0) + (square_del or 0.0), 4)
        if source_text == "CLOSED_LOOP_MICRO_BOLUS":
            # 670G/770G Auto Mode delivers its basal as 5-minute micro boluses.
            micro.append(
                Located(
                    BasalSegment(
                        device_serial=start.serial,
                        time=start.utc,
                        utc_offset=start.offset,
                        kind=BasalKind.AUTOMATED,
                        rate=round(delivered * 12, 5),
                        duration=300,
                    ),
                    start.line,
                    start.column,
                )
            )
            continue
        if is_dual or (has_square and normal_sel is not None):
            kind = BolusKind.DUAL
        elif has_square:
            kind = BolusKind.SQUARE
        else:
            kind = BolusKind.NORMAL
        built.append(
            {
                "serial": start.serial,
                "time": start.utc,
                "offset": start.offset,
                "kind": kind,
                "source": _SOURCE_MAP.get(source_text),
                "programmed": square_sel if kind is BolusKind.SQUARE else normal_sel,
                "delivered": delivered,
                "extended": square_del if has_square else None,
                "duration": duration if has_square else None,
                "line": start.line,
                "column": first.column,
                "source_id": first.data["raw_id"],
            }
        )
        starts.setdefault(start.serial, []).append((start.utc, len(built) - 1))

    for serial_starts in starts.values():
        serial_starts.sort()
    wizard_for: dict[int, _Fact] = {}
    loose_wizards: list[_Fact] = []
    for w in wizards:
        if str(w.data.get("status", "")) == "not delivered":
            continue
        candidates = starts.get(w.serial, [])
        pos = bisect_left(candidates, (w.utc - 5, -1))
        match = None
        while pos < len(candidates) and candidates[pos][0] <= w.utc + _WIZARD_LINK_WINDOW_S:
            if candidates[pos][1] not in wizard_for:
                match = candidates[pos][1]
                break
            pos += 1
        if match is None:
            loose_wizards.append(w)
        else:
            wizard_for[match] = w

    for i, b in enumerate(built):
        linked = wizard_for.get(i)
        wiz = linked.data if linked is not None else {}
        source = b["source"]
        if source is None:
            source = BolusSource.WIZARD if linked is not None else BolusSource.MANUAL
        out.append(
            Located(
                Bolus(
                    device_serial=str(b["serial"]),
                    time=int(b["time"]),
                    utc_offset=int(b["offset"]),
                    source_id=b["source_id"],
                    kind=b["kind"],
                    source=source,
                    programmed=b["programmed"],
                    delivered=float(b["delivered"]),
                    extended=b["extended"],
                    duration=b["duration"],
                    wizard_carbs=wiz.get("wizard_carbs"),
                    wizard_bg=wiz.get("wizard_bg"),
                    carb_ratio=wiz.get("carb_ratio"),
                    sensitivity=wiz.get("sensitivity"),
                    target_low=wiz.get("target_low"),
                    target_high=wiz.get("target_high"),
                    insulin_on_board=wiz.get("insulin_on_board"),
                    food_estimate=wiz.get("food_estimate"),
                    correction_estimate=wiz.get("correction_estimate"),
                    recommended=wiz.get("recommended"),
                ),
                b["line"],
                str(b["column"]),
            )
        )
        if linked is not None and linked.data.get("wizard_carbs"):
            out.append(_carb_from_wizard(linked))
    for loose in loose_wizards:
        if loose.data.get("wizard_carbs"):
            out.append(_carb_from_wizard(loose))
    return out + micro


def _carb_from_wizard(w: _Fact) -> Located:
    return Located(
        CarbEntry(
            device_serial=w.serial,
            time=w.utc,
            utc_offset=w.offset,
            carbs=float(w.data["wizard_carbs"]),
        ),
        w.line,
        w.column,
    )


def _basal_and_suspends(facts: list[_Fact]) -> list[Located]:
    """Scheduled/temp basal segments and suspend/resume events, walked in time order."""
    out: list[Located] = []
    scheduled: dict[str, float] = {}
    suspended_at: dict[str, tuple[_Fact, int]] = {}
    for f in facts:  # sorted by serial, utc
        if f.kind == "basal":
            rate = float(f.data["rate"])
            kind = (
                BasalKind.SUSPENDED
                if rate == 0 and f.serial in suspended_at
                else BasalKind.SCHEDULED
            )
            if kind is BasalKind.SCHEDULED:
                scheduled[f.serial] = rate
            out.append(
                Located(
                    BasalSegment(
                        device_serial=f.serial,
                        time=f.utc,
                        utc_offset=f.offset,
                        kind=kind,
                        rate=rate,
                        schedule_name=f.data.get("schedule"),
                    ),
                    f.line,
                    f.column,
                )
            )
        elif f.kind == "temp":
            percent = f.data.get("percent")
            if percent is not None:
                base = scheduled.get(f.serial)
                rate = round(base * float(percent) / 100.0, 5) if base is not None else 0.0
            else:
                rate = float(f.data["rate"])
            out.append(
                Located(
                    BasalSegment(
                        device_serial=f.serial,
                        time=f.utc,
                        utc_offset=f.offset,
                        kind=BasalKind.TEMP,
                        rate=rate,
                        duration=int(f.data["duration"]),
                        percent=percent,
                    ),
                    f.line,
                    f.column,
                )
            )
        elif f.kind == "suspend":
            if f.data["resume"]:
                started = suspended_at.pop(f.serial, None)
                # A pairing longer than a day means rows are missing in between (a trimmed
                # or partial export): leave the suspend's duration unknown.
                if started is not None and f.utc - started[0].utc <= 86400:
                    s, pos = started
                    old = out[pos].record
                    assert isinstance(old, DeviceEvent)
                    out[pos] = Located(
                        DeviceEvent(
                            device_serial=old.device_serial,
                            time=old.time,
                            utc_offset=old.utc_offset,
                            kind=old.kind,
                            text=old.text,
                            duration=f.utc - s.utc,
                        ),
                        s.line,
                        s.column,
                    )
                out.append(
                    Located(
                        DeviceEvent(
                            device_serial=f.serial,
                            time=f.utc,
                            utc_offset=f.offset,
                            kind=DeviceEventKind.RESUME,
                            text=str(f.data["text"]),
                        ),
                        f.line,
                        f.column,
                    )
                )
            else:
                if f.serial in suspended_at:
                    continue  # repeated suspend reason while already suspended
                suspended_at[f.serial] = (f, len(out))
                out.append(
                    Located(
                        DeviceEvent(
                            device_serial=f.serial,
                            time=f.utc,
                            utc_offset=f.offset,
                            kind=DeviceEventKind.SUSPEND,
                            text=str(f.data["text"]),
                        ),
                        f.line,
                        f.column,
                    )
                )
    return out


def _settings(state: _State, facts: list[_Fact]) -> Located:
    """Generation-A ``Current*`` raw records -> one pump settings snapshot."""
    pattern_names: dict[str, str] = {}
    profiles: dict[str, list[tuple[int, float]]] = {}
    ratios: list[tuple[int, float]] = []
    sens: list[tuple[int, float]] = []
    targets: list[tuple[int, float, float]] = []
    active = None
    max_bolus = max_basal = None
    action = None
    isf_mmol = False
    for f in facts:
        raw_type = str(f.data["raw_type"])
        pairs: dict[str, str] = f.data["pairs"]
        start = int((_raw_float(pairs, "START_TIME") or 0) // 1000)
        if raw_type == "CurrentBasalProfilePattern" and "PATTERN_NAME" in pairs:
            pattern_names[str(f.data["raw_id"])] = pairs["PATTERN_NAME"]
        elif raw_type == "CurrentBasalProfile":
            rate = _raw_float(pairs, "RATE")
            if rate is not None:
                profiles.setdefault(pairs.get("PATTERN_DATUM", ""), []).append((start, rate))
        elif raw_type == "CurrentCarbRatio":
            amount = _raw_float(pairs, "AMOUNT")
            if amount is not None:
                ratios.append((start, amount))
        elif raw_type == "CurrentInsulinSensitivityPattern":
            isf_mmol = "mmol" in pairs.get("ORIGINAL_UNITS", "")
        elif raw_type == "CurrentInsulinSensitivity":
            amount = _raw_float(pairs, "AMOUNT")
            if amount is not None:
                sens.append((start, amount))
        elif raw_type == "CurrentBGTargetRange":
            low, high = _raw_float(pairs, "AMOUNT_LOW"), _raw_float(pairs, "AMOUNT_HIGH")
            if low is not None and high is not None:
                targets.append((start, low, high))
        elif raw_type == "CurrentActiveBasalProfilePattern":
            active = pairs.get("PATTERN_NAME")
        elif raw_type == "CurrentMaxBolus":
            max_bolus = _raw_float(pairs, "AMOUNT")
        elif raw_type == "CurrentMaxBasal":
            max_basal = _raw_float(pairs, "RATE")
        elif raw_type == "CurrentInsulinActionCurve":
            minutes = _raw_float(pairs, "AMOUNT")
            action = int(minutes * 60) if minutes is not None else None
    factor = MGDL_PER_MMOLL if (isf_mmol or state.mmol) else 1.0
    schedules = {
        pattern_names.get(datum, active or "standard") if datum else (active or "standard"): sorted(
            rows
        )
        for datum, rows in profiles.items()
    }
    first = min(facts, key=lambda f: f.utc)
    return Located(
        PumpSettings(
            device_serial=first.serial,
            time=first.utc,
            utc_offset=first.offset,
            active_schedule=active,
            basal_schedules=schedules,
            carb_ratios=sorted(set(ratios)),
            sensitivities=sorted({(s, round(v * factor, 1)) for s, v in sens}),
            targets=sorted(
                {(s, round(lo * factor, 1), round(hi * factor, 1)) for s, lo, hi in targets}
            ),
            active_insulin_time=action,
            max_bolus=max_bolus,
            max_basal=max_basal,
        ),
        first.line,
        "Raw-Values",
    )
