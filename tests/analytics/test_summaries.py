"""The patient-metrics summary cache: refresh, presets, staleness from ingest."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from clinic_portal.analytics import api, summaries
from clinic_portal.analytics.models import PatientMetricsSummary
from clinic_portal.analytics.summaries import (
    mark_stale,
    refresh_stale,
    refresh_summaries,
    roster_summaries,
    stale_patient_ids,
    summaries_for,
)
from clinic_portal.auth.models import Clinic
from clinic_portal.patients.models import Patient
from clinic_portal.records import CgmReading, DeviceInfo, DeviceKind, RecordBatch
from clinic_portal.upload_station.ingest import ingest_batch
from clinic_portal.upload_station.models import CgmReadingRow, Device

NOW = 1_790_000_100  # 2026-09-21 14:15 UTC, on a 5-min boundary: the window ends here
END = summaries.window_end_for(NOW)
DAY = 86_400


def add_cgm(
    db: Session,
    patient: Patient,
    values: Sequence[float],
    *,
    end: int = NOW,
    step: int = 300,
    offset: int = 120,
) -> np.ndarray:
    """Store ``values`` as 5-min readings ending just before ``end``; returns their times."""
    device = Device(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        serial=f"G7-{patient.id}-{end}",
        manufacturer="Dexcom",
        model="G7",
        kind="cgm",
    )
    db.add(device)
    db.flush()
    times = end - step * np.arange(len(values), 0, -1)
    db.execute(
        CgmReadingRow.__table__.insert(),
        [
            {
                "patient_id": patient.id,
                "device_id": device.id,
                "time": int(t),
                "utc_offset": offset,
                "glucose": float(v),
                "flag": "",
            }
            for t, v in zip(times, values, strict=True)
        ],
    )
    db.commit()
    return times


def days_of(value_pattern: Sequence[float], days: int) -> list[float]:
    """A repeating pattern filling ``days`` of 5-min readings."""
    n = days * 288
    return [value_pattern[i % len(value_pattern)] for i in range(n)]


@pytest.fixture
def clinic(make_clinic) -> Clinic:
    return make_clinic()


def rows(db: Session, patient_id: int) -> dict[int, PatientMetricsSummary]:
    db.expire_all()
    found = db.exec(
        sa.select(PatientMetricsSummary).where(PatientMetricsSummary.patient_id == patient_id)
    ).scalars()
    return {r.period_days: r for r in found}


def test_refresh_stores_the_api_numbers_for_both_periods(db, clinic, make_patient) -> None:
    patient = make_patient(clinic)
    rng = np.random.default_rng(7)
    values = np.clip(150 + 55 * rng.standard_normal(20 * 288), 40, 400).round()
    times = add_cgm(db, patient, values)
    assert refresh_summaries(db, [patient.id], now=NOW) == 1
    db.commit()
    stored = rows(db, patient.id)
    assert set(stored) == {14, 90}
    for period, row in stored.items():
        start = END - period * DAY
        ref = api.cgm_metrics(
            values, times, np.full(times.size, 120), [0, times.size], start=start, end=END
        )[0]
        assert (row.window_start, row.window_end) == (start, END)
        assert row.n_readings == ref.n_readings == int(np.sum(times >= start))
        assert row.mean == pytest.approx(ref.mean)
        assert row.sd == pytest.approx(ref.sd)
        assert row.cv == pytest.approx(ref.cv)
        assert row.gmi == pytest.approx(ref.gmi)
        assert row.pct_70_180 == pytest.approx(ref.pct_70_180)
        assert row.pct_below_54 == pytest.approx(ref.pct_below_54)
        assert row.active_percent == pytest.approx(ref.active_percent)
        assert row.gri == pytest.approx(ref.gri) and row.gri_zone == ref.gri_zone
        assert row.hypo_l1_episodes == ref.hypo_l1_episodes
        assert row.hypo_l2_episodes == ref.hypo_l2_episodes
        assert row.extra["mage"] == pytest.approx(ref.mage)
        assert row.extra["hyper_l1_episodes"] == ref.hyper_l1_episodes
        assert row.last_reading_time == int(times[-1])
        assert row.stale is False
        assert row.computed_at is not None and int(row.computed_at.timestamp()) == NOW
    # 20 days of data: the 90-day window holds all of it, the 14-day one two weeks.
    assert stored[90].n_readings == 20 * 288
    assert stored[14].n_readings == 14 * 288


def test_constant_glucose_gives_the_textbook_values(db, clinic, make_patient) -> None:
    patient = make_patient(clinic)
    add_cgm(db, patient, [150.0] * (14 * 288))
    refresh_summaries(db, [patient.id], now=NOW, periods=(14,))
    row = rows(db, patient.id)[14]
    assert row.mean == 150.0 and row.sd == 0.0
    assert row.gmi == pytest.approx(3.31 + 0.02392 * 150)  # Bergenstal 2018: 6.898 %
    assert row.pct_70_180 == 100.0 and row.pct_in_target == 100.0
    assert row.gri == 0.0 and row.gri_zone == "A"
    assert row.days_with_data == 15  # 14 x 24 h ending at 16:15 local touch 15 local dates
    assert row.active_percent == 100.0
    assert row.gmi_sufficient is True


def test_the_patients_preset_decides_the_target_range(db, clinic, make_patient) -> None:
    standard = make_patient(clinic, target_preset="standard")
    pregnant = make_patient(clinic, target_preset="pregnancy_t1")
    values = days_of([65.0, 150.0], 14)
    add_cgm(db, standard, values)
    add_cgm(db, pregnant, values)
    refresh_summaries(db, [standard.id, pregnant.id], now=NOW, periods=(14,))
    a, b = rows(db, standard.id)[14], rows(db, pregnant.id)[14]
    # The consensus ranges are the same for both ...
    assert a.pct_54_69 == b.pct_54_69 == pytest.approx(50.0)
    assert a.pct_70_180 == b.pct_70_180 == pytest.approx(50.0)
    # ... the target range is 70-180 for one and 63-140 (Battelino 2019) for the other.
    assert (a.target_low, a.target_high, a.preset) == (70, 180, "standard")
    assert (b.target_low, b.target_high, b.preset) == (63, 140, "pregnancy_t1")
    assert (a.pct_below_target, a.pct_in_target, a.pct_above_target) == pytest.approx(
        (50.0, 50.0, 0.0)
    )
    assert (b.pct_below_target, b.pct_in_target, b.pct_above_target) == pytest.approx(
        (0.0, 50.0, 50.0)
    )


def test_many_patients_in_batches_match_one_by_one(db, clinic, make_patient) -> None:
    patients = [
        make_patient(clinic, target_preset=("standard", "pregnancy_t1", "older_high_risk")[i % 3])
        for i in range(7)
    ]
    rng = np.random.default_rng(3)
    for i, p in enumerate(patients):
        if i != 4:  # one patient without any readings
            add_cgm(db, p, np.clip(140 + 50 * rng.standard_normal(3 * 288), 40, 400).round())
    refresh_summaries(db, [p.id for p in patients], now=NOW, batch_size=3)
    together = {p.id: rows(db, p.id) for p in patients}
    for p in patients:
        refresh_summaries(db, [p.id], now=NOW)
        alone = rows(db, p.id)
        for period in (14, 90):
            assert together[p.id][period].pct_in_target == alone[period].pct_in_target
            assert together[p.id][period].mean == alone[period].mean
    empty = together[patients[4].id][14]
    assert empty.n_readings == 0 and empty.mean is None and empty.pct_70_180 is None
    assert empty.gri_zone is None and empty.last_reading_time is None and empty.stale is False


def test_refresh_of_all_patients_and_unknown_ids(db, clinic, make_patient) -> None:
    a, b = make_patient(clinic), make_patient(clinic)
    assert refresh_summaries(db, None, now=NOW) == 2
    assert refresh_summaries(db, [a.id, 999_999], now=NOW) == 1
    assert set(rows(db, b.id)) == {14, 90}
    with pytest.raises(ValueError):
        refresh_summaries(db, [a.id], now=NOW, periods=())


def _cgm_batch(serial: str, times: Sequence[int], value: float) -> RecordBatch:
    return RecordBatch(
        source="test",
        devices=[DeviceInfo(serial, "Dexcom", "G7", DeviceKind.CGM)],
        records=[
            CgmReading(device_serial=serial, time=int(t), utc_offset=60, glucose=value)
            for t in times
        ],
    )


def test_ingest_marks_the_summary_stale_in_its_own_transaction(db, clinic, make_patient) -> None:
    patient = make_patient(clinic)
    refresh_summaries(db, [patient.id], now=NOW)
    db.commit()
    before = rows(db, patient.id)[14]
    assert before.stale is False and before.n_readings == 0
    version = before.data_version
    times = NOW - 300 * np.arange(1, 289)
    ingest_batch(db, _cgm_batch("G7-X", times, 200.0), clinic=clinic, actor=None, patient=patient)
    # Visible inside the ingest's transaction, values untouched, version bumped ...
    flagged = rows(db, patient.id)
    assert all(r.stale for r in flagged.values())
    assert flagged[14].data_version == version + 1
    assert flagged[14].n_readings == 0
    # ... and gone with it when the upload is rolled back.
    db.rollback()
    assert not any(r.stale for r in rows(db, patient.id).values())


def test_ingest_for_a_patient_without_rows_creates_stale_ones(db, clinic, make_patient) -> None:
    patient = make_patient(clinic)
    ingest_batch(
        db, _cgm_batch("G7-Y", [NOW - 600], 120.0), clinic=clinic, actor=None, patient=patient
    )
    db.commit()
    assert stale_patient_ids(db) == [patient.id]
    assert refresh_stale(db, now=NOW) == 1
    db.commit()
    row = rows(db, patient.id)[14]
    assert row.stale is False and row.n_readings == 1 and row.mean == 120.0
    assert stale_patient_ids(db) == []


def test_refresh_stale_leaves_fresh_rows_alone(db, clinic, make_patient) -> None:
    a, b = make_patient(clinic), make_patient(clinic)
    add_cgm(db, a, [100.0] * 50)
    add_cgm(db, b, [100.0] * 50)
    refresh_summaries(db, [a.id, b.id], now=NOW)
    mark_stale(db, a.id)
    assert refresh_stale(db, now=NOW + 3600) == 1
    assert int(rows(db, a.id)[14].computed_at.timestamp()) == NOW + 3600
    assert int(rows(db, b.id)[14].computed_at.timestamp()) == NOW
    # Rows older than a cutoff count as stale when asked to.
    assert stale_patient_ids(db, older_than=END + 1) == [b.id]


def test_an_ingest_during_the_refresh_keeps_the_row_stale(
    db, clinic, make_patient, monkeypatch
) -> None:
    patient = make_patient(clinic)
    add_cgm(db, patient, [100.0] * 50)
    real_load = summaries.load_cgm

    def load_while_an_upload_lands(session, ids, start, end):
        # An upload commits between reading the versions and loading the readings.
        mark_stale(session, patient.id)
        return real_load(session, ids, start, end)

    monkeypatch.setattr(summaries, "load_cgm", load_while_an_upload_lands)
    refresh_summaries(db, [patient.id], now=NOW)
    row = rows(db, patient.id)[14]
    assert row.n_readings == 50  # values written ...
    assert row.stale is True  # ... but the flag survives for the next run
    monkeypatch.setattr(summaries, "load_cgm", real_load)
    refresh_stale(db, now=NOW)
    assert rows(db, patient.id)[14].stale is False


def test_roster_summaries_fill_in_missing_and_stale_rows(db, clinic, make_patient) -> None:
    a, b, c = make_patient(clinic), make_patient(clinic), make_patient(clinic)
    for p in (a, b, c):
        add_cgm(db, p, [160.0] * 100)
    refresh_summaries(db, [b.id, c.id], now=NOW - 600)
    mark_stale(db, b.id)
    got = roster_summaries(db, [a.id, b.id], now=NOW)
    assert set(got) == {a.id, b.id}
    assert all(not r.stale and r.window_end == END for r in got.values())
    # c was not on the page: left for the job.
    assert summaries_for(db, [c.id])[c.id].window_end == END - 600
