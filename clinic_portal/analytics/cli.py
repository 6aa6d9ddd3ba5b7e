"""``flask analytics ...``: CGM metrics from an iglu-style CSV, and kernel warm-up.

``flask analytics compute INPUT.csv [--tz ZONE] [--start ISO --end ISO]`` prints one JSON object
keyed by patient id. Without --start/--end the window is whole local days (in --tz) from the
midnight before the first reading to the midnight after the last one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import numpy as np
import numpy.typing as npt
from flask.cli import AppGroup

from clinic_portal.analytics import api

analytics_cli = AppGroup("analytics", help="CGM analytics (numba kernels).")


@dataclass(frozen=True, slots=True)
class LongCgm:
    """Readings of a long CSV grouped by patient, in the layout ``api`` takes."""

    patient_ids: list[str]
    values: npt.NDArray[np.float64]  # mg/dL
    times: npt.NDArray[np.int64]  # epoch s UTC
    utc_offsets: npt.NDArray[np.int64]  # minutes
    indptr: npt.NDArray[np.int64]


class CsvError(ValueError):
    """A malformed CSV; the message names the line."""


def _parse_time(text: str, zone: ZoneInfo, line: int) -> tuple[int, int]:
    try:
        stamp = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CsvError(f"line {line}: time {text!r} is not ISO 8601") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=zone)  # naive times are local wall-clock time in --tz
    offset = stamp.utcoffset() or timedelta(0)
    return int(stamp.timestamp()), int(offset.total_seconds() // 60)


def read_long_csv(text: str, tz: str = "UTC") -> LongCgm:
    """Parse iglu's long format ``id,time,gl`` (glucose mg/dL, ISO 8601 times).

    Naive times are local times in ``tz``; times with an offset keep it as the local offset.
    Rows may come in any order and repeat (the API sorts and de-duplicates); a missing glucose
    ("", "NA") is a missing reading.

    Raises:
        CsvError: unknown time zone, missing column, or an unparsable time or glucose (the
            message gives the line number).
    """
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CsvError(f"unknown time zone {tz!r}") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = {"id", "time", "gl"} - set(reader.fieldnames or ())
    if missing:
        raise CsvError(f"line 1: missing column(s) {', '.join(sorted(missing))}")
    rows: dict[str, list[tuple[int, float, int]]] = {}
    for row in reader:
        line = reader.line_num
        pid, raw_time, raw_gl = row["id"], row["time"], row["gl"]
        if pid is None or raw_time is None or raw_gl is None:
            raise CsvError(f"line {line}: expected the columns id, time, gl")
        t, offset = _parse_time(raw_time, zone, line)
        if raw_gl.strip() in ("", "NA", "NaN"):
            glucose = math.nan
        else:
            try:
                glucose = float(raw_gl)
            except ValueError:
                raise CsvError(f"line {line}: glucose {raw_gl!r} is not a number") from None
            if not math.isfinite(glucose) or glucose <= 0:
                raise CsvError(f"line {line}: glucose {raw_gl!r} is not a positive mg/dL value")
        rows.setdefault(pid.strip(), []).append((t, glucose, offset))
    ids = list(rows)
    flat = [r for pid in ids for r in rows[pid]]
    indptr = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum([len(rows[pid]) for pid in ids], out=indptr[1:])
    return LongCgm(
        patient_ids=ids,
        values=np.array([r[1] for r in flat], dtype=np.float64),
        times=np.array([r[0] for r in flat], dtype=np.int64),
        utc_offsets=np.array([r[2] for r in flat], dtype=np.int64),
        indptr=indptr,
    )


def default_window(data: LongCgm, tz: str) -> tuple[int, int]:
    """Whole local days in ``tz``: midnight before the first reading to midnight after the last."""
    zone = ZoneInfo(tz)
    valid = data.times[~np.isnan(data.values)]
    if valid.size == 0:
        raise CsvError("no glucose readings in the file")
    first = datetime.fromtimestamp(int(valid.min()), zone)
    last = datetime.fromtimestamp(int(valid.max()), zone)
    start = datetime(first.year, first.month, first.day, tzinfo=zone)
    end = datetime(last.year, last.month, last.day, tzinfo=zone) + timedelta(days=1)
    return int(start.timestamp()), int(end.timestamp())


def _json_number(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)


# The published contract of ``flask analytics compute``: exactly these metrics (a selection of
# ``api.SCALAR_METRICS``, in its order) and ``agp``; researchers' scripts read them by name.
CLI_METRICS: tuple[str, ...] = tuple(
    key
    for key in api.SCALAR_METRICS
    if key
    not in {
        "n_readings",
        "gmi_sufficient",
        "pct_below_target",
        "pct_in_target",
        "pct_above_target",
        "gri_zone",
        "gri_hypo",
        "gri_hyper",
        "hyper_extended_episodes",
    }
)


def metrics_json(m: api.CgmMetrics) -> dict[str, object]:
    """The CLI's JSON object of one patient: :data:`CLI_METRICS` (NaN as null) and the AGP."""
    out: dict[str, object] = {
        key: _json_number(value) if isinstance(value, float) else value
        for key in CLI_METRICS
        for value in (getattr(m, key),)
    }
    out["agp"] = {
        name: [_json_number(x) for x in getattr(m.agp, name)]
        for name in ("p05", "p25", "p50", "p75", "p95")
    }
    return out


def _epoch(text: str, tz: str, option: str) -> int:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not ISO 8601", param_hint=option) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=ZoneInfo(tz))
    return int(stamp.timestamp())


@analytics_cli.command("compute")
@click.argument("input_csv", type=click.File("r", encoding="utf-8-sig"))
@click.option("--tz", default="UTC", show_default=True, help="IANA zone of naive times.")
@click.option("--start", help="Window start, ISO 8601 (naive = local in --tz).")
@click.option("--end", help="Window end (exclusive), ISO 8601.")
def compute_command(input_csv: io.TextIOBase, tz: str, start: str | None, end: str | None) -> None:
    """Print CGM metrics of every patient in INPUT_CSV (columns id,time,gl; mg/dL) as JSON."""
    if (start is None) != (end is None):
        raise click.UsageError("give both --start and --end, or neither")
    try:
        data = read_long_csv(input_csv.read(), tz)
        if start is not None and end is not None:
            window = (_epoch(start, tz, "--start"), _epoch(end, tz, "--end"))
        else:
            window = default_window(data, tz)
        results = api.cgm_metrics(
            data.values, data.times, data.utc_offsets, data.indptr, start=window[0], end=window[1]
        )
    except (CsvError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps({pid: metrics_json(m) for pid, m in zip(data.patient_ids, results, strict=True)})
    )


def warm_up() -> float:
    """Compile (or load from NUMBA_CACHE_DIR) every kernel on tiny inputs; returns seconds."""
    t0 = time.perf_counter()
    times = 1_704_067_200 + np.arange(40, dtype=np.int64) * 300
    values = np.concatenate([np.full(20, 60.0), np.full(20, 300.5)])
    api.cgm_metrics(
        values,
        times,
        np.zeros(40, np.int64),
        np.array([0, 40]),
        start=int(times[0]),
        end=int(times[-1]) + 300,
    )
    return time.perf_counter() - t0


@analytics_cli.command("warmup")
def warmup_command() -> None:
    """Compile the analytics kernels now rather than on the first request."""
    click.echo(f"analytics kernels ready in {warm_up():.2f} s")
