"""The scheduler process: ``flask scheduler run`` (APScheduler 3, a BlockingScheduler).

Exactly one process runs the jobs; web workers never start a scheduler (with several gunicorn
workers every job would run once per worker, shared/reference/stack.md §6 and §10). A lock makes
a second ``flask scheduler run`` refuse to start: a PostgreSQL advisory lock (works across hosts),
or a lock file in the instance folder for SQLite.

Jobs are kept in an APScheduler SQLAlchemy job store in the app's database (table
``apscheduler_jobs``, excluded from Alembic in ``migrations/env.py``), so a restart keeps their
next run times and a nightly run missed while the process was down runs once on start (within
its misfire grace time). Every job is :func:`run_job` with the dotted path of a task that takes
the app; the store holds only that string, never the app.

``flask scheduler run --once`` runs every job once through a scheduler with an in-memory store
and exits (for cron and tests); it leaves the persistent schedule alone.
"""

from __future__ import annotations

import fcntl
import importlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click
import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask, current_app
from flask.cli import AppGroup

from clinic_portal.db import get_engine

log = logging.getLogger(__name__)

scheduler_cli = AppGroup("scheduler", help="Background jobs (run in exactly one process).")

# pg_try_advisory_lock key: any constant unique to this application ("clinic_p" in ASCII).
_PG_LOCK_KEY = 0x636C696E69635F70
_APP: Flask | None = None  # the app the jobs of this process run against (one per process)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job: its stable id, the task's dotted path and when it runs."""

    id: str
    task: str  # "module:function", called with the app
    trigger: BaseTrigger
    misfire_grace_time: int  # s a late run may still start (e.g. after a restart)


def job_specs(app: Flask) -> list[JobSpec]:
    """The portal's jobs. Settings: ``SUMMARY_REFRESH_MINUTES`` (default 5) and
    ``NIGHTLY_REFRESH_HOUR`` (default 3, in the clinic default time zone)."""
    minutes = int(app.config.get("SUMMARY_REFRESH_MINUTES", 5))
    hour = int(app.config.get("NIGHTLY_REFRESH_HOUR", 3))
    zone = app.config.get("DEFAULT_TIME_ZONE") or "UTC"
    return [
        JobSpec(
            "analytics.refresh_stale",
            "clinic_portal.analytics.tasks:refresh_stale_summaries",
            IntervalTrigger(minutes=minutes, timezone=UTC),
            misfire_grace_time=60 * minutes,
        ),
        JobSpec(
            "analytics.refresh_all",
            "clinic_portal.analytics.tasks:refresh_all_summaries",
            CronTrigger(hour=hour, minute=15, timezone=zone),
            misfire_grace_time=6 * 3600,
        ),
    ]


def run_job(task: str) -> Any:
    """The function every stored job calls: resolve ``task`` and call it with the app.

    Raises:
        RuntimeError: no app is bound (only :func:`build_scheduler` binds one).
    """
    if _APP is None:
        raise RuntimeError("no app bound: jobs run in `flask scheduler run`")
    module, _, name = task.partition(":")
    function: Callable[[Flask], Any] = getattr(importlib.import_module(module), name)
    return function(_APP)


def build_scheduler(
    app: Flask,
    scheduler_class: type[BaseScheduler] = BlockingScheduler,
    jobstore: BaseJobStore | None = None,
) -> BaseScheduler:
    """A scheduler bound to ``app`` with the portal's jobs (not started).

    The job store defaults to the app's database. One worker thread: jobs never overlap, so a
    nightly refresh and a stale refresh do not write the same rows at once.
    """
    global _APP
    _APP = app
    scheduler = scheduler_class(
        jobstores={"default": jobstore or SQLAlchemyJobStore(engine=get_engine(app))},
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    for spec in job_specs(app):
        scheduler.add_job(
            run_job,
            trigger=spec.trigger,
            args=[spec.task],
            id=spec.id,
            name=spec.task,
            replace_existing=True,
            misfire_grace_time=spec.misfire_grace_time,
        )
    return scheduler


class SchedulerRunning(RuntimeError):
    """Another scheduler process holds the lock."""


@contextmanager
def single_scheduler(app: Flask) -> Iterator[None]:
    """Hold the one-scheduler lock while the block runs.

    Raises:
        SchedulerRunning: another process holds it.
    """
    engine = get_engine(app)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = {"key": _PG_LOCK_KEY}
            if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
                raise SchedulerRunning("another scheduler holds the database's advisory lock")
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), key)
        return
    path = Path(app.instance_path) / "scheduler.lock"
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SchedulerRunning(f"another scheduler holds {path}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_once(app: Flask) -> dict[str, tuple[Any, BaseException | None]]:
    """Run every job once now through a real scheduler (in-memory store), then stop.

    Returns:
        job id -> (return value, exception or None).
    """
    scheduler = build_scheduler(app, BlockingScheduler, MemoryJobStore())
    specs = job_specs(app)
    results: dict[str, tuple[Any, BaseException | None]] = {}
    lock = threading.Lock()

    def finished(event: JobExecutionEvent) -> None:
        with lock:
            results[event.job_id] = (event.retval, event.exception)
            if len(results) == len(specs):
                scheduler.shutdown(wait=False)

    scheduler.add_listener(finished, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    now = datetime.now(UTC)
    for spec in specs:
        scheduler.modify_job(spec.id, next_run_time=now)
    scheduler.start()  # returns once the listener has shut it down
    return results


def _stop_on_sigterm(scheduler: BaseScheduler) -> None:
    def stop(_signum: int, _frame: FrameType | None) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)


@scheduler_cli.command("run")
@click.option("--once", is_flag=True, help="Run every job once now, then exit (cron, tests).")
def run_command(once: bool) -> None:
    """Run the portal's scheduled jobs (summary refresh every few minutes, nightly refresh)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if once:
        failed = []
        for job_id, (value, error) in sorted(run_once(app).items()):
            click.echo(f"{job_id}: {'failed: ' + repr(error) if error else f'ok ({value})'}")
            if error is not None:
                failed.append(job_id)
        if failed:
            raise click.ClickException(f"job(s) failed: {', '.join(failed)}")
        return
    try:
        with single_scheduler(app):
            scheduler = build_scheduler(app)
            _stop_on_sigterm(scheduler)
            for spec in job_specs(app):
                click.echo(f"scheduled {spec.id}: {spec.trigger}")
            try:
                scheduler.start()  # blocks until SIGTERM or Ctrl-C
            except KeyboardInterrupt:
                scheduler.shutdown()
    except SchedulerRunning as exc:
        raise click.ClickException(str(exc)) from exc
