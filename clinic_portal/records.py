"""The normalized diabetes records every source produces.

Drivers (USB/BLE), file importers, Nightscout sync and the demo generator all speak this one
vocabulary; the ingest service is the only code that turns these records into database rows.

Conventions shared by every record:

* ``time`` is an integer count of seconds since the Unix epoch, UTC.
* ``utc_offset`` is the device's local offset from UTC at that instant, in minutes
  (e.g. +60 for CET in winter), so local wall-clock time is ``time + utc_offset * 60``.
* ``device_serial`` names the device that recorded the event; it must appear in the batch's
  ``devices`` list.
* glucose is always mg/dL (``MGDL_PER_MMOLL`` converts mmol/L; the factor Tidepool and
  Nightscout use).
* insulin is in units (U), carbohydrate in grams, durations in seconds.
* ``source_id`` is the source's own record id where it has one (CareLink raw id,
  Nightscout ``_id``).

Records are frozen dataclasses so that they can be hashed and collapsed when a source repeats
itself (CareLink writes every bolus twice).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

MGDL_PER_MMOLL = 18.01559


def mgdl_to_mmol(value_mgdl: float) -> float:
    """Convert mg/dL to mmol/L with the Tidepool/Nightscout factor 18.01559."""
    return value_mgdl / MGDL_PER_MMOLL


class DeviceKind(enum.StrEnum):
    PUMP = "pump"
    CGM = "cgm"
    METER = "meter"
    PEN = "pen"


class GlucoseFlag(enum.StrEnum):
    """Why a glucose value is not a plain measurement."""

    NONE = ""
    BELOW_LIMIT = "below_limit"  # device showed "Low"; value is the device's lower limit
    ABOVE_LIMIT = "above_limit"  # device showed "High"; value is the device's upper limit


class MeterSource(enum.StrEnum):
    MANUAL = "manual"  # typed into the pump or app
    LINKED = "linked"  # sent by a linked meter
    METER = "meter"  # read from the meter itself
    CALIBRATION = "calibration"  # fingerstick entered to calibrate a CGM


class BolusKind(enum.StrEnum):
    NORMAL = "normal"
    SQUARE = "square"  # extended
    DUAL = "dual"  # normal part now, extended part over ``duration``


class BolusSource(enum.StrEnum):
    MANUAL = "manual"  # programmed by hand, no calculator
    WIZARD = "wizard"  # bolus calculator (Bolus Wizard, Bolus Calculator)
    AUTOMATIC = "automatic"  # automated correction (780G auto correction, SMB)
    PEN = "pen"  # injection logged from a pen or an app


class BasalKind(enum.StrEnum):
    SCHEDULED = "scheduled"
    TEMP = "temp"
    SUSPENDED = "suspended"
    AUTOMATED = "automated"


class DeviceEventKind(enum.StrEnum):
    PRIME = "prime"
    REWIND = "rewind"
    CARTRIDGE_CHANGE = "cartridge_change"
    SITE_CHANGE = "site_change"
    SENSOR_START = "sensor_start"
    SENSOR_STOP = "sensor_stop"
    ALARM = "alarm"
    SUSPEND = "suspend"
    RESUME = "resume"
    TIME_CHANGE = "time_change"
    AUTO_MODE_EXIT = "auto_mode_exit"
    KETONE = "ketone"  # value: blood ketone mmol/L
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device named in a batch; ``serial`` is what uploads are matched on."""

    serial: str
    manufacturer: str
    model: str
    kind: DeviceKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    device_serial: str
    time: int
    utc_offset: int = 0
    source_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CgmReading(Record):
    glucose: float  # mg/dL
    flag: GlucoseFlag = GlucoseFlag.NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class MeterReading(Record):
    glucose: float  # mg/dL
    source: MeterSource = MeterSource.METER
    flag: GlucoseFlag = GlucoseFlag.NONE


