"""A realistic synthetic CareLink generation-B export (MiniMed 780G, EU locale) and a timing run.

``make_carelink_export(days=90)`` writes what a Belgian 780G account exports: BOM, ``;`` with a
decimal comma everywhere, newest-first sections (pump, Aggregated Auto Insulin Data, sensor) with
the 54 columns of formats.md §1.2, each bolus written as programmed + delivered rows plus its
calculator row, linked meter readings in three rows, scheduled basal rows written twice, alarms,
rewind/prime, and a 5-minute sensor trace (~26,000 rows for 90 days).

Run ``python bench/carelink_synth.py`` to time ``parse_file`` (median of 5) against a bare
``csv.reader`` pass over the same text.
"""

from __future__ import annotations

import csv
import io
import math
import random
import statistics
import time
from datetime import datetime, timedelta

COLUMNS = [
    "Index", "Date", "Time", "New Device Time", "BG Source", "BG Reading (mg/dL)",
    "Linked BG Meter ID", "Basal Rate (U/h)", "Temp Basal Amount", "Temp Basal Type",
    "Temp Basal Duration (h:mm:ss)", "Bolus Type", "Bolus Volume Selected (U)",
    "Bolus Volume Delivered (U)", "Bolus Duration (h:mm:ss)", "Prime Type",
    "Prime Volume Delivered (U)", "Estimated Reservoir Volume after Fill (U)", "Alert",
    "User Cleared Alerts", "Suspend", "Rewind", "BWZ Estimate (U)", "BWZ Target High BG (mg/dL)",
    "BWZ Target Low BG (mg/dL)", "BWZ Carb Ratio (g/U)", "BWZ Insulin Sensitivity (mg/dL/U)",
    "BWZ Carb Input (grams)", "BWZ BG/SG Input (mg/dL)", "BWZ Correction Estimate (U)",
    "BWZ Food Estimate (U)", "BWZ Active Insulin (U)", "BWZ Status",
    "Sensor Calibration BG (mg/dL)", "Sensor Glucose (mg/dL)", "ISIG Value", "Event Marker",
    "Bolus Number", "Bolus Cancellation Reason", "BWZ Unabsorbed Insulin Total (U)",
    "Final Bolus Estimate", "Scroll Step Size", "Insulin Action Curve Time",
    "Sensor Calibration Rejected Reason", "Preset Bolus", "Bolus Source", "BLE Network Device",
    "Device Update Event", "Network Device Associated Reason",
    "Network Device Disassociated Reason", "Network Device Disconnected Reason",
    "Sensor Exception", "Preset Temp Basal Name", "Sensor State",
]  # fmt: skip
POS = {name: i for i, name in enumerate(COLUMNS)}
MODEL, SERIAL, METER = "MiniMed 780G MMT-1886", "NG4999999H", "11300068862"
BASAL_SCHEDULE = [(0, 0.55), (4, 0.8), (8, 0.9), (12, 0.85), (17, 0.9), (22, 0.6)]


