"""Roster benchmark: 10,000 patients; median server time of the live-search fragment and of the
first roster page, on SQLite and PostgreSQL (target: 50 ms each).

Usage: python bench/roster.py [--patients N] [--runs R] [--pg URL | --no-pg]
The PostgreSQL server defaults to postgresql+psycopg://postgres@127.0.0.1:5432/postgres; a
scratch database is created and dropped there.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from clinic_portal import create_app
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.auth.passwords import hash_password
from clinic_portal.cli import alembic_config
from clinic_portal.demo.generator import generate_people
from clinic_portal.patients.models import Patient, PatientTag

PASSWORD = "bench-password-long"  # noqa: S105
QUERIES = ["mar", "MRN-0042", "ann", "1980-", "zz-no-match"]


def populate(url: str, n: int) -> None:
    command.upgrade(alembic_config(url), "head")
    engine = sa.create_engine(url)
    people = generate_people(n, seed=7)
    with engine.begin() as conn:
        clinic_id = conn.execute(
            sa.insert(Clinic.__table__)
            .values(
                name="Bench clinic",
                time_zone="Europe/Berlin",
                mrn_required=False,
                mrn_unique=True,
                created_at=sa.func.now(),
            )
            .returning(Clinic.__table__.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(User.__table__).values(
                clinic_id=clinic_id,
                email="bench@example.org",
                name="Bench",
                role=Role.CLINICIAN,
                password_hash=hash_password(PASSWORD),
                active=True,
                failed_logins=0,
                session_version=1,
                created_at=sa.func.now(),
            )
        )
        rows = [
            {
                "clinic_id": clinic_id,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "search_name": f"{p.first_name} {p.last_name}".lower(),
                "date_of_birth": p.date_of_birth,
                "mrn": f"MRN-{i:05d}",
                "sex": p.sex,
                "diabetes_type": p.diabetes_type,
                "time_zone": p.time_zone,
                "glucose_units": p.glucose_units,
                "target_preset": p.target_preset,
                "last_data_time": 1_763_000_000 + i * 60,
            }
            for i, p in enumerate(people)
        ]
        now = sa.func.now()
        conn.execute(sa.insert(Patient.__table__).values(created_at=now, updated_at=now), rows)
        ids = conn.execute(sa.select(Patient.__table__.c.id).order_by(Patient.__table__.c.id))
        tags = [
            {"patient_id": pid, "name": people[i].tags[0]}
            for i, (pid,) in enumerate(ids)
            if people[i].tags
        ]
        conn.execute(sa.insert(PatientTag.__table__), tags)
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def measure(url: str, runs: int) -> dict[str, float]:
    app = create_app({"DATABASE_URL": url, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "bench-" * 8})
    client = app.test_client()
    client.post("/login", data={"email": "bench@example.org", "password": PASSWORD})
    fragment = {"HX-Request": "true", "HX-Target": "roster-results"}

    def timed(path: str, headers: dict[str, str] | None = None) -> float:
        started = time.perf_counter()
        response = client.get(path, headers=headers or {})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        return elapsed * 1000

    for _ in range(3):  # warm caches and the connection pool
        timed("/patients/")
        timed("/patients/?q=mar", fragment)
    page = [timed("/patients/") for _ in range(runs)]
    search = [timed(f"/patients/?q={QUERIES[i % len(QUERIES)]}", fragment) for i in range(runs)]
    sorted_recent = [timed("/patients/?sort=recent&page=7") for _ in range(runs)]
    app.extensions["db_engine"].dispose()
    return {
        "first roster page": statistics.median(page),
        "search fragment": statistics.median(search),
        "page 7 sorted by last data": statistics.median(sorted_recent),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'roster.sqlite'}"
        populate(url, args.patients)
        results["SQLite"] = measure(url, args.runs)
    if not args.no_pg:
        name = f"bench_roster_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = sa.make_url(args.pg).set(database=name).render_as_string(hide_password=False)
            populate(url, args.patients)
            results["PostgreSQL"] = measure(url, args.runs)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(
        f"Roster, {args.patients:,} patients, median of {args.runs} requests (ms, server time "
        "through the WSGI app; target <= 50 ms)"
    )
    print(f"{'':28}" + "".join(f"{engine:>12}" for engine in results))
    for key in next(iter(results.values())):
        print(f"{key:28}" + "".join(f"{results[e][key]:12.1f}" for e in results))


if __name__ == "__main__":
    main()
