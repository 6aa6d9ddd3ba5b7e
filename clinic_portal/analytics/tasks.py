"""Analytics jobs: keep the patient-metrics summary cache fresh.

Each job takes the app, works inside an app context with its own session (``job_session``) and
commits once per batch of :data:`~clinic_portal.analytics.summaries.REFRESH_BATCH` patients. The
usual run (a few stale patients after some uploads) is one batch and one commit; a nightly
refresh of thousands of patients commits batch by batch, because one long transaction would hold
SQLite's single write lock (uploads would fail with "database is locked" after the 30 s busy
timeout) and, on PostgreSQL, the summary rows an upload's ``mark_stale`` must update. A failed
batch rolls back alone; its rows stay stale and the next run retries them.

The scheduler process (``clinic_portal/scheduler.py``) runs these; they can also be called
directly (tests, ``flask scheduler run --once`` from cron).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Flask
from sqlmodel import Session

from clinic_portal.analytics.summaries import (
    REFRESH_BATCH,
    all_patient_ids,
    refresh_summaries,
    stale_patient_ids,
)
from clinic_portal.db import job_session

log = logging.getLogger(__name__)


def _refresh_in_batches(app: Flask, find: Callable[[Session], list[int]], now: int) -> int:
    with app.app_context():
        with job_session(app) as session:
            ids = find(session)
        done = 0
        for first in range(0, len(ids), REFRESH_BATCH):
            with job_session(app) as session:
                done += refresh_summaries(session, ids[first : first + REFRESH_BATCH], now=now)
    return done


def refresh_stale_summaries(app: Flask, *, now: int | None = None) -> int:
    """Recompute every stale summary (patients with uploads since their last refresh).

    Args:
        app: the application (its database).
        now: refresh instant, epoch s UTC; the current time when omitted.

    Returns:
        The number of patients refreshed.
    """
    now = int(time.time()) if now is None else now
    count = _refresh_in_batches(app, stale_patient_ids, now)
    log.info("summary refresh: %d stale patient(s)", count)
    return count


def refresh_all_summaries(app: Flask, *, now: int | None = None) -> int:
    """Recompute every patient's summaries (nightly: the windows move on with the calendar).

    Args:
        app: the application (its database).
        now: refresh instant, epoch s UTC; the current time when omitted.

    Returns:
        The number of patients refreshed.
    """
    now = int(time.time()) if now is None else now
    count = _refresh_in_batches(app, all_patient_ids, now)
    log.info("nightly summary refresh: %d patient(s)", count)
    return count
