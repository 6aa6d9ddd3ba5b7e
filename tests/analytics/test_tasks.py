"""Analytics jobs called directly: they commit their own work, batch by batch."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from clinic_portal.analytics import tasks
from clinic_portal.analytics.summaries import mark_stale, refresh_summaries, summaries_for
from tests.analytics.test_summaries import END, NOW, add_cgm


@pytest.fixture
def patients(db, make_clinic, make_patient):
    clinic = make_clinic()
    made = [make_patient(clinic) for _ in range(3)]
    for i, p in enumerate(made):
        add_cgm(db, p, [100.0 + 20 * i] * 288)
    return made


def fresh_rows(app, ids):
    with Session(app.extensions["db_engine"]) as other:  # what another process would see
        return summaries_for(other, ids)


def test_refresh_stale_summaries_commits_only_the_stale(app, db, patients) -> None:
    a, b, c = patients
    refresh_summaries(db, [a.id, b.id, c.id], now=NOW - 3600)
    mark_stale(db, b.id)
    db.commit()
    assert tasks.refresh_stale_summaries(app, now=NOW) == 1
    rows = fresh_rows(app, [a.id, b.id, c.id])
    assert rows[b.id].window_end == END and not rows[b.id].stale
    assert rows[a.id].window_end == rows[c.id].window_end == END - 3600
    assert tasks.refresh_stale_summaries(app, now=NOW) == 0


def test_refresh_all_summaries_covers_every_patient_in_batches(
    app, db, patients, monkeypatch
) -> None:
    monkeypatch.setattr(tasks, "REFRESH_BATCH", 2)
    assert tasks.refresh_all_summaries(app, now=NOW) == 3
    rows = fresh_rows(app, [p.id for p in patients])
    assert [round(rows[p.id].mean) for p in patients] == [100, 120, 140]
    assert all(r.window_end == END and not r.stale for r in rows.values())


def test_a_failing_batch_rolls_back_alone(app, db, patients, monkeypatch) -> None:
    monkeypatch.setattr(tasks, "REFRESH_BATCH", 1)
    real = tasks.refresh_summaries
    calls = []

    def flaky(session, ids, *, now):
        calls.append(ids)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(session, ids, now=now)

    monkeypatch.setattr(tasks, "refresh_summaries", flaky)
    with pytest.raises(RuntimeError):
        tasks.refresh_all_summaries(app, now=NOW)
    rows = fresh_rows(app, [p.id for p in patients])
    assert set(rows) == {patients[0].id}  # the first batch was committed before the failure
