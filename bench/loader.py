"""Loader benchmark: ``analytics.loader.load_cgm`` for 1,000 patients x 14 days of 5-min CGM
(4.03 M readings) from SQLite and PostgreSQL, and the summary refresh that builds on it.

Prints the median of a few runs of:
* ``load_cgm``: one ordered query into the ragged numpy arrays;
* the same query through the bare DBAPI cursor into one numpy array (the floor a leaner loader
  could approach);
* ``refresh_summaries(periods=(14,))``: load + cohort metrics per preset + upsert of 1,000 rows.

Usage: python bench/loader.py [--patients N] [--days D] [--runs R] [--pg URL | --no-pg]
Scratch databases: a SQLite file in a temporary directory, and on the PostgreSQL server
(default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) a database that is created and
dropped. Rows are inserted with executemany (SQLite) or COPY (PostgreSQL).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

import clinic_portal.models  # noqa: F401 - registers every table
from clinic_portal.analytics.cli import warm_up
from clinic_portal.analytics.loader import load_cgm
from clinic_portal.analytics.models import PatientMetricsSummary
from clinic_portal.analytics.summaries import refresh_summaries
from clinic_portal.auth.models import Clinic, User
from clinic_portal.db import make_engine
from clinic_portal.patients.models import Patient
from clinic_portal.upload_station.models import CgmReadingRow, Device, Upload

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
END = 1_790_000_100  # window end, epoch s (on a 5-min boundary)
PRESETS = ("standard", "standard", "standard", "older_high_risk", "pregnancy_t1")
COLUMNS = "patient_id, device_id, time, utc_offset, glucose, flag"


def _tables() -> list[sa.Table]:
    models = (User, Clinic, Patient, Device, Upload, CgmReadingRow, PatientMetricsSummary)
    return [m.__table__ for m in models]  # type: ignore[attr-defined]


def _readings(patient_index: int, days: int) -> tuple[np.ndarray, np.ndarray]:
    """One patient's synthetic trace: a daily sine around a personal mean plus noise, mg/dL."""
    rng = np.random.default_rng(patient_index)
    times = END - 300 * np.arange(days * 288, 0, -1)
    mean = rng.uniform(120, 190)
    glucose = mean + 45 * np.sin(2 * np.pi * times / 86_400) + rng.normal(0, 22, times.size)
    return times, np.clip(np.round(glucose), 40, 400)


def populate(engine: sa.Engine, n: int, days: int) -> list[int]:
    """Patients, devices and readings; returns the patient ids."""
    SQLModel.metadata.create_all(engine, tables=_tables())
    with Session(engine) as session:
        clinic = Clinic(name="Bench clinic")
        session.add(clinic)
        session.flush()
        patients = [
            Patient(
                clinic_id=clinic.id,  # type: ignore[arg-type]
                first_name="Bench",
                last_name=f"Patient {i:05d}",
                search_name=f"bench patient {i:05d}",
                date_of_birth=date(1970 + i % 40, 1 + i % 12, 1 + i % 28),
                target_preset=PRESETS[i % len(PRESETS)],
            )
            for i in range(n)
        ]
        session.add_all(patients)
        session.flush()
        devices = [
            Device(
                clinic_id=clinic.id,  # type: ignore[arg-type]
                patient_id=p.id,
                serial=f"BENCH-{p.id}",
                manufacturer="Dexcom",
                model="G7",
                kind="cgm",
            )
            for p in patients
        ]
        session.add_all(devices)
        session.commit()
        pairs = [(int(p.id), int(d.id)) for p, d in zip(patients, devices, strict=True)]  # type: ignore[arg-type]
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for i, (pid, did) in enumerate(pairs):
            times, glucose = _readings(i, days)
            rows = [
                (pid, did, int(t), 60, float(g), "") for t, g in zip(times, glucose, strict=True)
            ]
            if engine.dialect.name == "postgresql":
                with cursor.copy(f"COPY cgm_reading ({COLUMNS}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(row)
            else:
                cursor.executemany(
                    f"INSERT INTO cgm_reading ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        raw.commit()
        if engine.dialect.name == "postgresql":
            cursor.execute("ANALYZE cgm_reading")
            raw.commit()
    finally:
        raw.close()
    return [pid for pid, _ in pairs]


def median_seconds(run: Callable[[], object], runs: int) -> float:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def load_raw(engine: sa.Engine, ids: list[int], start: int, end: int) -> np.ndarray:
    """The floor for the same query: the DBAPI cursor straight into one numpy array, with no
    SQLAlchemy rows (what a leaner loader could reach)."""
    mark = "%s" if engine.dialect.name == "postgresql" else "?"
    id_list = ",".join(str(int(i)) for i in ids)  # integers only: safe to inline
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(
            f"SELECT patient_id, time, utc_offset, glucose FROM cgm_reading "
            f"WHERE patient_id IN ({id_list}) AND time >= {mark} AND time < {mark} "
            "ORDER BY patient_id, time, id",
            (start, end),
        )
        return np.array(cursor.fetchall(), dtype=np.float64)
    finally:
        raw.close()


def measure(
    engine: sa.Engine, ids: list[int], days: int, runs: int
) -> tuple[float, float, float, int]:
    start = END - days * 86_400

    def load() -> object:
        with engine.connect() as conn:
            return load_cgm(conn, ids, start, END)

    def refresh() -> object:
        with Session(engine) as session:
            refresh_summaries(session, ids, now=END, periods=(days,), batch_size=len(ids))
            session.commit()
        return None

    data = load()
    n_rows = int(data.indptr[-1])  # type: ignore[attr-defined]
    refresh()  # first call: warms the connection and the statement caches
    return (
        median_seconds(load, runs),
        median_seconds(lambda: load_raw(engine, ids, start, END), runs),
        median_seconds(refresh, runs),
        n_rows,
    )


def run(
    patients: int, days: int, runs: int, pg_url: str | None
) -> dict[str, tuple[float, float, float, int, float]]:
    """Measure on a scratch SQLite file and (unless ``pg_url`` is None) a scratch PostgreSQL
    database: engine name -> (load_cgm s, DBAPI floor s, refresh s, rows, fill s)."""
    results: dict[str, tuple[float, float, float, int, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        t0 = time.perf_counter()
        ids = populate(engine, patients, days)
        fill = time.perf_counter() - t0
        results["SQLite"] = (*measure(engine, ids, days, runs), fill)
        engine.dispose()
    if pg_url is not None:
        name = f"clinic_portal_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
            engine = make_engine(url)
            t0 = time.perf_counter()
            ids = populate(engine, patients, days)
            fill = time.perf_counter() - t0
            results["PostgreSQL"] = (*measure(engine, ids, days, runs), fill)
            engine.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    print(f"numba kernels ready in {warm_up():.2f} s")
    results = run(args.patients, args.days, args.runs, None if args.no_pg else args.pg)
    print(
        f"\n{args.patients} patients x {args.days} days of 5-min CGM; median of {args.runs} runs\n"
    )
    print(
        f"{'':12} {'rows':>10} {'load_cgm':>10} {'rows/s':>12} {'DBAPI floor':>12} "
        f"{'refresh':>10} {'fill':>8}"
    )
    for engine_name, (load_s, raw_s, refresh_s, n_rows, fill) in results.items():
        print(
            f"{engine_name:12} {n_rows:>10,} {load_s:>9.2f}s {n_rows / load_s:>12,.0f} "
            f"{raw_s:>11.2f}s {refresh_s:>9.2f}s {fill:>7.1f}s"
        )


if __name__ == "__main__":
    main()
