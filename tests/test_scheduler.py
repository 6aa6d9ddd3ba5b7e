"""The scheduler: the job list, `flask scheduler run --once`, one run of the real scheduler with
the database job store, the one-process lock, and no scheduler in the web app."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import Session

from clinic_portal import create_app, scheduler
from clinic_portal.analytics.summaries import mark_stale, summaries_for
from tests.analytics.test_summaries import add_cgm

JOB_IDS = {"analytics.refresh_stale", "analytics.refresh_all"}


@pytest.fixture
def stale_patient(db, make_clinic, make_patient):
    patient = make_patient(make_clinic())
    add_cgm(db, patient, [130.0] * 100, end=int(time.time()))  # the jobs use the real clock
    mark_stale(db, patient.id)
    db.commit()
    return patient


def summary_of(app, patient):
    with Session(app.extensions["db_engine"]) as session:
        return summaries_for(session, [patient.id]).get(patient.id)


def test_job_list_follows_the_settings(app) -> None:
    app.config.update(SUMMARY_REFRESH_MINUTES=2, NIGHTLY_REFRESH_HOUR=4)
    specs = {s.id: s for s in scheduler.job_specs(app)}
    assert set(specs) == JOB_IDS
    interval = specs["analytics.refresh_stale"].trigger
    assert isinstance(interval, IntervalTrigger) and interval.interval.total_seconds() == 120
    nightly = specs["analytics.refresh_all"].trigger
    assert isinstance(nightly, CronTrigger)
    assert str(nightly.timezone) == app.config["DEFAULT_TIME_ZONE"]
    assert nightly.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC)).hour == 4


def test_run_once_runs_every_job_and_exits(app, stale_patient) -> None:
    assert summary_of(app, stale_patient).stale
    result = app.test_cli_runner().invoke(args=["scheduler", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "analytics.refresh_stale: ok" in result.output
    assert "analytics.refresh_all: ok" in result.output
    row = summary_of(app, stale_patient)
    assert not row.stale and row.n_readings == 100 and row.mean == 130.0


def test_run_once_reports_a_failing_job(app, monkeypatch) -> None:
    def broken(_app):
        raise RuntimeError("boom")

    monkeypatch.setattr("clinic_portal.analytics.tasks.refresh_all_summaries", broken)
    result = app.test_cli_runner().invoke(args=["scheduler", "run", "--once"])
    assert result.exit_code == 1
    assert "analytics.refresh_all: failed" in result.output
    assert "job(s) failed: analytics.refresh_all" in result.output


def test_the_real_scheduler_runs_a_stored_job(app, stale_patient) -> None:
    """A BackgroundScheduler with the database job store, as `flask scheduler run` builds it."""
    ran = threading.Event()
    outcome = {}

    def listener(event):
        outcome[event.job_id] = event.exception
        ran.set()

    sched = scheduler.build_scheduler(app, BackgroundScheduler)
    sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    sched.start(paused=True)
    try:
        engine = app.extensions["db_engine"]
        with engine.connect() as conn:
            stored = set(conn.execute(sa.text("SELECT id FROM apscheduler_jobs")).scalars())
        assert stored == JOB_IDS
        sched.modify_job("analytics.refresh_stale", next_run_time=datetime.now(UTC))
        sched.resume()
        assert ran.wait(timeout=120), "the scheduler did not run the job"
    finally:
        sched.remove_all_jobs()
        sched.shutdown()
    assert outcome == {"analytics.refresh_stale": None}
    assert not summary_of(app, stale_patient).stale


def test_only_one_scheduler_process(app) -> None:
    with scheduler.single_scheduler(app):
        second = scheduler.single_scheduler(app)
        with pytest.raises(scheduler.SchedulerRunning):
            second.__enter__()
    with scheduler.single_scheduler(app):  # released again
        pass


def test_a_second_scheduler_run_refuses_to_start(app) -> None:
    with scheduler.single_scheduler(app):
        result = app.test_cli_runner().invoke(args=["scheduler", "run"])
    assert result.exit_code == 1 and "another scheduler" in result.output


def test_the_web_app_starts_no_scheduler(migrated, tmp_path) -> None:
    before = {t.name for t in threading.enumerate()}
    web = create_app({"DATABASE_URL": migrated, "SECRET_KEY": "x" * 40, "TESTING": True})
    web.test_client().get("/healthz")
    started = {t.name for t in threading.enumerate()} - before
    assert not any("APScheduler" in name for name in started)
    web.extensions["db_engine"].dispose()
