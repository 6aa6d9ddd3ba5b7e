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