def _num(value: float, places: int = 3) -> str:
    """EU decimal comma, trailing zeros trimmed as CareLink does (``0,55``, ``11,00``)."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if text else "0"


def make_carelink_export(days: int = 90, seed: int = 1) -> bytes:
    """A generation-B 780G export of ``days`` days ending 2025-11-05 00:00 (UTF-8 with BOM)."""
    rng = random.Random(seed)
    end = datetime(2025, 11, 5)
    start = end - timedelta(days=days)
    pump_rows: list[tuple[datetime, dict[str, str]]] = []

    def pump(at: datetime, **cells: str) -> None:
        pump_rows.append((at, {k.replace("_", " "): v for k, v in cells.items()}))

    bolus_number = 100
    day = start
    while day < end:
        for hour, rate in BASAL_SCHEDULE:
            at = day + timedelta(hours=hour)
            for _ in range(2):  # CareLink writes each basal rate row twice
                pump(at, **{"Basal Rate (U/h)": _num(rate)})
        for meal_hour in (7.5, 12.5, 19.0):
            at = day + timedelta(
                hours=meal_hour, minutes=rng.randint(-40, 40), seconds=rng.randint(0, 59)
            )
            carbs = rng.choice([20, 30, 40, 45, 50, 60, 70])
            bg = rng.randint(80, 220)
            food = round(carbs / 9.5 / 0.025) * 0.025
            correction = round(max(0.0, (bg - 120) / 45) / 0.025) * 0.025
            total = round(food + correction, 3)
            bolus_number += 1
            wizard = {
                "BWZ Estimate (U)": _num(total), "BWZ Target High BG (mg/dL)": "120",
                "BWZ Target Low BG (mg/dL)": "100", "BWZ Carb Ratio (g/U)": "9,50",
                "BWZ Insulin Sensitivity (mg/dL/U)": "45", "BWZ Carb Input (grams)": f"{carbs},00",
                "BWZ BG/SG Input (mg/dL)": str(bg), "BWZ Correction Estimate (U)": _num(correction),
                "BWZ Food Estimate (U)": _num(food), "BWZ Active Insulin (U)": _num(rng.random()),
                "BWZ Status": "Delivered",
            }  # fmt: skip
            pump(at, **wizard)
            common = {"Bolus Type": "Normal", "Bolus Number": str(bolus_number),
                      "Bolus Source": "CLOSED_LOOP_BG_CORRECTION_AND_FOOD_BOLUS"}  # fmt: skip
            pump(at + timedelta(seconds=1), **common, **{"Bolus Volume Selected (U)": _num(total)})
            done = at + timedelta(seconds=1 + int(total * 40))
            pump(
                done,
                **common,
                **{
                    "Bolus Volume Selected (U)": _num(total),
                    "Bolus Volume Delivered (U)": _num(total),
                },
            )
        if rng.random() < 0.6:  # an auto correction
            at = day + timedelta(hours=rng.uniform(9, 23))
            bolus_number += 1
            amount = round(rng.uniform(0.3, 2.0) / 0.025) * 0.025
            common = {
                "Bolus Type": "Normal",
                "Bolus Number": str(bolus_number),
                "Bolus Source": "CLOSED_LOOP_BG_CORRECTION",
            }
            pump(at, **common, **{"Bolus Volume Selected (U)": _num(amount)})
            pump(
                at + timedelta(seconds=60),
                **common,
                **{
                    "Bolus Volume Selected (U)": _num(amount),
                    "Bolus Volume Delivered (U)": _num(amount),
                },
            )
        for _ in range(rng.randint(1, 3)):  # linked meter: received, accepted, sent for calibration
            at = day + timedelta(hours=rng.uniform(6, 22))
            bg = str(rng.randint(60, 250))
            pump(
                at,
                **{
                    "BG Source": "BG_READIN_RECEIVED",
                    "BG Reading (mg/dL)": bg,
                    "Linked BG Meter ID": METER,
                },
            )
            later = at + timedelta(seconds=4)
            pump(
                later,
                **{
                    "BG Source": "USER_ACCEPTED_REMOTE_BG",
                    "BG Reading (mg/dL)": bg,
                    "Linked BG Meter ID": METER,
                },
            )
            pump(
                later,
                **{
                    "BG Source": "BG_SENT_FOR_CALIB",
                    "BG Reading (mg/dL)": bg,
                    "Linked BG Meter ID": METER,
                },
            )
            pump(later + timedelta(seconds=14), **{"Sensor Calibration BG (mg/dL)": bg})
        for _ in range(rng.randint(0, 4)):
            at = day + timedelta(hours=rng.uniform(0, 24))
            pump(at, Alert="ALERT ON HIGH: tone and vibration")
            pump(at + timedelta(minutes=2), **{"User Cleared Alerts": "ALERT ON HIGH"})
        if (day - start).days % 3 == 0:  # set change
            at = day + timedelta(hours=18, minutes=rng.randint(0, 59))
            pump(at, Suspend="NOTSEATED_SUSPEND")
            pump(at + timedelta(seconds=30), Rewind="Rewind")
            fill = {
                "Prime Type": "Tubing Fill",
                "Prime Volume Delivered (U)": _num(rng.uniform(8, 12), 4),
                "Estimated Reservoir Volume after Fill (U)": _num(rng.uniform(180, 250)),
            }
            pump(at + timedelta(minutes=2), **fill)
            pump(
                at + timedelta(minutes=3),
                **{"Prime Type": "Cannula Fill", "Prime Volume Delivered (U)": "0,3"},
            )
            pump(at + timedelta(minutes=3), Suspend="NORMAL_PUMPING")
        day += timedelta(days=1)

    sensor_rows: list[tuple[datetime, dict[str, str]]] = []
    at = start + timedelta(seconds=7)
    phase = rng.uniform(0, 6.28)
    while at < end:
        hours = (at - start).total_seconds() / 3600
        sg = 140 + 45 * math.sin(hours / 3.7 + phase) + 20 * math.sin(hours / 1.3) + rng.gauss(0, 6)
        sg = int(min(400, max(40, sg)))
        sensor_rows.append(
            (
                at,
                {
                    "Sensor Glucose (mg/dL)": str(sg),
                    "ISIG Value": _num(sg / 6.2 + rng.gauss(0, 0.3), 2),
                },
            )
        )
        at += timedelta(seconds=300 + rng.choice((-1, 0, 0, 1)))
    aggregate_rows = [
        (
            start + timedelta(days=d),
            {
                "Bolus Type": "Normal",
                "Bolus Volume Selected (U)": _num(t),
                "Bolus Volume Delivered (U)": _num(t),
                "Bolus Source": "CLOSED_LOOP_AUTO_INSULIN",
            },
        )
        for d in range(days)
        for t in [round(rng.uniform(8, 16), 3)]
    ]

    out = io.StringIO()
    out.write("\ufeff")
    out.write(
        "Last Name;First Name;Patient ID;System ID;Start Date;End Date;Device;"
        f"{MODEL};Hardware Version;A2.01;Firmware Version;8.13.2\r\n"
    )
    out.write(
        f'"Synthetic";"Patient";"";"";"{start:%d/%m/%Y} 00:00:00";'
        f'"{end:%d/%m/%Y} 00:00:00";"Serial Number";{SERIAL};Software Version;\r\n'
    )
    out.write(
        "Patient DOB;;;;;;CGM;Guardian™ 4 Sensor\r\n"
        "Device data shown may exceed selected date range.\r\n\r\n"
    )
    index = 0
    for tail, part, rows in (
        ("------- ", "Pump", pump_rows),
        ("Aggregated Auto Insulin Data ", "Pump", aggregate_rows),
        ("------- ", "Sensor", sensor_rows),
    ):
        out.write(f"-------;{MODEL};{part};{SERIAL};{tail}\r\n")
        out.write(";".join(COLUMNS) + "\r\n")
        for when, cells in sorted(rows, key=lambda r: r[0], reverse=True):
            line = [""] * len(COLUMNS)
            line[0] = f"{index},00000"
            line[1] = f"{when:%Y/%m/%d}"
            line[2] = f"{when:%H:%M:%S}"
            for name, value in cells.items():
                line[POS[name]] = value
            out.write(";".join(line) + "\r\n")
            index += 1
        out.write("\r\n")
    return out.getvalue().encode("utf-8")


def main() -> None:
    """Print the median parse time for 90 days, a bare csv.reader pass and their ratio."""
    from clinic_portal.upload_station.importers import parse_file

    data = make_carelink_export(90)
    text = data.decode("utf-8-sig")
    now = datetime(2026, 1, 1)
    parse_times, csv_times = [], []
    batch = None
    for _ in range(5):
        t0 = time.perf_counter()
        batch = parse_file(data, tz="Europe/Brussels", now=now)
        parse_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for _row in csv.reader(text.splitlines(), delimiter=";"):
            pass
        csv_times.append(time.perf_counter() - t0)
    assert batch is not None
    parse_s, csv_s = statistics.median(parse_times), statistics.median(csv_times)
    print(f"file: {len(data):,} bytes, {text.count(chr(10)):,} lines; records: {batch.counts()}")
    print(f"parse_file (median of 5): {parse_s * 1000:.1f} ms")
    print(f"csv.reader (median of 5): {csv_s * 1000:.1f} ms")
    print(f"ratio: {parse_s / csv_s:.1f}x")


if __name__ == "__main__":
    main()
