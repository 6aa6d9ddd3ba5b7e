"""Import benchmark: a 90-day CareLink export parsed and stored on SQLite and PostgreSQL.

For each engine (a fresh scratch database per run, migrated with Alembic) the script times:

* first import: ``import_file`` = parse + ingest into an empty database, one commit
  (target <= 1.0 s);
* re-import: the same file again, which stores nothing ("No new data"; target <= 0.5 s);

and, in the same run, a bare ``csv.reader`` pass over the file's text as the floor. Medians of
``--runs`` runs; ratios are to the floor.

Usage: python bench/imports.py [--days 90] [--runs 5] [--pg URL | --no-pg]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from sqlmodel import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from carelink_synth import make_carelink_export

from clinic_portal.auth.models import Clinic
from clinic_portal.cli import alembic_config
from clinic_portal.db import make_engine
from clinic_portal.patients.models import Patient
from clinic_portal.upload_station.services import NO_NEW_DATA, import_file

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 1, 1)


@contextmanager
def scratch_database(kind: str, pg_url: str) -> Iterator[str]:
    """A migrated, empty database that is removed afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'imports.sqlite'}"
            command.upgrade(alembic_config(url), "head")
            yield url
        return
    name = f"bench_imports_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        command.upgrade(alembic_config(url), "head")
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def one_run(url: str, data: bytes) -> tuple[float, float, int]:
    """(first import s, re-import s, records stored) on a fresh patient."""
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        clinic = Clinic(name=f"Bench {uuid.uuid4().hex[:6]}", time_zone="Europe/Brussels")
        session.add(clinic)
        session.flush()
        patient = Patient(
            clinic_id=clinic.id,  # type: ignore[arg-type]
            first_name="Bench",
            last_name="Patient",
            search_name="bench patient",
            date_of_birth=datetime(1980, 1, 1).date(),
            time_zone="Europe/Brussels",
        )
        session.add(patient)
        session.commit()
    timings = []
    stored = 0
    for attempt in range(2):
        with Session(engine, expire_on_commit=False) as session:
            started = time.perf_counter()
            upload = import_file(
                session,
                data,
                filename="carelink.csv",
                clinic=session.get(Clinic, clinic.id),  # type: ignore[arg-type]
                actor=None,
                patient=session.get(Patient, patient.id),
                now=NOW,
            )
            session.commit()
            timings.append(time.perf_counter() - started)
            if attempt == 0:
                stored = upload.new_count
            else:
                assert upload.new_count == 0, NO_NEW_DATA
    engine.dispose()
    return timings[0], timings[1], stored


def csv_floor(data: bytes) -> float:
    started = time.perf_counter()
    text = data.decode("utf-8-sig")
    for _row in csv.reader(text.splitlines(), delimiter=";"):
        pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()

    data = make_carelink_export(args.days)
    lines = data.count(b"\n")
    floor = statistics.median(csv_floor(data) for _ in range(max(args.runs, 5)))
    engines = ["sqlite"] + ([] if args.no_pg else ["postgresql"])
    results: dict[str, tuple[float, float]] = {}
    stored = 0
    for kind in engines:
        firsts, agains = [], []
        with scratch_database(kind, args.pg) as url:
            one_run(url, data)  # warm-up: imports, caches, connection setup
            for _ in range(args.runs):
                first, again, stored = one_run(url, data)
                firsts.append(first)
                agains.append(again)
        results[kind] = (statistics.median(firsts), statistics.median(agains))

    print(
        f"CareLink export, {args.days} days: {len(data):,} bytes, {lines:,} lines, "
        f"{stored:,} records stored; median of {args.runs} runs"
    )
    print(f"{'':34}{'seconds':>10}{'x csv floor':>14}{'target':>10}")
    print(f"{'csv.reader pass (floor)':34}{floor:10.3f}{1.0:14.1f}{'':>10}")
    for kind, (first, again) in results.items():
        label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        for name, value, target in (
            ("parse + ingest", first, "<= 1.0"),
            ("re-import (no new data)", again, "<= 0.5"),
        ):
            print(f"{label + ': ' + name:34}{value:10.3f}{value / floor:14.1f}{target:>10}")


if __name__ == "__main__":
    main()
