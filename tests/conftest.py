"""Shared fixtures: the app on SQLite or PostgreSQL, factories, and a guard on the network.

The database under test is chosen by ``TEST_DATABASE_URL``: unset means a SQLite file per test
session; a ``postgresql+psycopg://`` URL names a server on which a fresh database is created for
the session (and dropped afterwards). The schema is built by the real migrations.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from email import parser as email_parser
from email import policy as email_policy
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, SQLModel

from clinic_portal import create_app
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.auth.passwords import hash_password
from clinic_portal.cli import alembic_config
from clinic_portal.patients.models import Patient, PatientTag

TEST_PASSWORD = "correct-horse-battery-staple"
_HASH: str | None = None


def password_hash() -> str:
    """One argon2 hash of TEST_PASSWORD per session (hashing costs ~0.1 s each)."""
    global _HASH
    if _HASH is None:
        _HASH = hash_password(TEST_PASSWORD)
    return _HASH


# --- the network: only loopback --------------------------------------------------------------
_real_create_connection = socket.create_connection
_real_connect = socket.socket.connect


def _is_loopback(address: Any) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, bytes):
        host = host.decode()
    return isinstance(host, str) and (
        host in {"localhost", "::1"} or host.startswith("127.") or host.startswith("/")
    )


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly on any connection that would leave the machine (SMTP, HTTP, ...)."""

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise RuntimeError(f"test tried to reach {address!r}: only loopback is allowed")
        return _real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


# --- the database ----------------------------------------------------------------------------
def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        path = tmp_path_factory.mktemp("db") / "test.sqlite"
        yield f"sqlite:///{path}"
        return
    name = f"clinic_portal_test_{_worker()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def migrated(database_url: str) -> str:
    command.upgrade(alembic_config(database_url), "head")
    return database_url


def _empty_tables(engine: sa.Engine) -> None:
    tables = [t for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def app(migrated: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": migrated,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-000",
            "WTF_CSRF_ENABLED": False,
            # Mails written in development mode, caches: under the test's own directory.
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )
    yield app
    engine = app.extensions["db_engine"]
    _empty_tables(engine)
    engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session for arranging and checking data, outside any request."""
    with Session(app.extensions["db_engine"], expire_on_commit=False) as session:
        yield session


# --- factories -------------------------------------------------------------------------------
@pytest.fixture
def make_clinic(db: Session) -> Callable[..., Clinic]:
    def make(name: str = "Riverside Diabetes Clinic", **fields: Any) -> Clinic:
        clinic = Clinic(name=name, **fields)
        db.add(clinic)
        db.commit()
        return clinic

    return make


@pytest.fixture
def make_user(db: Session) -> Callable[..., User]:
    def make(
        clinic: Clinic | None, role: Role = Role.CLINICIAN, email: str | None = None, **fields: Any
    ) -> User:
        user = User(
            clinic_id=clinic.id if clinic and role != Role.PATIENT else None,
            email=email or f"{role.value}-{uuid.uuid4().hex[:8]}@example.org",
            name=fields.pop("name", f"Test {role.label}"),
            role=role,
            password_hash=password_hash(),
            **fields,
        )
        db.add(user)
        db.commit()
        return user

    return make


@pytest.fixture
def make_patient(db: Session) -> Callable[..., Patient]:
    counter = iter(range(1, 1_000_000))

    def make(
        clinic: Clinic,
        first_name: str = "Ada",
        last_name: str | None = None,
        tags: tuple[str, ...] = (),
        **fields: Any,
    ) -> Patient:
        n = next(counter)
        last = last_name or f"Lovelace{n}"
        patient = Patient(
            clinic_id=clinic.id,
            first_name=first_name,
            last_name=last,
            search_name=f"{first_name} {last}".lower(),
            date_of_birth=fields.pop("date_of_birth", date(1980, 1, 1 + n % 28)),
            mrn=fields.pop("mrn", f"MRN-{n:05d}"),
            **fields,
        )
        db.add(patient)
        db.commit()
        for tag in tags:
            db.add(PatientTag(patient_id=patient.id, name=tag))
        db.commit()
        return patient

    return make


def latest_sign_in_code(app: Flask, email: str) -> str:
    """The 6-digit code of the newest mail to ``email``: from the test's SMTP server when the app
    sends to one (``tests/auth/mailbox.py``), else from the files development mode writes."""
    if "test_mailbox" in app.extensions:
        return str(app.extensions["test_mailbox"].code(email))
    folder = Path(app.config.get("MAIL_DIR") or Path(app.instance_path) / "mail")
    mails = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    for path in reversed(mails):
        message = email_parser.BytesParser(policy=email_policy.default).parsebytes(
            path.read_bytes()
        )
        if str(message["To"]) == email:
            body = message.get_body(preferencelist=("plain",))
            match = re.search(r"^\s*(\d{6})\s*$", body.get_content() if body else "", re.M)
            if match:
                return match.group(1)
    raise AssertionError(f"no sign-in code mailed to {email} in {folder}")


def login(client: FlaskClient, user: User, password: str = TEST_PASSWORD) -> Any:
    """Sign ``user`` in through the real login form (and the e-mailed code when it is asked)."""
    response = client.post("/login", data={"email": user.email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    if response.headers["Location"].endswith("/login/verify"):
        code = latest_sign_in_code(client.application, user.email)
        response = client.post("/login/verify", data={"code": code})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response