@dataclass(frozen=True, slots=True, kw_only=True)
class Bolus(Record):
    kind: BolusKind = BolusKind.NORMAL
    source: BolusSource = BolusSource.MANUAL
    programmed: float | None = None  # U (normal part, or whole for square)
    delivered: float = 0.0  # U actually delivered (normal + extended)
    extended: float | None = None  # U of the extended part (square/dual)
    duration: int | None = None  # s of the extended part
    # Bolus calculator inputs and its suggestion, where the source has them.
    wizard_carbs: float | None = None  # g
    wizard_bg: float | None = None  # mg/dL
    carb_ratio: float | None = None  # g/U
    sensitivity: float | None = None  # mg/dL per U
    target_low: float | None = None  # mg/dL
    target_high: float | None = None  # mg/dL
    insulin_on_board: float | None = None  # U
    food_estimate: float | None = None  # U
    correction_estimate: float | None = None  # U
    recommended: float | None = None  # U the calculator suggested
    long_acting: bool = False  # pen injection of basal insulin


@dataclass(frozen=True, slots=True, kw_only=True)
class BasalSegment(Record):
    """A stretch of basal delivery starting at ``time`` and lasting ``duration`` seconds."""

    kind: BasalKind = BasalKind.SCHEDULED
    rate: float = 0.0  # U/h delivered during the segment
    duration: int = 0  # s; 0 when the source gives only the start
    percent: float | None = None  # temp basal as percent of scheduled
    schedule_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CarbEntry(Record):
    carbs: float  # g


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceEvent(Record):
    kind: DeviceEventKind
    value: float | None = None  # e.g. prime volume U, ketone mmol/L, suspend minutes
    text: str | None = None  # alarm name, note text, reason (stored as text, never evaluated)
    duration: int | None = None  # s, for suspends and time changes (new - old)


@dataclass(frozen=True, slots=True, kw_only=True)
class PumpSettings(Record):
    """A snapshot of the pump's therapy settings at ``time``.

    Schedules are lists of ``(start_seconds_after_midnight, value)``; glucose values in mg/dL.
    """

    active_schedule: str | None = None
    basal_schedules: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    carb_ratios: list[tuple[int, float]] = field(default_factory=list)  # g/U
    sensitivities: list[tuple[int, float]] = field(default_factory=list)  # mg/dL per U
    targets: list[tuple[int, float, float]] = field(default_factory=list)  # (start, low, high)
    active_insulin_time: int | None = None  # s
    max_bolus: float | None = None  # U
    max_basal: float | None = None  # U/h

    def __hash__(self) -> int:
        return hash((self.device_serial, self.time, self.active_schedule))

    def settings_json(self) -> dict[str, Any]:
        """The snapshot as a JSON-ready dict (stored in the settings table)."""
        return {
            "active_schedule": self.active_schedule,
            "basal_schedules": {k: [list(s) for s in v] for k, v in self.basal_schedules.items()},
            "carb_ratios": [list(s) for s in self.carb_ratios],
            "sensitivities": [list(s) for s in self.sensitivities],
            "targets": [list(s) for s in self.targets],
            "active_insulin_time": self.active_insulin_time,
            "max_bolus": self.max_bolus,
            "max_basal": self.max_basal,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CgmSettings(Record):
    """CGM alert settings at ``time`` (glucose in mg/dL)."""

    low_alert: float | None = None
    high_alert: float | None = None
    urgent_low: float | None = None


AnyRecord = (
    CgmReading
    | MeterReading
    | Bolus
    | BasalSegment
    | CarbEntry
    | DeviceEvent
    | PumpSettings
    | CgmSettings
)

# The summary key each record type is counted under (the import preview and upload rows).
COUNT_KEYS: dict[type[Record], str] = {
    CgmReading: "cgm",
    MeterReading: "bg",
    Bolus: "bolus",
    BasalSegment: "basal",
    CarbEntry: "carbs",
    DeviceEvent: "device_event",
    PumpSettings: "pump_settings",
    CgmSettings: "pump_settings",
}


@dataclass(slots=True)
class RecordBatch:
    """What one source yields: its devices, its records and what it noticed on the way."""

    source: str  # e.g. "carelink_csv", "usb:contour_next", "demo"
    devices: list[DeviceInfo] = field(default_factory=list)
    records: list[AnyRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    units_in_file: str | None = None  # "mg/dL" or "mmol/L" as the source wrote them

    def counts(self) -> dict[str, int]:
        """Records per summary key, every key present."""
        out = dict.fromkeys(
            ("cgm", "bg", "bolus", "basal", "carbs", "device_event", "pump_settings"), 0
        )
        for record in self.records:
            out[COUNT_KEYS[type(record)]] += 1
        return out
