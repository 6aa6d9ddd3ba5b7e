"""load_cgm against a SQLite table holding the cgm_reading schema."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from clinic_portal.analytics import api
from clinic_portal.analytics.loader import load_cgm
from clinic_portal.upload_station.models import CgmReadingRow


@pytest.fixture
def engine():
    engine = sa.create_engine("sqlite://")
    CgmReadingRow.__table__.create(engine)
    rows = [
        # patient, device, time, offset, glucose (inserted out of order on purpose)
        (2, 3, 700, 60, 150.0),
        (2, 3, 100, 60, 140.0),
        (1, 1, 400, 0, 90.0),
        (1, 1, 100, 0, 80.0),
        (1, 2, 100, 0, 85.0),
        (3, 4, 100, 0, 99.0),
        (1, 1, 9999, 0, 1.0),
    ]
    with engine.begin() as conn:
        conn.execute(
            CgmReadingRow.__table__.insert(),
            [
                {
                    "patient_id": p,
                    "device_id": d,
                    "time": t,
                    "utc_offset": o,
                    "glucose": g,
                    "flag": "",
                }
                for p, d, t, o, g in rows
            ],
        )
    return engine


def test_one_query_in_patient_time_order(engine):
    with Session(engine) as session:
        data = load_cgm(session, [2, 1, 4], 0, 1000)
    assert list(data.patient_ids) == [1, 2, 4]
    assert list(data.indptr) == [0, 3, 5, 5]
    assert list(data.times) == [100, 100, 400, 100, 700]
    assert list(data.values) == [80.0, 85.0, 90.0, 140.0, 150.0]
    assert list(data.utc_offsets) == [0, 0, 0, 60, 60]
    assert data.times.dtype == np.int64 and data.values.dtype == np.float64
    # feeds the API directly; the second device's reading at the same time is dropped
    m = api.cgm_metrics(data.values, data.times, data.utc_offsets, data.indptr, start=0, end=1000)
    assert [x.n_readings for x in m] == [2, 2, 0]


def test_connection_and_empty_result(engine):
    with engine.connect() as conn:
        data = load_cgm(conn, [5], 0, 1000)
    assert list(data.indptr) == [0, 0] and data.values.size == 0


def test_loader_on_the_suite_database(db, make_clinic, make_patient):
    """The same contract on the engine the suite runs on (PostgreSQL takes the binary COPY
    path): readings stored by the ingest service come back in patient-major time order."""
    from clinic_portal.records import CgmReading, DeviceInfo, DeviceKind, RecordBatch
    from clinic_portal.upload_station.ingest import ingest_batch

    clinic = make_clinic()
    patients = [make_patient(clinic) for _ in range(3)]
    t0 = 1_700_000_000
    for n, patient in enumerate(patients[:2]):
        serial = f"CGM-{n}"
        batch = RecordBatch(
            source="test",
            devices=[DeviceInfo(serial, "Dexcom", "G7", DeviceKind.CGM)],
            records=[
                CgmReading(
                    device_serial=serial,
                    time=t0 + 300 * i,
                    utc_offset=60 * n,
                    glucose=100.0 + n * 50 + i / 2,
                )
                for i in reversed(range(600))
            ],
        )
        ingest_batch(db, batch, clinic=clinic, actor=None, patient=patient)
    db.commit()
    ids = [p.id for p in patients]
    data = load_cgm(db, list(reversed(ids)), t0 + 300 * 10, t0 + 300 * 590)
    assert list(data.patient_ids) == sorted(ids)
    assert list(data.indptr) == [0, 580, 1160, 1160]
    assert data.times[0] == t0 + 3000 and data.times[579] == t0 + 300 * 589
    assert (np.diff(data.times[:580]) == 300).all()
    assert data.values[580] == 155.0 and data.values[-1] == 150.0 + 589 / 2
    assert set(data.utc_offsets[:580]) == {0} and set(data.utc_offsets[580:]) == {60}
    assert load_cgm(db, [], 0, 1).values.size == 0
